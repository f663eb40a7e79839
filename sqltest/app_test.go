package sqltest

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"

	"github.com/go-httpsession/httpsession"
)

// app is a small application behind the middleware, over real HTTP:
//
//	/untouched     never looks at the session
//	/login         sets user=alice
//	/get           the session's keys and values, or "new"
//	/set?k=&v=     sets k on an existing session
//	/renew         NewIdentity on an existing session
//	/logout        Invalidate
type app struct{ srv *httptest.Server }

func newApp(t *testing.T, store httpsession.Store, opts ...httpsession.Option) *app {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/untouched", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	session := func(fn func(w http.ResponseWriter, r *http.Request, s *httpsession.Session)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if s, err := httpsession.Get(r); err == nil {
				fn(w, r, s)
			}
		}
	}
	mux.HandleFunc("/login", session(func(w http.ResponseWriter, r *http.Request, s *httpsession.Session) {
		_ = s.Set("user", "alice")
	}))
	mux.HandleFunc("/get", session(func(w http.ResponseWriter, r *http.Request, s *httpsession.Session) {
		if s.IsNew() {
			_, _ = io.WriteString(w, "new")
			return
		}
		keys := s.Keys()
		sort.Strings(keys)
		for _, k := range keys {
			_, _ = fmt.Fprintf(w, "%s=%v;", k, s.Get(k))
		}
	}))
	mux.HandleFunc("/set", session(func(w http.ResponseWriter, r *http.Request, s *httpsession.Session) {
		if !s.IsNew() {
			_ = s.Set(r.FormValue("k"), r.FormValue("v"))
		}
	}))
	mux.HandleFunc("/renew", session(func(w http.ResponseWriter, r *http.Request, s *httpsession.Session) {
		if !s.IsNew() {
			s.NewIdentity()
		}
	}))
	mux.HandleFunc("/logout", session(func(w http.ResponseWriter, r *http.Request, s *httpsession.Session) { s.Invalidate() }))
	mw, err := httpsession.Middleware(store, append([]httpsession.Option{httpsession.WithSecure(false), httpsession.WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	a := &app{srv: httptest.NewServer(mw(mux))}
	t.Cleanup(a.srv.Close)
	return a
}

type response struct {
	status int
	body   string
	cookie *http.Cookie
}

// get sends GET path with the session cookie ("" for none).
func (a *app) get(t *testing.T, path, cookie string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != "" {
		req.Header.Set("Cookie", httpsession.DefaultCookieName+"="+cookie)
	}
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	r := response{status: resp.StatusCode, body: string(body)}
	for _, c := range resp.Cookies() {
		if c.Name == httpsession.DefaultCookieName {
			r.cookie = c
		}
	}
	return r
}

// must is get that fails t unless the answer is 200.
func (a *app) must(t *testing.T, path, cookie string) response {
	t.Helper()
	r := a.get(t, path, cookie)
	if r.status != http.StatusOK {
		t.Fatalf("%s: status %d: %s", path, r.status, r.body)
	}
	return r
}

func (a *app) login(t *testing.T) string {
	t.Helper()
	r := a.must(t, "/login", "")
	if r.cookie == nil {
		t.Fatal("login set no cookie")
	}
	return r.cookie.Value
}
