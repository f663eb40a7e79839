package main

import (
	"bytes"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestExamplesSelfContained: an example's program imports only the library
// and public modules, never a package of this repository's examples, so a
// copy of its directory builds anywhere.
func TestExamplesSelfContained(t *testing.T) {
	files, err := filepath.Glob("../*/*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/go-httpsession/httpsession/") {
				t.Errorf("%s imports %s: only the library itself may be imported", f, path)
			}
		}
		checked++
	}
	if checked < 12 {
		t.Errorf("checked %d example files, want every main.go and app.go", checked)
	}
}

// TestAppCopiesEqual: every login example carries the same app.go, so that
// each one is self-contained and they still show one application.
func TestAppCopiesEqual(t *testing.T) {
	want, err := os.ReadFile("app.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"redis", "memcached", "chi", "gorilla"} {
		got, err := os.ReadFile("../" + dir + "/app.go")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("examples/%s/app.go differs from examples/login/app.go: copy it over", dir)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	for _, c := range []struct {
		name, password string
		ok             bool
	}{
		{"alice", "wonderland", true},
		{"bob", "builder", true},
		{"alice", "builder", false},
		{"alice", "wonderlan", false},
		{"alice", "wonderland ", false},
		{"alice", "", false},
		{"Alice", "wonderland", false},
		{"mallory", "", false}, // unknown user, empty password: must not match the zero value
		{"", "", false},
	} {
		if got := checkPassword(c.name, c.password); got != c.ok {
			t.Errorf("checkPassword(%q, %q) = %v, want %v", c.name, c.password, got, c.ok)
		}
	}
}

// requireLogin mounted outside the session middleware answers 500 instead
// of letting the request through or answering an empty 200.
func TestRequireLoginWithoutMiddleware(t *testing.T) {
	reached := false
	h := requireLogin(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/account", nil))
	if reached || rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, reached %v; want 500 and not reached", rec.Code, reached)
	}
}

// The login form returns only to pages of this site: anything else would
// make it an open redirect.
func TestLocalPath(t *testing.T) {
	for next, want := range map[string]string{
		"/account":              "/account",
		"/account?tab=sessions": "/account?tab=sessions",
		"":                      "/",
		"account":               "/",
		"//evil.example/":       "/",
		`/\evil.example/`:       "/",
		"https://evil.example/": "/",
	} {
		if got := localPath(next); got != want {
			t.Errorf("localPath(%q) = %q, want %q", next, got, want)
		}
	}
}
