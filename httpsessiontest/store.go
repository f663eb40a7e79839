package httpsessiontest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-httpsession/httpsession"
)

// newID returns a well-formed session ID that names no session: 32 random
// bytes in unpadded URL-safe base64, as the server store mints them.
func newID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// testStore checks the backend behind httpsession.NewServerStore and the
// middleware.
func (k *kit) testStore(t *testing.T) {
	t.Run("CreateLoadModifyDelete", func(t *testing.T) {
		t.Parallel()
		s := k.newFixture(t).store()
		ctx := t.Context()
		id, err := s.Save(ctx, "", []byte("one"), time.Minute)
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		wantData(t, s, id, "one")
		got, err := s.Save(ctx, id, []byte("two"), time.Minute)
		if err != nil || got != id {
			t.Fatalf("update = %q, %v; want %q, nil", got, err, id)
		}
		wantData(t, s, id, "two")
		id2, err := s.Save(ctx, "", []byte("other"), time.Minute)
		if err != nil || id2 == id {
			t.Fatalf("second create = %q, %v", id2, err)
		}
		if err := s.Delete(ctx, id); err != nil {
			t.Fatalf("delete: %v", err)
		}
		wantNotFound(t, s, id)
		wantData(t, s, id2, "other") // deleting one session leaves the others
		// Update-if-present: a deleted session is not written back.
		if _, err := s.Save(ctx, id, []byte("three"), time.Minute); !errors.Is(err, errNotFound) {
			t.Fatalf("update after delete: %v, want ErrNotFound", err)
		}
		wantNotFound(t, s, id)
	})

	t.Run("KeysAreHashed", func(t *testing.T) {
		t.Parallel()
		f := k.newFixture(t)
		s := f.store()
		id, err := s.Save(t.Context(), "", []byte("x"), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		keys := f.rec.added()
		if len(keys) != 1 {
			t.Fatalf("written keys %q, want one", keys)
		}
		// The backend sees the prefix and a hex SHA-256 digest, never the ID.
		hash, ok := strings.CutPrefix(keys[0], f.prefix)
		if _, err := hex.DecodeString(hash); !ok || err != nil || len(hash) != 64 || strings.Contains(keys[0], id) {
			t.Errorf("key %q: want prefix %q, 64 hex digits and no trace of the ID %q", keys[0], f.prefix, id)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		t.Parallel()
		f := k.newFixture(t)
		s := f.store()
		id, err := s.Save(t.Context(), "", []byte("short"), 1500*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		wantData(t, s, id, "short")
		f.waitNotFound(start, "record with a 1.5s ttl", func() error {
			_, err := s.Load(t.Context(), id)
			return err
		})
		if _, err := s.Save(t.Context(), id, []byte("late"), time.Minute); !errors.Is(err, errNotFound) {
			t.Fatalf("update of an expired session: %v, want ErrNotFound", err)
		}
	})

	t.Run("UpdateRefreshesTTL", func(t *testing.T) {
		t.Parallel()
		s := k.newFixture(t).store()
		start := time.Now()
		// Memcached counts whole seconds on a clock that ticks once a
		// second: a 2.5s ttl becomes 3s, which may end after 2s. The update
		// comes 1s in, leaving a second of margin on a busy machine.
		id, err := s.Save(t.Context(), "", []byte("v1"), 2500*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if _, err := s.Save(t.Context(), id, []byte("v2"), 10*time.Second); err != nil {
			t.Fatalf("update within the ttl: %v", err)
		}
		// Past the first ttl (and past Memcached's rounding of it to 3s).
		time.Sleep(time.Until(start.Add(3300 * time.Millisecond)))
		wantData(t, s, id, "v2")
	})

	t.Run("DeleteIsIdempotent", func(t *testing.T) {
		t.Parallel()
		s := k.newFixture(t).store()
		ctx := t.Context()
		id, err := s.Save(ctx, "", []byte("x"), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := s.Delete(ctx, id); err != nil {
				t.Fatalf("delete #%d: %v", i+1, err)
			}
		}
		if err := s.Delete(ctx, newID()); err != nil {
			t.Fatalf("delete of a never-created session: %v", err)
		}
		wantNotFound(t, s, id)
	})

	t.Run("NotFoundVersusError", func(t *testing.T) {
		t.Parallel()
		s := k.newFixture(t).store()
		unknown := newID()
		_, err := s.Load(t.Context(), unknown)
		if !errors.Is(err, errNotFound) || errors.Is(err, errUnavailable) {
			t.Fatalf("load of an unknown ID: %v, want ErrNotFound only", err)
		}
		if _, err := s.Save(t.Context(), unknown, []byte("x"), time.Minute); !errors.Is(err, errNotFound) || errors.Is(err, errUnavailable) {
			t.Fatalf("update of an unknown ID: %v, want ErrNotFound only", err)
		}
		// A failure is an error wrapping ErrUnavailable, never ErrNotFound
		// (which would silently start a fresh session).
		ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
		defer cancel()
		_, err = s.Load(ctx, unknown)
		if !errors.Is(err, errUnavailable) || errors.Is(err, errNotFound) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("load with an expired deadline: %v, want ErrUnavailable wrapping context.DeadlineExceeded, not ErrNotFound", err)
		}
	})

	t.Run("ContextCancellation", func(t *testing.T) {
		t.Parallel()
		s := k.newFixture(t).store()
		id, err := s.Save(t.Context(), "", []byte("keep"), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err = s.Load(ctx, id)
		wantCancelled(t, "load", err)
		_, err = s.Save(ctx, id, []byte("changed"), time.Minute)
		wantCancelled(t, "update", err)
		_, err = s.Save(ctx, "", []byte("new"), time.Minute)
		wantCancelled(t, "create", err)
		wantCancelled(t, "delete", s.Delete(ctx, id))
		wantData(t, s, id, "keep") // nothing above reached the database
	})

	t.Run("Middleware", func(t *testing.T) {
		t.Parallel()
		f := k.newFixture(t)
		s := f.store()
		a := newApp(t, s)
		r := a.get(t, "/login", "")
		if r.status != http.StatusOK || r.cookie == nil {
			t.Fatalf("create: status %d cookie %v", r.status, r.cookie)
		}
		id := r.cookie.Value
		wantRecordHas(t, s, id, `"user":"alice"`)
		before := f.rec.snapshot()
		if r = a.get(t, "/get?k=user", id); r.body != "alice" || r.cookie != nil {
			t.Fatalf("read: body %q cookie %v, want alice and no cookie", r.body, r.cookie)
		}
		if d := f.rec.since(before); d.gets != 1 || d.writes() != 0 {
			t.Fatalf("read: backend calls %+v, want one get and no write", d)
		}
		before = f.rec.snapshot()
		if r = a.get(t, "/untouched", id); r.status != http.StatusOK || r.cookie != nil {
			t.Fatalf("untouched: status %d cookie %v", r.status, r.cookie)
		}
		if d := f.rec.since(before); d.total() != 0 {
			t.Fatalf("untouched request made backend calls: %+v", d)
		}
		before = f.rec.snapshot()
		if r = a.get(t, "/set?k=user&v=bob", id); r.status != http.StatusOK || r.cookie == nil || r.cookie.Value != id {
			t.Fatalf("modify: status %d cookie %v, want the same ID", r.status, r.cookie)
		}
		if d := f.rec.since(before); d.total() != 2 || d.writes() != 1 {
			t.Fatalf("modify: backend calls %+v, want a read and one write", d)
		}
		wantRecordHas(t, s, id, `"user":"bob"`)
		if r = a.get(t, "/logout", id); r.status != http.StatusOK || r.cookie == nil || r.cookie.MaxAge >= 0 {
			t.Fatalf("logout: status %d cookie %v, want a deletion cookie", r.status, r.cookie)
		}
		wantNotFound(t, s, id)
		if n := f.rec.liveKeys(t); n != 0 {
			t.Fatalf("%d keys left after logout", n)
		}
	})

	t.Run("NewIdentity", func(t *testing.T) {
		t.Parallel()
		f := k.newFixture(t)
		s := f.store()
		a := newApp(t, s)
		old := a.login(t)
		r := a.get(t, "/renew", old)
		if r.status != http.StatusOK || r.cookie == nil || r.cookie.Value == old {
			t.Fatalf("renew: status %d cookie %v, want a new ID", r.status, r.cookie)
		}
		if r.body != r.cookie.Value {
			t.Errorf("Session.ID() after renew = %q, want the new cookie value %q", r.body, r.cookie.Value)
		}
		wantNotFound(t, s, old)
		wantRecordHas(t, s, r.cookie.Value, `"user":"alice"`)
		// The old cookie is dead: it gets a fresh empty session.
		if got := a.get(t, "/get?k=user", old); got.status != http.StatusOK || got.body != "" {
			t.Fatalf("old cookie: status %d body %q, want an empty session", got.status, got.body)
		}
		// A logout through the old cookie still ends the renewed session.
		a.get(t, "/logout", old)
		wantNotFound(t, s, r.cookie.Value)
		if n := f.rec.liveKeys(t); n != 0 {
			t.Fatalf("%d keys left after a logout through the old cookie", n)
		}
	})

	t.Run("AnonymousReadOnlyWritesNothing", func(t *testing.T) {
		t.Parallel()
		f := k.newFixture(t)
		a := newApp(t, f.store())
		for i := range 10 {
			r := a.get(t, "/get?k=user", "")
			if r.status != http.StatusOK || len(r.setCookies) != 0 {
				t.Fatalf("anonymous #%d: status %d Set-Cookie %q", i, r.status, r.setCookies)
			}
		}
		if d := f.rec.snapshot(); d.total() != 0 {
			t.Fatalf("requests without a cookie made backend calls: %+v", d)
		}
		for i, cookie := range []string{"x", "garbage-cookie", newID()[:42], newID() + "A", newID(), newID()} {
			r := a.get(t, "/get?k=user", cookie)
			if err := r.noLiveCookie(); r.status != http.StatusOK || err != nil {
				t.Fatalf("cookie #%d %q: status %d: %v", i, cookie, r.status, err)
			}
		}
		// Malformed IDs never reach the backend; the two unknown ones cost a read each.
		if d := f.rec.snapshot(); d.gets != 2 || d.writes() != 0 {
			t.Fatalf("unknown and malformed IDs: %+v, want 2 gets and no writes", d)
		}
		if n := f.rec.liveKeys(t); n != 0 {
			t.Fatalf("%d keys after anonymous reads", n)
		}
	})

	t.Run("ConcurrentRequests", func(t *testing.T) {
		t.Parallel()
		s := k.newFixture(t).store()
		a := newApp(t, s)
		id := a.login(t)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for g := range 8 {
			wg.Go(func() {
				for i := range 8 {
					path := "/get?k=user"
					if i%2 == 1 {
						path = fmt.Sprintf("/set?k=g%d&v=%d", g, i)
					}
					r := a.send(path, id, "")
					if r.err == nil && r.status != http.StatusOK {
						r.err = fmt.Errorf("%s: status %d", path, r.status)
					}
					if r.err == nil && r.cookie != nil && r.cookie.Value != id {
						r.err = fmt.Errorf("%s: cookie changed to %q", path, r.cookie.Value)
					}
					if r.err != nil {
						errs <- r.err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		wantRecordHas(t, s, id, `"user":"alice"`)
	})
}

// wantData asserts that id loads data.
func wantData(t *testing.T, s *httpsession.ServerStore, id, data string) {
	t.Helper()
	got, err := s.Load(t.Context(), id)
	if err != nil || string(got) != data {
		t.Fatalf("Load = %q, %v; want %q", got, err, data)
	}
}

// wantRecordHas asserts that id loads a record containing part.
func wantRecordHas(t *testing.T, s *httpsession.ServerStore, id, part string) {
	t.Helper()
	got, err := s.Load(t.Context(), id)
	if err != nil || !strings.Contains(string(got), part) {
		t.Fatalf("Load = %s, %v; want a record with %s", got, err, part)
	}
}

// wantNotFound asserts that id names no session.
func wantNotFound(t *testing.T, s *httpsession.ServerStore, id string) {
	t.Helper()
	if data, err := s.Load(t.Context(), id); !errors.Is(err, errNotFound) {
		t.Fatalf("Load = %q, %v; want ErrNotFound", data, err)
	}
}

// ---------------------------------------------------------------------------
// A small application behind the middleware, over real HTTP.

// app serves, for any session:
//
//	/untouched     never looks at the session
//	/get?k=        the value of k ("" if none)
//	/login         starts a session with user=alice, x=old
//	/set?k=&v=     sets k
//	/incr          n++
//	/renew         NewIdentity; the body is the new ID
//	/newsession    NewSession, carrying the user over
//
// /set, /incr, /renew and /newsession act on a session that exists only, as an
// application's handlers for a logged-in user would: a request whose
// session ended before it loaded has nothing to do.
//
//	/logout        Invalidate
//	/dump          the keys, or "new" for a session that does not exist
type app struct {
	srv   *httptest.Server
	mux   *http.ServeMux // the routes, to which a test may add its own
	clock *clock
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// pauseMark in a request's context names it for a pauser; the app sets it
// from the X-Pause header.
type pauseMark struct{}

func newApp(t *testing.T, store httpsession.Store, opts ...httpsession.Option) *app {
	t.Helper()
	a := &app{clock: &clock{now: time.Now()}, mux: http.NewServeMux()}
	mux := a.mux
	mux.HandleFunc("/untouched", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	handle := func(path string, fn func(w http.ResponseWriter, r *http.Request, s *httpsession.Session)) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			if s, err := httpsession.Get(r); err == nil {
				fn(w, r, s)
			}
		})
	}
	loggedIn := func(path string, fn func(w http.ResponseWriter, r *http.Request, s *httpsession.Session)) {
		handle(path, func(w http.ResponseWriter, r *http.Request, s *httpsession.Session) {
			if s.IsNew() {
				_, _ = io.WriteString(w, "new")
				return
			}
			fn(w, r, s)
		})
	}
	handle("/login", func(w http.ResponseWriter, r *http.Request, s *httpsession.Session) {
		_ = s.Set("user", "alice")
		_ = s.Set("x", "old")
	})
	handle("/get", func(w http.ResponseWriter, r *http.Request, s *httpsession.Session) {
		v, _ := httpsession.GetAs[string](s, r.FormValue("k"))
		_, _ = io.WriteString(w, v)
	})
	loggedIn("/set", func(w http.ResponseWriter, r *http.Request, s *httpsession.Session) {
		if err := s.Set(r.FormValue("k"), r.FormValue("v")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	loggedIn("/incr", func(w http.ResponseWriter, r *http.Request, s *httpsession.Session) {
		n, _ := httpsession.GetAs[int](s, "n")
		_ = s.Set("n", n+1)
	})
	loggedIn("/renew", func(w http.ResponseWriter, r *http.Request, s *httpsession.Session) {
		s.NewIdentity()
		w.WriteHeader(http.StatusOK) // commits: the new ID is known now
		_, _ = io.WriteString(w, s.ID())
	})
	loggedIn("/newsession", func(w http.ResponseWriter, r *http.Request, s *httpsession.Session) {
		user := s.Get("user")
		if ns, err := httpsession.NewSession(r); err == nil {
			_ = ns.Set("user", user)
		}
	})
	handle("/logout", func(w http.ResponseWriter, r *http.Request, s *httpsession.Session) { s.Invalidate() })
	handle("/dump", func(w http.ResponseWriter, r *http.Request, s *httpsession.Session) {
		if s.IsNew() {
			_, _ = io.WriteString(w, "new")
			return
		}
		for _, k := range s.Keys() {
			_, _ = fmt.Fprintf(w, "%s=%v;", k, s.Get(k))
		}
	})
	logs := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("middleware log:\n%s", logs)
		}
	})
	opts = append([]httpsession.Option{
		httpsession.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		httpsession.WithSecure(false), // plain-HTTP test server
		httpsession.WithClock(a.clock.Now),
		httpsession.WithIdleTimeout(time.Hour),
	}, opts...)
	mw, err := httpsession.Middleware(store, opts...)
	if err != nil {
		t.Fatalf("Middleware: %v", err)
	}
	h := mw(mux)
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name := r.Header.Get("X-Pause"); name != "" {
			r = r.WithContext(context.WithValue(r.Context(), pauseMark{}, name))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// logBuffer keeps the middleware's log, shown when a test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 64<<10 {
		return len(p), nil
	}
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type response struct {
	status     int
	body       string
	cookie     *http.Cookie // the session cookie set, if any
	setCookies []string
	err        error
}

// noLiveCookie reports a Set-Cookie for the session that is not a deletion.
func (r response) noLiveCookie() error {
	if r.cookie != nil && (r.cookie.MaxAge >= 0 && r.cookie.Value != "") {
		return fmt.Errorf("live session cookie %q", r.setCookies)
	}
	return nil
}

// send runs GET path with cookie ("" for none), marked name ("" for none)
// for a pauser.
func (a *app) send(path, cookie, name string) response {
	req, err := http.NewRequest(http.MethodGet, a.srv.URL+path, nil)
	if err != nil {
		return response{err: err}
	}
	if cookie != "" {
		req.Header.Set("Cookie", httpsession.DefaultCookieName+"="+cookie)
	}
	if name != "" {
		req.Header.Set("X-Pause", name)
	}
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		return response{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, body: string(body), err: err, setCookies: resp.Header.Values("Set-Cookie")}
	for _, c := range resp.Cookies() {
		if c.Name == httpsession.DefaultCookieName {
			r.cookie = c
		}
	}
	return r
}

// get is send without a mark that fails t on a transport error.
func (a *app) get(t *testing.T, path, cookie string) response {
	t.Helper()
	r := a.send(path, cookie, "")
	if r.err != nil {
		t.Fatalf("%s: %v", path, r.err)
	}
	return r
}

// login starts a session with user=alice, x=old and returns its cookie.
func (a *app) login(t *testing.T) string {
	t.Helper()
	r := a.get(t, "/login", "")
	if r.status != http.StatusOK || r.cookie == nil {
		t.Fatalf("login: status %d, no cookie: %s", r.status, r.body)
	}
	return r.cookie.Value
}

// dump returns the session's keys and values as the database has them now.
func (a *app) dump(t *testing.T, cookie string) string {
	t.Helper()
	r := a.get(t, "/dump", cookie)
	if r.status != http.StatusOK {
		t.Fatalf("dump: status %d: %s", r.status, r.body)
	}
	return r.body
}
