package loginapp

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestUsersCheck(t *testing.T) {
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
		if got := DemoUsers.Check(c.name, c.password); got != c.ok {
			t.Errorf("Check(%q, %q) = %v, want %v", c.name, c.password, got, c.ok)
		}
	}
}

// RequireLogin mounted outside the session middleware answers 500 instead
// of letting the request through or answering an empty 200.
func TestRequireLoginWithoutMiddleware(t *testing.T) {
	reached := false
	h := RequireLogin(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
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
