package httpsession

// Tests of commit.go: the store write and the Set-Cookie it yields, and a
// logout that wins over a request in flight.

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestMiddlewareCookiePersistence(t *testing.T) {
	clock := newTestClock()
	mux := http.NewServeMux()
	mux.Handle("/set", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("n", 1)
	}))
	mux.Handle("/session-cookie", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("n", 1)
		s.SetPersistent(false)
	}))
	mux.Handle("/persistent-cookie", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("n", 1)
		s.SetPersistent(true)
	}))
	mux.Handle("/touch", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("n", 2)
		fmt.Fprint(w, strings.Join(s.Keys(), ","))
	}))
	noExpiry := func(t *testing.T, r response) {
		t.Helper()
		ck, raw := r.setCookie("session")
		if ck == nil {
			t.Fatalf("no cookie: %v", r.header)
		}
		if strings.Contains(raw, "Max-Age") || strings.Contains(raw, "Expires") {
			t.Errorf("browser-session cookie carries an expiry: %q", raw)
		}
	}
	hasExpiry := func(t *testing.T, r response) {
		t.Helper()
		_, raw := r.setCookie("session")
		if !strings.Contains(raw, "Max-Age=") || !strings.Contains(raw, "Expires=") {
			t.Errorf("persistent cookie lacks Max-Age or Expires: %q", raw)
		}
	}

	t.Run("WithPersistent(false)", func(t *testing.T) {
		app := startApp(t, NewInsecureCookieStore(), mux, WithClock(clock.Now), WithPersistent(false))
		b := app.visitor(true)
		noExpiry(t, b.get(t, "/set"))
		noExpiry(t, b.get(t, "/touch"))
	})
	t.Run("SetPersistent(false)", func(t *testing.T) {
		store, _ := countedMemoryStore(clock.Now)
		app := startApp(t, store, mux, WithClock(clock.Now))
		b := app.visitor(true)
		noExpiry(t, b.get(t, "/session-cookie"))
		// The choice is kept in the record: a later save still omits it.
		r := b.get(t, "/touch")
		noExpiry(t, r)
		if r.body != "n" {
			t.Errorf("keys %q: the persistence choice leaked into the user's map", r.body)
		}
	})
	t.Run("SetPersistent(true) overrides WithPersistent(false)", func(t *testing.T) {
		app := startApp(t, NewInsecureCookieStore(), mux, WithClock(clock.Now), WithPersistent(false))
		b := app.visitor(true)
		hasExpiry(t, b.get(t, "/persistent-cookie"))
		hasExpiry(t, b.get(t, "/touch"))
	})
}

// inFlight runs the two-request race of rack-session CVE-2025-46336:
// request A loads the session and waits; request B logs out; then A runs
// late(s). It returns A's response.
func inFlight(t *testing.T, late func(*Session)) (response, *countingBackend, *testApp, *http.Cookie) {
	t.Helper()
	store, backend := countedMemoryStore(nil)
	loaded, release := make(chan struct{}), make(chan struct{})
	mux := identityRoutes()
	mux.Handle("/slow", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Get("user")
		close(loaded)
		<-release
		late(s)
		_, _ = io.WriteString(w, "slow done")
	}))
	app := startApp(t, store, mux)
	old := loginCookie(t, app)

	done := make(chan response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, app.srv.URL+"/slow", nil)
		req.AddCookie(old)
		done <- readResponse(http.DefaultClient.Do(req))
	}()
	<-loaded
	if r := app.do(t, nil, "/logout", old); r.status != 200 {
		t.Fatalf("logout: %d", r.status)
	}
	if backend.Len() != 0 {
		t.Fatalf("logout left %d records", backend.Len())
	}
	close(release)
	res := <-done
	app.wait(t)
	if res.err != nil {
		t.Fatal(res.err)
	}
	return res, backend, app, old
}

func TestMiddlewareLogoutWins(t *testing.T) {
	r, backend, app, old := inFlight(t, func(s *Session) {
		_ = s.Set("cart", 99)
	})
	if r.status != 200 || r.body != "slow done" {
		t.Errorf("in-flight request: %d %q", r.status, r.body)
	}
	if backend.Len() != 0 {
		t.Errorf("in-flight request resurrected the logged-out session (%d records)", backend.Len())
	}
	// No cookie: the logout already expired it, and a deletion cookie
	// could delete one the browser got since (a new login).
	if ck, raw := r.setCookie("session"); ck != nil {
		t.Errorf("in-flight request got cookie %q, want none", raw)
	}
	if r := app.do(t, nil, "/whoami", old); !strings.Contains(r.body, "new=true") {
		t.Errorf("old cookie loads again: %q", r.body)
	}
}

// NewIdentity at a privilege change must not resurrect a session that was
// logged out while the request was in flight: the data it would carry over
// belongs to the ended session.
func TestMiddlewareLogoutWinsOverNewIdentity(t *testing.T) {
	r, backend, _, _ := inFlight(t, func(s *Session) {
		s.NewIdentity()
	})
	if backend.Len() != 0 {
		t.Errorf("NewIdentity in an in-flight request re-created the logged-out session under a new ID (%d records)", backend.Len())
	}
	if ck, _ := r.setCookie("session"); ck != nil && ck.MaxAge > 0 {
		t.Errorf("in-flight NewIdentity handed out a live cookie for the logged-out session")
	}
}
