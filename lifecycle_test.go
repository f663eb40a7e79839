package httpsession

// Tests of lifecycle.go, the commit decision: expiry and the idle refresh,
// the lifetime a session carries, Invalidate, NewIdentity, and what an
// anonymous or expired session writes.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// expiryStores returns a memory store on the fake clock and a cookie store
// (which has no expiry of its own, so only the middleware can enforce it).
func expiryStores(t *testing.T, clock *testClock) map[string]Store {
	return map[string]Store{
		"memory": mustStoreAt(t, kindNamed("memory"), clock.Now),
		"cookie": mustStore(t, kindNamed("signed")),
	}
}

func expiryRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/count", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		n, _ := GetAs[int](s, "n")
		_ = s.Set("n", n+1)
		fmt.Fprintf(w, "%d new=%v", n+1, s.IsNew())
	}))
	mux.Handle("/read", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		n, _ := GetAs[int](s, "n")
		fmt.Fprintf(w, "%d new=%v", n, s.IsNew())
	}))
	return mux
}

func TestMiddlewareAbsoluteLifetime(t *testing.T) {
	for name := range expiryStores(t, newTestClock()) {
		t.Run(name, func(t *testing.T) {
			clock := newTestClock()
			store := expiryStores(t, clock)[name]
			app := startApp(t, store, expiryRoutes(), WithClock(clock.Now), WithLifetime(time.Hour))
			c := jarClient(t)
			if r := app.do(t, c, "/count"); r.body != "1 new=true" {
				t.Fatalf("first: %q", r.body)
			}
			first, _ := app.do(t, c, "/read").setCookie("session") // nil: read-only sends none
			if first != nil {
				t.Errorf("read-only request re-sent the cookie without idle timeout")
			}
			// Keep using and modifying it: every response re-issues the cookie.
			var last *http.Cookie
			for i := 2; i <= 12; i++ {
				clock.Advance(5 * time.Minute)
				r := app.do(t, c, "/count")
				if want := fmt.Sprintf("%d new=false", i); r.body != want {
					t.Fatalf("at +%dm: %q, want %q", (i-1)*5, r.body, want)
				}
				last, _ = r.setCookie("session")
			}
			// +55m: the cookie's Max-Age tracks the remaining lifetime.
			if last == nil || last.MaxAge != 300 {
				t.Errorf("cookie at +55m %+v, want Max-Age 300", last)
			}
			clock.Advance(5 * time.Minute) // exactly the lifetime
			if r := app.do(t, c, "/read"); r.body != "0 new=true" {
				t.Errorf("at the lifetime: %q, want a new session", r.body)
			}
			// Replaying the last issued cookie does not help either.
			plain := &http.Cookie{Name: "session", Value: last.Value}
			if r := app.do(t, nil, "/read", plain); r.body != "0 new=true" {
				t.Errorf("replayed cookie after lifetime: %q, want a new session", r.body)
			}
		})
	}
}

func TestMiddlewareIdleTimeout(t *testing.T) {
	for name := range expiryStores(t, newTestClock()) {
		t.Run(name, func(t *testing.T) {
			clock := newTestClock()
			store := expiryStores(t, clock)[name]
			app := startApp(t, store, expiryRoutes(), WithClock(clock.Now), WithIdleTimeout(10*time.Minute))
			c := jarClient(t)
			r := app.do(t, c, "/count")
			firstCookie, _ := r.setCookie("session")
			if firstCookie == nil || firstCookie.MaxAge != 600 {
				t.Errorf("cookie with idle timeout %+v, want Max-Age 600", firstCookie)
			}
			clock.Advance(9 * time.Minute)
			if r := app.do(t, c, "/read"); r.body != "1 new=false" {
				t.Fatalf("after 9m idle: %q", r.body)
			}
			// The read refreshed the activity: 9 more minutes are fine (18m
			// after creation), even though the original cookie is now stale.
			clock.Advance(9 * time.Minute)
			if r := app.do(t, c, "/read"); r.body != "1 new=false" {
				t.Fatalf("9m after the refresh: %q", r.body)
			}
			if r := app.do(t, nil, "/read", &http.Cookie{Name: "session", Value: firstCookie.Value}); name == "cookie" && r.body != "0 new=true" {
				t.Errorf("cookie sealed 18m ago accepted with a 10m idle timeout: %q", r.body)
			}
			clock.Advance(10 * time.Minute)
			if r := app.do(t, c, "/read"); r.body != "0 new=true" {
				t.Errorf("after 10m idle: %q, want a new session", r.body)
			}
		})
	}
}

func TestMiddlewareIdleRefreshThrottled(t *testing.T) {
	clock := newTestClock()
	t.Run("memory", func(t *testing.T) {
		store, backend := countedMemoryStore(clock.Now)
		app := startApp(t, store, expiryRoutes(), WithClock(clock.Now), WithIdleTimeout(10*time.Minute))
		throttleFlow(t, app, clock, func() int64 { return backend.adds.Load() + backend.replaces.Load() })
	})
	t.Run("cookie", func(t *testing.T) {
		store := &countingStore{Store: mustStore(t, kindNamed("signed"))}
		app := startApp(t, store, expiryRoutes(), WithClock(clock.Now), WithIdleTimeout(10*time.Minute))
		throttleFlow(t, app, clock, store.saves.Load)
	})
}

func throttleFlow(t *testing.T, app *testApp, clock *testClock, writes func() int64) {
	t.Helper()
	c := jarClient(t)
	app.do(t, c, "/count")
	if writes() != 1 {
		t.Fatalf("creation: %d writes", writes())
	}
	// Read-only traffic within idle/10 (1m): no store write, no cookie.
	for range 5 {
		clock.Advance(10 * time.Second)
		r := app.do(t, c, "/read")
		if r.body != "1 new=false" {
			t.Fatalf("read: %q", r.body)
		}
		if ck, _ := r.setCookie("session"); ck != nil {
			t.Errorf("read within idle/10 sent Set-Cookie")
		}
	}
	if writes() != 1 {
		t.Errorf("reads within idle/10 wrote the store %d times", writes()-1)
	}
	// Past idle/10 since the last write: exactly one refresh.
	clock.Advance(11 * time.Second) // 61s since creation
	r := app.do(t, c, "/read")
	if ck, _ := r.setCookie("session"); ck == nil || ck.MaxAge != 600 {
		t.Errorf("refresh after idle/10: cookie %+v, want one with Max-Age 600", ck)
	}
	if writes() != 2 {
		t.Errorf("refresh after idle/10: %d writes, want 2", writes())
	}
	clock.Advance(30 * time.Second)
	r = app.do(t, c, "/read")
	if ck, _ := r.setCookie("session"); ck != nil || writes() != 2 {
		t.Errorf("read 30s after a refresh: cookie %v, %d writes, want none and 2", ck != nil, writes())
	}
}

func TestMiddlewareRememberMe(t *testing.T) {
	clock := newTestClock()
	const month = 30 * 24 * time.Hour
	store, backend := countedMemoryStore(clock.Now)
	mux := http.NewServeMux()
	mux.Handle("/login", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("user", "ann")
		if r.URL.Query().Has("remember") {
			s.SetLifetime(month)
		}
	}))
	mux.Handle("/whoami", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		fmt.Fprintf(w, "%v|%s|%s", s.Get("user"), strings.Join(s.Keys(), ","), s.Expires().UTC().Format(time.RFC3339))
	}))
	mux.Handle("/touch", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("seen", true)
	}))
	app := startApp(t, store, mux, WithClock(clock.Now), WithLifetime(time.Hour))

	c := jarClient(t)
	start := clock.Now()
	r := app.do(t, c, "/login?remember=1")
	ck, _ := r.setCookie("session")
	if ck == nil || ck.MaxAge != int(month/time.Second) {
		t.Fatalf("remember-me cookie %+v, want Max-Age %d", ck, int(month/time.Second))
	}
	var rec struct {
		Lifetime int64          `json:"lifetime"`
		Session  map[string]any `json:"session"`
	}
	if err := json.Unmarshal([]byte(backend.lastWritten()), &rec); err != nil {
		t.Fatalf("record: %v", err)
	}
	if rec.Lifetime != int64(month/time.Second) || len(rec.Session) != 1 || rec.Session["user"] != "ann" {
		t.Errorf("lifetime not kept as record metadata apart from the user's map: %s", backend.lastWritten())
	}

	// Past the middleware's 1h lifetime, the override keeps the session.
	clock.Advance(2 * time.Hour)
	r = app.do(t, c, "/whoami")
	want := "ann|user|" + start.Add(month).Format(time.RFC3339)
	if r.body != want {
		t.Errorf("after 2h: %q, want %q", r.body, want)
	}
	r = app.do(t, c, "/touch")
	ck, _ = r.setCookie("session")
	if ck == nil || ck.MaxAge != int((month-2*time.Hour)/time.Second) {
		t.Errorf("re-saved remember-me cookie %+v, want Max-Age %d", ck, int((month-2*time.Hour)/time.Second))
	}
	// The override still ends the session at creation + a month.
	clock.Advance(month - 2*time.Hour)
	if r := app.do(t, c, "/whoami"); strings.HasPrefix(r.body, "ann") {
		t.Errorf("session outlived its overridden lifetime: %q", r.body)
	}

	// Without the override the 1h lifetime applies.
	c2 := jarClient(t)
	r = app.do(t, c2, "/login")
	if ck, _ := r.setCookie("session"); ck == nil || ck.MaxAge != 3600 {
		t.Errorf("default cookie %+v, want Max-Age 3600", ck)
	}
	clock.Advance(2 * time.Hour)
	if r := app.do(t, c2, "/whoami"); strings.HasPrefix(r.body, "ann") {
		t.Errorf("session without override outlived 1h: %q", r.body)
	}
}

func TestMiddlewareInvalidate(t *testing.T) {
	store, backend := countedMemoryStore(nil)
	app := startApp(t, store, identityRoutes())
	old := loginCookie(t, app)
	if backend.Len() != 1 {
		t.Fatalf("login: %d records", backend.Len())
	}
	r := app.do(t, nil, "/logout", old)
	if r.body != "len=0 user=<nil>" {
		t.Errorf("after Invalidate in the same request: %q", r.body)
	}
	ck, raw := r.setCookie("session")
	if ck == nil || !strings.Contains(raw, "Max-Age=0") || ck.Value != "" {
		t.Errorf("logout cookie %q, want a deletion cookie", raw)
	}
	if backend.Len() != 0 {
		t.Errorf("server-side record survives Invalidate (%d records)", backend.Len())
	}
	if r := app.do(t, nil, "/whoami", old); !strings.HasPrefix(r.body, "user=<nil> cart=<nil> new=true") {
		t.Errorf("old cookie after logout: %q", r.body)
	}
	// With a jar the browser really drops it.
	c := jarClient(t)
	app.do(t, c, "/login")
	app.do(t, c, "/logout")
	if u, _ := url.Parse(app.srv.URL + "/"); len(c.Jar.Cookies(u)) != 0 {
		t.Errorf("jar still holds the session cookie after logout")
	}
}

func TestMiddlewareInvalidateThenSetNewID(t *testing.T) {
	store, backend := countedMemoryStore(nil)
	app := startApp(t, store, identityRoutes())
	old := loginCookie(t, app)
	r := app.do(t, nil, "/relogin", old)
	if r.body != "new=true cart=<nil>" {
		t.Errorf("Invalidate then Set: %q", r.body)
	}
	ck, _ := r.setCookie("session")
	if ck == nil || ck.MaxAge <= 0 {
		t.Fatalf("no new session cookie: %v", r.header)
	}
	if ck.Value == old.Value {
		t.Fatalf("Invalidate then Set reused the old session ID")
	}
	if n := backend.sessions(); n != 1 {
		t.Errorf("%d records, want only the new session", n)
	}
	if r := app.do(t, nil, "/whoami", old); !strings.Contains(r.body, "new=true") {
		t.Errorf("old ID still loads: %q", r.body)
	}
	want := "user=bob cart=<nil> new=false id=" + ck.Value
	if r := app.do(t, nil, "/whoami", &http.Cookie{Name: "session", Value: ck.Value}); r.body != want {
		t.Errorf("new session: %q, want %q", r.body, want)
	}
}

func TestMiddlewareNewIdentity(t *testing.T) {
	t.Run("server store", func(t *testing.T) {
		store, backend := countedMemoryStore(nil)
		app := startApp(t, store, identityRoutes())
		old := loginCookie(t, app)
		r := app.do(t, nil, "/renew", old)
		ck, _ := r.setCookie("session")
		if ck == nil || ck.MaxAge <= 0 || ck.Value == old.Value {
			t.Fatalf("NewIdentity cookie %+v, want a new ID (old %s)", ck, old.Value)
		}
		if n := backend.sessions(); n != 1 {
			t.Errorf("%d records after NewIdentity, want 1", n)
		}
		want := "user=ann cart=3 new=false id=" + ck.Value
		if r := app.do(t, nil, "/whoami", &http.Cookie{Name: "session", Value: ck.Value}); r.body != want {
			t.Errorf("new identity: %q, want %q", r.body, want)
		}
		if r := app.do(t, nil, "/whoami", old); !strings.Contains(r.body, "new=true") {
			t.Errorf("old ID still loads after NewIdentity: %q", r.body)
		}
	})
	t.Run("cookie store", func(t *testing.T) {
		store, err := NewSignedCookieStore([]byte("S3q7Nz2Wx9Tm4Lr1Vb6Kc8Hp0Yd5Gj3F"))
		if err != nil {
			t.Fatal(err)
		}
		app := startApp(t, store, identityRoutes())
		old := loginCookie(t, app)
		r := app.do(t, nil, "/renew", old)
		ck, _ := r.setCookie("session")
		if ck == nil || ck.MaxAge <= 0 {
			t.Fatalf("NewIdentity on a cookie store sent no fresh cookie: %v", r.header)
		}
		if r := app.do(t, nil, "/whoami", &http.Cookie{Name: "session", Value: ck.Value}); !strings.HasPrefix(r.body, "user=ann cart=3 new=false") {
			t.Errorf("after NewIdentity: %q", r.body)
		}
	})
}

func TestMiddlewareAnonymousCreatesNoRecords(t *testing.T) {
	store, backend := countedMemoryStore(nil)
	h := withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Get("x")
		_ = s.Has("y")
		_, _ = GetAs[string](s, "z")
		_ = s.Keys()
		_ = s.Flashes()
		s.Delete("nope")
		s.Clear()
		fmt.Fprint(w, s.IsNew())
	})
	app := startApp(t, store, h)
	var c *http.Client // the server's own, without a jar
	cookies := [][]*http.Cookie{
		nil,
		{{Name: "session", Value: newID()}},   // well-formed, unknown
		{{Name: "session", Value: "garbage"}}, // malformed
	}
	gets := backend.gets.Load()
	for i := range 1000 {
		r := app.do(t, c, "/", cookies[i%len(cookies)]...)
		if r.status != 200 || r.body != "true" {
			t.Fatalf("request %d: %d %q", i, r.status, r.body)
		}
		// Never a live cookie; a dead cookie is expired so the browser
		// stops sending it; no cookie at all gets no Set-Cookie.
		ck, raw := r.setCookie("session")
		if sent := len(cookies[i%len(cookies)]) > 0; !sent && ck != nil || sent && (ck == nil || ck.MaxAge >= 0) {
			t.Fatalf("anonymous read-only request %d (cookie sent: %v) got Set-Cookie %q", i, sent, raw)
		}
		if varyCookieCount(r.header) != 1 {
			t.Fatalf("request %d lacks Vary: Cookie", i)
		}
	}
	if backend.Len() != 0 || backend.adds.Load() != 0 || backend.replaces.Load() != 0 {
		t.Errorf("anonymous traffic wrote the store: %d records, %d adds, %d replaces",
			backend.Len(), backend.adds.Load(), backend.replaces.Load())
	}
	// Only well-formed IDs reach the backend.
	if got := backend.gets.Load() - gets; got != 333 {
		t.Errorf("%d backend reads, want 333 (one per well-formed cookie)", got)
	}
}

// A session whose absolute deadline passes while the request runs (a slow
// handler, or SetLifetime shortening an old session) must not be written
// back with a non-positive TTL: the memory backend (and Redis) read that
// as "never expires", leaving an immortal record behind.
func TestMiddlewareSaveAfterDeadline(t *testing.T) {
	cases := []struct {
		name string
		wait time.Duration // before the request
		late func(s *Session, clock *testClock)
	}{
		{"deadline passes during the handler", 59 * time.Minute, func(s *Session, clock *testClock) {
			clock.Advance(2 * time.Minute)
			_ = s.Set("b", 2)
		}},
		{"SetLifetime shorter than the session's age", 45 * time.Minute, func(s *Session, clock *testClock) {
			s.SetLifetime(30 * time.Minute)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newTestClock()
			store, backend := countedMemoryStore(clock.Now)
			mux := http.NewServeMux()
			mux.Handle("/set", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
				_ = s.Set("a", 1)
			}))
			mux.Handle("/late", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
				if s.IsNew() {
					http.Error(w, "session lost before the test", 599)
					return
				}
				tc.late(s, clock)
			}))
			app := startApp(t, store, mux, WithClock(clock.Now), WithLifetime(time.Hour))
			b := app.visitor(true)
			b.get(t, "/set")
			clock.Advance(tc.wait)
			r := b.get(t, "/late")
			if r.status != 200 {
				t.Fatalf("late: %d %q", r.status, r.body)
			}
			if ck, raw := r.setCookie("session"); ck != nil && ck.MaxAge > 0 {
				t.Errorf("expired session got a live cookie %q", raw)
			}
			clock.Advance(365 * 24 * time.Hour)
			if n := backend.Len(); n != 0 {
				t.Errorf("a year later %d record(s) still live: saved with a non-positive TTL, which means no expiry", n)
			}
		})
	}
}

// TestRecordSizeLimit: a session over the record size limit is refused
// before any header goes out, with an error wrapping ErrRecordTooLarge
// (500, never 503), and nothing is stored, on every server store; at the
// limit it is saved.
func TestRecordSizeLimit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, nb func(t *testing.T) *countingBackend) {
		cb := nb(t)
		var got error
		var mu sync.Mutex
		store := NewServerStore(cb.counted(), WithKeyPrefix(keyPrefix(t)))
		app := startApp(t, store, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, err := Get(r)
			if err != nil {
				return
			}
			n, _ := strconv.Atoi(r.FormValue("n"))
			_ = s.Set("blob", strings.Repeat("x", n))
			_, _ = io.WriteString(w, "ok")
		}), WithMaxRecordSize(512<<10), WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			mu.Lock()
			got = err
			mu.Unlock()
			defaultErrorHandler(w, r, err)
		}))
		r := app.do(t, nil, "/?n=2000000")
		mu.Lock()
		err := got
		mu.Unlock()
		if r.status != http.StatusInternalServerError || !errors.Is(err, ErrRecordTooLarge) || errors.Is(err, ErrUnavailable) {
			t.Fatalf("2 MB session: status %d, err %v; want 500 and ErrRecordTooLarge", r.status, err)
		}
		if r.cookie != nil {
			t.Fatalf("2 MB session: Set-Cookie %v", r.cookie)
		}
		if w := cb.snapshot().writes(); w != 0 {
			t.Fatalf("2 MB session: %d store writes, want none", w)
		}
		// Just under the limit (the envelope adds a few dozen bytes).
		if r := app.do(t, nil, "/?n="+strconv.Itoa(512<<10-100)); r.status != http.StatusOK {
			t.Fatalf("session under the limit: status %d %q", r.status, r.body)
		}
	})
}

// TestSharedCookieUnreadableNeverExpired: under WithAiohttpKeys the cookie
// is shared with Python, so an ID of another key_factory's shape, which
// Go cannot read, may be a live session there. Go treats it as no session and never expires it: not on
// a read, a logout or an empty NewSession. Only a handler that saves data
// replaces it, with the new session's cookie. A well-formed ID that names
// no record is dead on both sides and expired as before; without
// WithAiohttpKeys a malformed cookie is expired too.
func TestSharedCookieUnreadableNeverExpired(t *testing.T) {
	const name = "AIOHTTP_SESSION"
	mux := identityRoutes()
	mux.Handle("/read", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		fmt.Fprintf(w, "new=%v", s.IsNew())
	}))
	shared := NewMemoryStore(WithAiohttpKeys(name))
	if err := shared.backend.Add(t.Context(), name+"_00112233445566778899aabbccddeeff", []byte("{}"), time.Hour); err != nil {
		t.Fatal(err)
	}
	sharedApp := startApp(t, shared, mux, WithCookieName(name))
	ownApp := startApp(t, NewMemoryStore(), mux, WithCookieName(name))
	foreign := []string{"k5BdXb3G7dBf3DqzRkP1vA", "0123456789ABCDEF0123456789ABCDEF", "01234567-89AB-CDEF-0123-456789ABCDEF"}
	for _, tc := range []struct {
		app    *testApp
		cookie string
		path   string
		want   string // "": no Set-Cookie; "delete"; "new": a new session's cookie
	}{
		{sharedApp, foreign[0], "/read", ""},
		{sharedApp, foreign[1], "/read", ""},
		{sharedApp, foreign[2], "/read", ""},
		{sharedApp, foreign[0], "/logout", ""},
		{sharedApp, foreign[0], "/fresh", ""},
		{sharedApp, foreign[0], "/login", "new"},
		{sharedApp, foreign[2], "/fresh?bob=1", "new"},
		{sharedApp, "fedcba9876543210fedcba9876543210", "/read", "delete"},     // well-formed, no record
		{sharedApp, "fedcba98-7654-3210-fedc-ba9876543210", "/read", "delete"}, // likewise
		{sharedApp, "00112233445566778899aabbccddeeff", "/read", "delete"},     // Python's invalidated "{}"
		{ownApp, foreign[0], "/read", "delete"},
		{ownApp, foreign[0], "/logout", "delete"},
	} {
		r := tc.app.do(t, nil, tc.path, &http.Cookie{Name: name, Value: tc.cookie})
		ck, raw := r.setCookie(name)
		got := ""
		switch {
		case ck != nil && isDeletion(ck):
			got = "delete"
		case ck != nil && ck.Value != tc.cookie:
			got = "new"
		case ck != nil:
			got = "same"
		}
		if r.status != 200 || got != tc.want {
			t.Errorf("%s with cookie %s (shared %v) = %d, Set-Cookie %q (%s), want %q",
				tc.path, tc.cookie, tc.app == sharedApp, r.status, raw, got, tc.want)
		}
	}
}
