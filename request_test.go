package httpsession

// Tests of request.go: Get and NewSession, the lazy load (an untouched
// request costs nothing) and which cookie opens which record.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMiddlewareLazyUntouched(t *testing.T) {
	for name, server := range map[string]bool{"cookie": false, "server": true} {
		t.Run(name, func(t *testing.T) {
			var st Store
			var counting *countingStore
			var backend *countingBackend
			if server {
				st, backend = countedMemoryStore(nil)
			} else {
				counting = &countingStore{Store: mustStore(t, kindNamed("signed"))}
				st = counting
			}
			mux := http.NewServeMux()
			mux.Handle("/set", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
				_ = s.Set("user", "ann")
			}))
			mux.HandleFunc("/untouched", func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, "plain page")
			})
			app := startApp(t, st, mux)
			c := jarClient(t)
			if r := app.do(t, c, "/set"); countSetCookies(r.header, "session") != 1 {
				t.Fatalf("setup: no session cookie: %v", r.header)
			}
			calls := func() int64 {
				if server {
					return backend.total()
				}
				return counting.calls()
			}
			before := calls()
			for range 3 {
				r := app.do(t, c, "/untouched")
				if r.status != 200 || r.body != "plain page" {
					t.Fatalf("untouched: %d %q", r.status, r.body)
				}
				if v := r.header.Values("Set-Cookie"); len(v) != 0 {
					t.Errorf("untouched handler got Set-Cookie %v", v)
				}
				if v := r.header.Values("Vary"); len(v) != 0 {
					t.Errorf("untouched handler got Vary %v", v)
				}
				if v := r.header.Values("Cache-Control"); len(v) != 0 {
					t.Errorf("untouched handler got Cache-Control %v", v)
				}
			}
			if got := calls() - before; got != 0 {
				t.Errorf("untouched requests made %d store calls, want 0", got)
			}
		})
	}
}

func TestMiddlewareUntouchedAllocs(t *testing.T) {
	body := []byte("hello")
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
	store := &countingStore{Store: NewInsecureCookieStore()}
	mw := newMiddleware(t, store)
	wrapped := mw(next)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Cookie", "session="+insecureToken(t, time.Now(), map[string]any{"a": 1}))
	w := &discardWriter{h: make(http.Header)}
	bare := testing.AllocsPerRun(500, func() {
		clear(w.h)
		next.ServeHTTP(w, req)
	})
	withMW := testing.AllocsPerRun(500, func() {
		clear(w.h)
		wrapped.ServeHTTP(w, req)
	})
	t.Logf("allocs: bare %.1f, wrapped-untouched %.1f", bare, withMW)
	if extra := withMW - bare; extra > 2 {
		t.Errorf("wrapped-untouched handler costs %.1f extra allocations, want <= 2", extra)
	}
	if n := store.calls(); n != 0 {
		t.Errorf("untouched handler made %d store calls", n)
	}
	if len(w.h) != 0 {
		t.Errorf("untouched handler got headers %v", w.h)
	}
	if w.code != 200 || w.n == 0 {
		t.Errorf("handler output lost: code %d, %d bytes", w.code, w.n)
	}
}

type ctxKey struct{}

func TestGetReturnsSameSession(t *testing.T) {
	store, _ := countedMemoryStore(nil)
	chk := &handlerErrors{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s1, err1 := Get(r)
		s2, err2 := Get(r)
		if err1 != nil || err2 != nil || s1 == nil || s1 != s2 {
			chk.errorf("Get twice: %p %v, %p %v", s1, err1, s2, err2)
			return
		}
		// A request derived by a later middleware still finds the session.
		r2 := r.WithContext(context.WithValue(r.Context(), ctxKey{}, 1))
		if s3, err := Get(r2); err != nil || s3 != s1 {
			chk.errorf("Get on derived request: %p %v, want %p", s3, err, s1)
		}
		_ = s1.Set("k", "v")
		if got := s2.Get("k"); got != "v" {
			chk.errorf("value set through one pointer not seen through the other: %v", got)
		}
		s4, err := NewSession(r)
		if err != nil || s4 == s1 || s4.Len() != 0 {
			chk.errorf("NewSession after Get: %p %v %v, want a new, empty *Session, not %p", s4, err, s4.Keys(), s1)
		}
		if s5, err := Get(r); err != nil || s5 != s4 {
			chk.errorf("Get after NewSession: %p %v, want NewSession's %p", s5, err, s4)
		}
	})
	app := startApp(t, store, h)
	app.do(t, nil, "/")
	chk.report(t)
}

func TestGetWithoutMiddleware(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: "session", Value: "abc"})
	s, err := Get(r)
	if !errors.Is(err, ErrNoMiddleware) {
		t.Fatalf("Get without middleware: err %v, want ErrNoMiddleware", err)
	}
	if s == nil {
		t.Fatal("Get without middleware returned a nil *Session")
	}
	if err := s.Set("k", "v"); !errors.Is(err, ErrNoMiddleware) {
		t.Errorf("detached Set: %v, want ErrNoMiddleware", err)
	}
	if err := s.AddFlash("f"); !errors.Is(err, ErrNoMiddleware) {
		t.Errorf("detached AddFlash: %v, want ErrNoMiddleware", err)
	}
	// None of the other methods may panic.
	if s.Get("k") != nil || s.Has("k") || s.Len() != 0 || len(s.Keys()) != 0 {
		t.Errorf("detached session holds data: %v", s.Keys())
	}
	s.Delete("k")
	s.Clear()
	s.MarkChanged()
	s.Invalidate()
	s.NewIdentity()
	s.SetLifetime(time.Hour)
	s.SetPersistent(false)
	_ = s.Flashes()
	_ = s.IsNew()
	_ = s.ID()
	_ = s.Created()
	_ = s.Expires()
	if _, err := GetAs[string](s, "k"); !errors.Is(err, ErrMissingKey) {
		t.Errorf("detached GetAs: %v, want ErrMissingKey", err)
	}
	ns, err := NewSession(r)
	if !errors.Is(err, ErrNoMiddleware) || ns == nil {
		t.Errorf("NewSession without middleware: %v %v", ns, err)
	}
}

// TestNewSessionOldHandle: as with aiohttp_session's new_session, the
// *Session obtained before NewSession keeps its data, so ported login code
// that copies values from the old session into the new one works; changing
// the old one is an error (ErrReplaced), never a silent loss.
func TestNewSessionOldHandle(t *testing.T) {
	for _, k := range storeKinds() {
		t.Run(k.name, func(t *testing.T) {
			chk := &handlerErrors{}
			logger, logs := newLogger()
			mux := identityRoutes()
			mux.HandleFunc("/port", func(w http.ResponseWriter, r *http.Request) {
				old, err := Get(r)
				chk.add(err)
				ns, err := NewSession(r)
				chk.add(err)
				for _, key := range []string{"user", "cart"} { // the ported Python login
					chk.add(ns.Set(key, old.Get(key)))
				}
				if old.Get("user") != "ann" || old.Len() != 2 || old.IsNew() {
					chk.errorf("old handle after NewSession: %v new=%v, want its data", old.Keys(), old.IsNew())
				}
				if err := old.Set("late", 1); !errors.Is(err, ErrReplaced) {
					chk.errorf("Set on the replaced handle: %v, want ErrReplaced", err)
				}
				if err := old.AddFlash("late"); !errors.Is(err, ErrReplaced) {
					chk.errorf("AddFlash on the replaced handle: %v, want ErrReplaced", err)
				}
				old.Delete("user")
				if old.Get("user") != "ann" {
					chk.errorf("Delete changed the replaced handle")
				}
				if cur, _ := FromContext(r.Context()); cur != ns || !ns.IsNew() {
					chk.errorf("FromContext after NewSession: %p, want NewSession's %p (new)", cur, ns)
				}
			})
			app := startApp(t, mustStore(t, k, randomKey(t)), mux, WithLogger(logger))
			old := loginCookie(t, app)
			r := app.do(t, nil, "/port", old)
			chk.report(t)
			ck, _ := r.setCookie("session")
			// The signed and insecure stores seal without a nonce: the
			// same data within the same millisecond gives the same cookie.
			deterministic := k.name == "signed" || k.name == "insecure"
			if ck == nil || ck.MaxAge <= 0 || ck.Value == old.Value && !deterministic {
				t.Fatalf("ported login: cookie %+v, want a new one", ck)
			}
			got := app.do(t, nil, "/whoami", &http.Cookie{Name: "session", Value: ck.Value})
			if !strings.HasPrefix(got.body, "user=ann cart=3 new=false") {
				t.Errorf("new session after the ported login: %q, want the copied values", got.body)
			}
			if !strings.Contains(logs.String(), "replaced by NewSession") {
				t.Errorf("changes to the replaced handle were not logged: %s", logs)
			}
			if !k.cookie {
				if got := app.do(t, nil, "/whoami", old); !strings.Contains(got.body, "new=true") {
					t.Errorf("old ID still opens a session: %q", got.body)
				}
			}
		})
	}
}

func TestMiddlewareNewSession(t *testing.T) {
	store, backend := countedMemoryStore(nil)
	app := startApp(t, store, identityRoutes())

	old := loginCookie(t, app)
	gets := backend.gets.Load()
	r := app.do(t, nil, "/fresh?bob=1", old)
	if r.body != "len=0 new=true" {
		t.Errorf("NewSession: %q", r.body)
	}
	// The old session is read, so that a logout that ends it while this
	// request runs ends its replacement too.
	if got := backend.gets.Load() - gets; got != 1 {
		t.Errorf("NewSession read the store %d times, want 1", got)
	}
	ck, _ := r.setCookie("session")
	if ck == nil || ck.MaxAge <= 0 || ck.Value == old.Value {
		t.Fatalf("NewSession with data: cookie %+v, want a new ID", ck)
	}
	if n := backend.sessions(); n != 1 {
		t.Errorf("%d records, want only the new one", n)
	}
	if r := app.do(t, nil, "/whoami", old); !strings.Contains(r.body, "new=true") {
		t.Errorf("old record still loads: %q", r.body)
	}
	if r := app.do(t, nil, "/whoami", &http.Cookie{Name: "session", Value: ck.Value}); !strings.HasPrefix(r.body, "user=bob cart=<nil> new=false") {
		t.Errorf("new session: %q", r.body)
	}

	// NewSession that stays empty: old record deleted, cookie expired.
	old = loginCookie(t, app)
	r = app.do(t, nil, "/fresh", old)
	if ck, raw := r.setCookie("session"); ck == nil || !strings.Contains(raw, "Max-Age=0") {
		t.Errorf("empty NewSession: cookie %q, want a deletion cookie", raw)
	}
	if r := app.do(t, nil, "/whoami", old); !strings.Contains(r.body, "new=true") {
		t.Errorf("old record still loads after empty NewSession: %q", r.body)
	}
	if n := backend.sessions(); n != 1 { // the bob session from above
		t.Errorf("%d records, want 1", n)
	}
}

func TestMiddlewareCorruptRecord(t *testing.T) {
	now := time.Now().Unix()
	cases := []struct {
		name string
		data string
		live bool
	}{
		{"not json", "\x00\xffnot json", false},
		{"empty", "", false},
		{"aiohttp invalidated {}", "{}", false},
		{"no created", `{"session":{"user":"ann"}}`, false},
		{"created is a string", `{"created":"yesterday","session":{"user":"ann"}}`, false},
		{"created negative float", `{"created":-1.5,"session":{"user":"ann"}}`, false},
		{"null", "null", false},
		{"array", `[1,2,3]`, false},
		{"truncated", fmt.Sprintf(`{"created":%d,"session":{"user":"an`, now), false},
		{"session not an object", fmt.Sprintf(`{"created":%d,"session":[1]}`, now), false},
		{"expired", `{"created":1,"session":{"user":"ann"}}`, false},
		{"valid control", fmt.Sprintf(`{"created":%d,"session":{"user":"ann"}}`, now), true},
		{"valid float created", fmt.Sprintf(`{"created":%d.25,"session":{"user":"ann"}}`, now), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := &fixedStore{data: []byte(tc.data)}
			app := startApp(t, store, withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
				msg := fmt.Sprintf("new=%v user=%v len=%d", s.IsNew(), s.Get("user"), s.Len())
				_ = s.Set("k", "v")
				_, _ = io.WriteString(w, msg)
			}))
			r := app.do(t, nil, "/", &http.Cookie{Name: "session", Value: "tok"})
			if r.status != 200 {
				t.Fatalf("status %d %q, want 200", r.status, r.body)
			}
			want := "new=true user=<nil> len=0"
			if tc.live {
				want = "new=false user=ann len=1"
			}
			if r.body != want {
				t.Errorf("body %q, want %q", r.body, want)
			}
			store.mu.Lock()
			defer store.mu.Unlock()
			if len(store.saveToken) != 1 {
				t.Fatalf("%d saves, want 1", len(store.saveToken))
			}
			if tc.live != (store.saveToken[0] == "tok") {
				t.Errorf("save token %q: a corrupt record must start a new session, a live one update itself", store.saveToken[0])
			}
		})
	}
}

// fixedStore answers every Load with fixed bytes and records Saves.
type fixedStore struct {
	data      []byte
	mu        sync.Mutex
	saveToken []string
}

func (s *fixedStore) Load(context.Context, string) ([]byte, error) { return bytes.Clone(s.data), nil }

func (s *fixedStore) Save(_ context.Context, token string, _ []byte, _ time.Duration) (string, error) {
	s.mu.Lock()
	s.saveToken = append(s.saveToken, token)
	s.mu.Unlock()
	return "fresh-token", nil
}

func (s *fixedStore) Delete(context.Context, string) error { return nil }

// A client-chosen session ID (unknown to the store, or in the query
// string) is never adopted: a new session always gets a fresh ID.
func TestMiddlewareUnknownIDNotAdopted(t *testing.T) {
	store, backend := countedMemoryStore(nil)
	app := startApp(t, store, withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		msg := fmt.Sprintf("new=%v", s.IsNew())
		_ = s.Set("user", "victim")
		_, _ = io.WriteString(w, msg)
	}))
	planted := newID()
	r := app.do(t, nil, "/", &http.Cookie{Name: "session", Value: planted})
	ck, _ := r.setCookie("session")
	if r.body != "new=true" || ck == nil || ck.Value == planted || ck.Value == "" {
		t.Errorf("planted ID: body %q, cookie %+v: the planted ID %s was adopted", r.body, ck, planted)
	}
	planted = newID()
	r = app.do(t, nil, "/?session="+planted)
	if ck, _ := r.setCookie("session"); r.body != "new=true" || ck == nil || ck.Value == planted {
		t.Errorf("query-string ID: body %q, cookie %+v", r.body, ck)
	}
	if backend.Len() != 2 {
		t.Errorf("%d records, want 2", backend.Len())
	}
}

// Browsers send several cookies of one name (different Paths or Domains);
// a stale or garbage one first must not hide the live one.
func TestMiddlewareSeveralCookies(t *testing.T) {
	store, _ := countedMemoryStore(nil)
	mux := identityRoutes()
	app := startApp(t, store, mux)
	live := loginCookie(t, app)
	r := app.do(t, nil, "/whoami",
		&http.Cookie{Name: "session", Value: "garbage"},
		&http.Cookie{Name: "session", Value: newID()},
		live)
	if !strings.HasPrefix(r.body, "user=ann cart=3 new=false id="+live.Value) {
		t.Errorf("live cookie behind stale ones not found: %q", r.body)
	}
}

// TestMiddlewareCookieFlood: a request carrying 10,000 well-formed cookies
// of the session's name (517 KB of IDs) makes at most maxSessionCookies
// store lookups and gets a fresh session; a live cookie among the first
// three still opens.
func TestMiddlewareCookieFlood(t *testing.T) {
	store, backend := countedMemoryStore(nil)
	app := startApp(t, store, identityRoutes())
	live := loginCookie(t, app)
	var b strings.Builder
	for i := range 10_000 {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString("session=" + newID())
	}
	flood := b.String()
	for _, tc := range []struct {
		name, header, want string
	}{
		{"flood", flood, "new=true"},
		{"live cookie third", "session=" + newID() + "; session=" + newID() + "; session=" + live.Value + "; " + flood, "new=false"},
	} {
		gets := backend.gets.Load()
		req, err := http.NewRequest(http.MethodGet, app.srv.URL+"/whoami", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Cookie", tc.header)
		r := readResponse(http.DefaultClient.Do(req))
		if r.err != nil || r.status != http.StatusOK || !strings.Contains(r.body, tc.want) {
			t.Fatalf("%s: %d %v %q, want %s", tc.name, r.status, r.err, r.body, tc.want)
		}
		if n := backend.gets.Load() - gets; n > maxSessionCookies {
			t.Errorf("%s: %d store lookups, want at most %d", tc.name, n, maxSessionCookies)
		}
	}
}

// TestLateGetReportsCommitted: a handler that starts writing (buffered, or
// flushed) and only then asks for its session gets an error wrapping
// ErrCommitted with the read-only session, and the error is logged, so a
// session-dependent page cannot go out without Vary: Cookie unnoticed.
func TestLateGetReportsCommitted(t *testing.T) {
	store, _ := countedMemoryStore(nil)
	var mu sync.Mutex
	var errs []error
	late := func(flush bool) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "<html>")
			if flush {
				_ = http.NewResponseController(w).Flush()
			}
			s, err := Get(r)
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			if err != nil {
				return // the page stops here: nothing session-dependent goes out
			}
			_, _ = fmt.Fprint(w, "logged in as ", s.Get("user"))
		})
	}
	mux := identityRoutes()
	mux.Handle("/buffered", late(false))
	mux.Handle("/streamed", late(true))
	app := startApp(t, store, mux)
	live := loginCookie(t, app)
	for _, path := range []string{"/buffered", "/streamed"} {
		r := app.do(t, nil, path, live)
		if r.status != http.StatusOK || strings.Contains(r.body, "logged in") {
			t.Fatalf("%s: %d %q", path, r.status, r.body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i, err := range errs {
		if !errors.Is(err, ErrCommitted) {
			t.Errorf("late Get #%d: err %v, want ErrCommitted", i, err)
		}
	}
	if logs := app.log.String(); strings.Count(logs, "Get after the response headers") != 2 {
		t.Errorf("late Gets not logged:\n%s", logs)
	}
}
