package httpsession

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// The conformance suite every server-side store passes.

// testServerStore runs the server-side Store contract against stores made by
// newStore. newStore is called once per subtest with that subtest's t; it
// must return an empty store (a fresh key prefix) and clean up its keys
// with t.Cleanup. The subtests run in parallel with each other.
func testServerStore(t *testing.T, newStore func(t *testing.T) *ServerStore) {
	t.Run("CreateLoadModifyDelete", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		id, err := s.Save(ctx, "", []byte("one"), time.Minute)
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if !validID(id) {
			t.Fatalf("create returned malformed ID %q", id)
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
		if _, err := s.Save(ctx, id, []byte("three"), time.Minute); !errors.Is(err, ErrNotFound) {
			t.Fatalf("update after delete: %v, want ErrNotFound", err)
		}
		wantNotFound(t, s, id)
	})

	t.Run("KeysAreHashedAndPrefixed", func(t *testing.T) {
		t.Parallel()
		s, c := withCounting(newStore(t))
		id, err := s.Save(t.Context(), "", []byte("x"), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		keys := c.addedKeys()
		if len(keys) != 1 {
			t.Fatalf("added keys %q, want one", keys)
		}
		k := keys[0]
		if !strings.HasPrefix(k, s.prefix) || strings.Contains(k, id) {
			t.Errorf("key %q: want prefix %q and no trace of the ID %q", k, s.prefix, id)
		}
		if k != s.key(id) {
			t.Errorf("key %q, want hash key %q", k, s.key(id))
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		// 1.5s: Memcached rounds it up to 2s and its clock ticks in whole
		// seconds, so the record lives between 1 and 2 seconds there.
		id, err := s.Save(t.Context(), "", []byte("short"), 1500*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		wantData(t, s, id, "short")
		waitNotFound(t, start, "record with a 1.5s ttl", func() error {
			_, err := s.Load(t.Context(), id)
			return err
		})
		// An expired session is gone for updates as well.
		if _, err := s.Save(t.Context(), id, []byte("late"), time.Minute); !errors.Is(err, ErrNotFound) {
			t.Fatalf("update of expired session: %v, want ErrNotFound", err)
		}
	})

	t.Run("ReplaceRefreshesTTL", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
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
		s := newStore(t)
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
		s := newStore(t)
		unknown := newID()
		_, err := s.Load(t.Context(), unknown)
		if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
			t.Fatalf("load of unknown ID: %v, want ErrNotFound only", err)
		}
		if _, err := s.Save(t.Context(), unknown, []byte("x"), time.Minute); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
			t.Fatalf("update of unknown ID: %v, want ErrNotFound only", err)
		}
		// A failure is an error wrapping ErrUnavailable, never ErrNotFound
		// (which would silently start a fresh session).
		ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
		defer cancel()
		_, err = s.Load(ctx, unknown)
		if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) {
			t.Fatalf("load with an expired deadline: %v, want ErrUnavailable and not ErrNotFound", err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("load with an expired deadline: %v, want it to wrap context.DeadlineExceeded", err)
		}
	})

	t.Run("ContextCancellation", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		id, err := s.Save(t.Context(), "", []byte("keep"), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		check := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) || errors.Is(err, ErrNotFound) {
				t.Errorf("%s with a cancelled context: %v, want ErrUnavailable and context.Canceled", op, err)
			}
		}
		_, err = s.Load(ctx, id)
		check("load", err)
		_, err = s.Save(ctx, id, []byte("changed"), time.Minute)
		check("update", err)
		_, err = s.Save(ctx, "", []byte("new"), time.Minute)
		check("create", err)
		check("delete", s.Delete(ctx, id))
		wantData(t, s, id, "keep") // nothing above reached the store
	})

	t.Run("MalformedIDs", func(t *testing.T) {
		t.Parallel()
		s, c := withCounting(newStore(t))
		ctx := t.Context()
		valid := newID()
		bad := []string{
			"", "x", valid[:42], valid + "A", valid + "=",
			"+" + valid[1:], "/" + valid[1:], "." + valid[1:], " " + valid[1:],
			"%" + valid[1:], "\x00" + valid[1:], "é" + valid[2:], valid[:42] + "\n",
			strings.Repeat("A", 4000), "../../etc/passwd",
		}
		for _, tok := range bad {
			if _, err := s.Load(ctx, tok); err != ErrNotFound {
				t.Errorf("Load(%q) = %v, want ErrNotFound", tok, err)
			}
			if tok != "" {
				if _, err := s.Save(ctx, tok, []byte("x"), time.Minute); err != ErrNotFound {
					t.Errorf("Save(%q) = %v, want ErrNotFound", tok, err)
				}
			}
			if err := s.Delete(ctx, tok); err != nil {
				t.Errorf("Delete(%q) = %v, want nil", tok, err)
			}
		}
		if n := c.total(); n != 0 {
			t.Fatalf("malformed IDs made %d backend calls, want 0", n)
		}
		// The same through the middleware: a malformed cookie is "no
		// session", costs no store call and gets no live cookie (at most a
		// deletion cookie that clears it).
		app := newApp(t, s)
		for _, tok := range bad[1:] {
			if strings.ContainsAny(tok, " \x00\n\"\\;,") || !isPrintableASCII(tok) {
				continue // not sendable as a cookie value
			}
			r := app.getWithCookie(t, "/get?k=user", tok)
			if err := noLiveCookie(r); r.status != http.StatusOK || r.body != "" || err != nil {
				t.Errorf("cookie %q: status %d body %q (%v), want 200, empty, no live cookie", tok, r.status, r.body, err)
			}
		}
		if n := c.total(); n != 0 {
			t.Fatalf("malformed cookies made %d backend calls, want 0", n)
		}
	})

	t.Run("Middleware", func(t *testing.T) {
		t.Parallel()
		s, c := withCounting(newStore(t))
		app := newApp(t, s)
		cl := jarClient(t)
		r := app.do(t, cl, "/set?k=user&v=alice")
		if r.status != http.StatusOK || r.cookie == nil || !validID(r.cookie.Value) {
			t.Fatalf("create: status %d cookie %v", r.status, r.cookie)
		}
		id := r.cookie.Value
		wantRecord(t, s, id, "user", "alice")
		if r = app.do(t, cl, "/get?k=user"); r.body != "alice" || r.cookie != nil {
			t.Fatalf("read: body %q cookie %v, want alice and no cookie", r.body, r.cookie)
		}
		before := c.snapshot()
		if r = app.do(t, cl, "/untouched"); r.status != http.StatusOK || r.cookie != nil {
			t.Fatalf("untouched: status %d cookie %v", r.status, r.cookie)
		}
		if d := c.since(before); d.total() != 0 {
			t.Fatalf("untouched request made backend calls: %+v", d)
		}
		if r = app.do(t, cl, "/set?k=user&v=bob"); r.status != http.StatusOK || r.cookie == nil || r.cookie.Value != id {
			t.Fatalf("modify: status %d cookie %v, want the same ID", r.status, r.cookie)
		}
		wantRecord(t, s, id, "user", "bob")
		if r = app.do(t, cl, "/logout"); r.status != http.StatusOK || r.cookie == nil || r.cookie.MaxAge >= 0 {
			t.Fatalf("logout: status %d cookie %v, want a deletion cookie", r.status, r.cookie)
		}
		wantNotFound(t, s, id)
		if n := c.liveKeys(t); n != 0 {
			t.Fatalf("%d keys left after logout", n)
		}
	})

	t.Run("NewIdentity", func(t *testing.T) {
		t.Parallel()
		s, c := withCounting(newStore(t))
		app := newApp(t, s)
		cl := jarClient(t)
		r := app.do(t, cl, "/set?k=user&v=alice")
		if r.cookie == nil {
			t.Fatalf("create: no cookie (status %d)", r.status)
		}
		old := r.cookie.Value
		r = app.do(t, cl, "/renew")
		if r.status != http.StatusOK || r.cookie == nil || !validID(r.cookie.Value) || r.cookie.Value == old {
			t.Fatalf("renew: status %d cookie %v, want a new ID", r.status, r.cookie)
		}
		if r.body != r.cookie.Value {
			t.Errorf("Session.ID() after renew = %q, want the new cookie value %q", r.body, r.cookie.Value)
		}
		wantNotFound(t, s, old)
		wantRecord(t, s, r.cookie.Value, "user", "alice")
		if got := app.do(t, cl, "/get?k=user"); got.body != "alice" {
			t.Fatalf("after renew: %q, want alice", got.body)
		}
		// The old cookie is dead: it gets a fresh empty session.
		if got := app.getWithCookie(t, "/get?k=user", old); got.status != http.StatusOK || got.body != "" {
			t.Fatalf("old cookie: status %d body %q, want an empty session", got.status, got.body)
		}
		// The new session, and under the old ID a forwarding record that
		// opens nothing but lets a logout through it end the new session.
		if n := c.liveKeys(t); n != 2 {
			t.Fatalf("%d live keys after renew, want 2", n)
		}
	})

	t.Run("AnonymousReadOnlyWritesNothing", func(t *testing.T) {
		t.Parallel()
		s, c := withCounting(newStore(t))
		app := newApp(t, s)
		for i := range 20 {
			r := app.getWithCookie(t, "/get?k=user", "")
			if r.status != http.StatusOK || r.cookie != nil || r.header.Get("Set-Cookie") != "" {
				t.Fatalf("anonymous #%d: status %d cookie %v", i, r.status, r.cookie)
			}
		}
		if d := c.snapshot(); d.total() != 0 {
			t.Fatalf("anonymous requests without a cookie made backend calls: %+v", d)
		}
		for i := range 20 {
			r := app.getWithCookie(t, "/get?k=user", newID()) // unknown ID
			if err := noLiveCookie(r); r.status != http.StatusOK || err != nil {
				t.Fatalf("unknown ID #%d: status %d: %v", i, r.status, err)
			}
		}
		if d := c.snapshot(); d.gets != 20 || d.writes() != 0 {
			t.Fatalf("unknown IDs: %+v, want 20 gets and no writes", d)
		}
		if n := c.liveKeys(t); n != 0 {
			t.Fatalf("%d keys after anonymous reads", n)
		}
	})

	t.Run("ConcurrentRequests", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		app := newApp(t, s)
		cl := jarClient(t)
		r := app.do(t, cl, "/set?k=user&v=alice")
		if r.cookie == nil {
			t.Fatalf("create: no cookie (status %d)", r.status)
		}
		id := r.cookie.Value
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for g := range 8 {
			wg.Go(func() {
				for i := range 8 {
					path := "/get?k=user"
					if i%2 == 1 {
						path = fmt.Sprintf("/set?k=g%d&v=%d", g, i)
					}
					resp, err := cl.Get(app.srv.URL + path)
					if err != nil {
						errs <- err
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						errs <- fmt.Errorf("%s: status %d", path, resp.StatusCode)
						return
					}
					for _, ck := range resp.Cookies() {
						if ck.Name == DefaultCookieName && ck.Value != id {
							errs <- fmt.Errorf("%s: cookie changed to %q", path, ck.Value)
							return
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		// Last writer wins per request, but the session survives intact.
		wantRecord(t, s, id, "user", "alice")
	})

	// Logout wins: request A loads the session, B invalidates it and
	// finishes, then A changes the session and finishes. The record stays
	// deleted and A's response sets no cookie, whatever A did.
	for _, tc := range []struct {
		name string
		act  func(*Session)
	}{
		{"Modify", func(s *Session) { _ = s.Set("user", "mallory") }},
		{"NewIdentity", func(s *Session) { s.NewIdentity() }},
		{"ModifyAndNewIdentity", func(s *Session) { _ = s.Set("user", "mallory"); s.NewIdentity() }},
	} {
		t.Run("LogoutWins/"+tc.name, func(t *testing.T) {
			t.Parallel()
			s, c := withCounting(newStore(t))
			app := newApp(t, s)
			loaded, release := make(chan struct{}), make(chan struct{})
			app.mux.HandleFunc("/in-flight", func(w http.ResponseWriter, r *http.Request) {
				sess, err := Get(r)
				close(loaded)
				if err != nil {
					return
				}
				<-release
				tc.act(sess)
				_, _ = io.WriteString(w, "done")
			})
			cl := jarClient(t)
			if r := app.do(t, cl, "/set?k=user&v=alice"); r.cookie == nil {
				t.Fatalf("create: no cookie (status %d)", r.status)
			}
			id := app.cookie(t, cl)
			resA := make(chan response, 1)
			go func() { resA <- app.doWithCookie("/in-flight", id) }()
			select {
			case <-loaded:
			case <-time.After(10 * time.Second):
				t.Fatal("request A never loaded its session")
			}
			if r := app.do(t, cl, "/logout"); r.cookie == nil || r.cookie.MaxAge >= 0 {
				t.Fatalf("B logout: status %d cookie %v, want a deletion cookie", r.status, r.cookie)
			}
			wantNotFound(t, s, id)
			close(release)
			a := <-resA
			if a.err != nil {
				t.Fatal(a.err)
			}
			if a.status != http.StatusOK {
				t.Errorf("A: status %d", a.status)
			}
			// No cookie: B's logout expired it already, and a deletion
			// cookie could delete one the browser got since.
			if a.cookie != nil {
				t.Errorf("A: cookie %v, want none", a.cookie)
			}
			wantNotFound(t, s, id)
			if n := c.liveKeys(t); n != 0 {
				t.Errorf("%d keys after the logout won: the session was resurrected", n)
			}
		})
	}
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// noLiveCookie reports a Set-Cookie for the session that is not a
// deletion: a dead or malformed cookie may be cleared, never replaced.
func noLiveCookie(r response) error {
	for _, v := range r.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(v)
		if err != nil {
			return fmt.Errorf("bad Set-Cookie %q: %w", v, err)
		}
		if c.Name == DefaultCookieName && (c.MaxAge >= 0 || c.Value != "") {
			return fmt.Errorf("live session cookie %q", v)
		}
	}
	return nil
}

// waitNotFound polls load until it answers ErrNotFound, which it must do
// within 4s of start: a 1.5s ttl, which Memcached rounds up to 2s on a
// clock that ticks in whole seconds.
func waitNotFound(t *testing.T, start time.Time, what string, load func() error) {
	t.Helper()
	for {
		err := load()
		if errors.Is(err, ErrNotFound) {
			t.Logf("expired after %v", time.Since(start).Round(10*time.Millisecond))
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(start) > 4*time.Second {
			t.Fatalf("%s still there after 4s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wantData asserts that id loads data.
func wantData(t *testing.T, s *ServerStore, id, data string) {
	t.Helper()
	got, err := s.Load(t.Context(), id)
	if err != nil || string(got) != data {
		t.Fatalf("Load = %q, %v; want %q", got, err, data)
	}
}

// wantRecord asserts that id loads a record whose key k holds the JSON
// string v.
func wantRecord(t *testing.T, s *ServerStore, id, k, v string) {
	t.Helper()
	data, err := s.Load(t.Context(), id)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	var rec Record
	if err := (JSONCodec{}).DecodeRecord(data, &rec); err != nil {
		t.Fatalf("decode record %q: %v", data, err)
	}
	if got := string(rec.Values[k]); got != strconv.Quote(v) {
		t.Fatalf("record %s = %s, want %q", k, got, v)
	}
}

// wantNotFound asserts that id names no session.
func wantNotFound(t *testing.T, s *ServerStore, id string) {
	t.Helper()
	if data, err := s.Load(t.Context(), id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load = %q, %v; want ErrNotFound", data, err)
	}
}

// ---------------------------------------------------------------------------
// The conformance suite every ConditionalBackend passes.

// backendUnderTest is a ConditionalBackend under test, as the newBackend of
// testConditionalBackend returns it.
type backendUnderTest struct {
	backend ConditionalBackend
	// prefix is fresh for the subtest: keys under it are the subtest's own,
	// and those it creates with Add are removed when it ends.
	prefix string
	// current: ReplaceIf's ErrConflict brings back the current value and
	// version (memory, Redis). Without it they may be nil and 0
	// (Memcached); whatever does come back must still be the current one.
	current bool
	// ttl returns the time key has left to live, as the store reports it
	// (Memcached in whole seconds).
	ttl func(t *testing.T, key string) time.Duration
}

// testConditionalBackend runs the ConditionalBackend contract against
// backends made by newBackend, called once per subtest with that subtest's
// t. The subtests run in parallel with each other.
func testConditionalBackend(t *testing.T, newBackend func(t *testing.T) backendUnderTest) {
	t.Run("VersionMatches", func(t *testing.T) {
		t.Parallel()
		c := newBackend(t)
		b, k, ctx := c.backend, c.prefix+"k", t.Context()
		if err := b.Add(ctx, k, []byte("v1"), time.Hour); err != nil {
			t.Fatal(err)
		}
		v1 := wantVersion(t, b, k, "v1")
		if again := wantVersion(t, b, k, "v1"); again != v1 {
			t.Fatalf("version changed from %#x to %#x without a write", v1, again)
		}
		if _, _, err := b.ReplaceIf(ctx, k, v1, []byte("v2"), 90*time.Minute); err != nil {
			t.Fatalf("ReplaceIf at the current version: %v", err)
		}
		v2 := wantVersion(t, b, k, "v2")
		if v2 == v1 {
			t.Fatalf("ReplaceIf kept the version %#x", v1)
		}
		if got, err := b.Get(ctx, k); err != nil || string(got) != "v2" {
			t.Fatalf("Get after ReplaceIf = %q, %v; want v2", got, err)
		}
		// The ttl is ReplaceIf's, not Add's: longer than the hour Add set.
		wantTTL(t, c, k, 90*time.Minute)
		if _, _, err := b.ReplaceIf(ctx, k, v2, []byte("v3"), time.Hour); err != nil {
			t.Fatalf("second ReplaceIf: %v", err)
		}
		if v3 := wantVersion(t, b, k, "v3"); v3 == v1 || v3 == v2 {
			t.Fatalf("versions %#x, %#x, %#x: want three different ones", v1, v2, v3)
		}
		wantTTL(t, c, k, time.Hour)
	})

	t.Run("PlainWritesChangeVersion", func(t *testing.T) {
		t.Parallel()
		c := newBackend(t)
		b, k, ctx := c.backend, c.prefix+"k", t.Context()
		if err := b.Add(ctx, k, []byte("a"), time.Hour); err != nil {
			t.Fatal(err)
		}
		va := wantVersion(t, b, k, "a")
		if err := b.Replace(ctx, k, []byte("b"), time.Hour); err != nil {
			t.Fatal(err)
		}
		vb := wantVersion(t, b, k, "b")
		if vb == va {
			t.Fatalf("Replace kept the version %#x", va)
		}
		cur, curV, err := b.ReplaceIf(ctx, k, va, []byte("c"), time.Hour)
		wantConflict(t, c, "ReplaceIf at the version before a Replace", cur, curV, err, "b", vb)
		// A key deleted and created again is another version too.
		if err := b.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
		if err := b.Add(ctx, k, []byte("d"), time.Hour); err != nil {
			t.Fatal(err)
		}
		vd := wantVersion(t, b, k, "d")
		cur, curV, err = b.ReplaceIf(ctx, k, vb, []byte("e"), time.Hour)
		wantConflict(t, c, "ReplaceIf at the version before Delete and Add", cur, curV, err, "d", vd)
	})

	t.Run("StaleVersion", func(t *testing.T) {
		t.Parallel()
		c := newBackend(t)
		b, k, ctx := c.backend, c.prefix+"k", t.Context()
		v1, v2 := writeTwice(t, b, k)
		cur, curV, err := b.ReplaceIf(ctx, k, v1, []byte("stale"), 90*time.Minute)
		wantConflict(t, c, "ReplaceIf at a stale version", cur, curV, err, "v2", v2)
		cur, curV, err = b.ReplaceIf(ctx, k, v1, nil, time.Hour)
		wantConflict(t, c, "conditional delete at a stale version", cur, curV, err, "v2", v2)
		// Nothing was written: value, version and ttl are v2's.
		if got := wantVersion(t, b, k, "v2"); got != v2 {
			t.Fatalf("version after refused writes = %#x, want %#x", got, v2)
		}
		wantTTL(t, c, k, time.Hour)
	})

	t.Run("Absent", func(t *testing.T) {
		t.Parallel()
		c := newBackend(t)
		b, k, ctx := c.backend, c.prefix+"k", t.Context()
		if v, ver, err := b.GetVersion(ctx, k); err != ErrNotFound {
			t.Fatalf("GetVersion of a missing key = %q, %#x, %v; want ErrNotFound", v, ver, err)
		}
		for _, value := range [][]byte{[]byte("x"), nil} {
			if cur, _, err := b.ReplaceIf(ctx, k, 1, value, time.Hour); err != ErrNotFound || cur != nil {
				t.Fatalf("ReplaceIf(%q) of a missing key = %q, %v; want ErrNotFound", value, cur, err)
			}
		}
		wantAbsent(t, b, k)
		// The version of a deleted key does not bring it back.
		if err := b.Add(ctx, k, []byte("v1"), time.Hour); err != nil {
			t.Fatal(err)
		}
		v1 := wantVersion(t, b, k, "v1")
		if err := b.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.ReplaceIf(ctx, k, v1, []byte("back"), time.Hour); err != ErrNotFound {
			t.Fatalf("ReplaceIf of a deleted key = %v, want ErrNotFound", err)
		}
		wantAbsent(t, b, k)
	})

	t.Run("ConditionalDelete", func(t *testing.T) {
		t.Parallel()
		c := newBackend(t)
		b, k, ctx := c.backend, c.prefix+"k", t.Context()
		v1, v2 := writeTwice(t, b, k)
		cur, curV, err := b.ReplaceIf(ctx, k, v1, nil, time.Hour)
		wantConflict(t, c, "conditional delete at a stale version", cur, curV, err, "v2", v2)
		wantVersion(t, b, k, "v2")
		if _, _, err := b.ReplaceIf(ctx, k, v2, nil, time.Hour); err != nil {
			t.Fatalf("conditional delete at the current version: %v", err)
		}
		wantAbsent(t, b, k)
		if _, _, err := b.ReplaceIf(ctx, k, v2, nil, time.Hour); err != ErrNotFound {
			t.Fatalf("second conditional delete = %v, want ErrNotFound", err)
		}
		if _, _, err := b.ReplaceIf(ctx, k, v2, []byte("back"), time.Hour); err != ErrNotFound {
			t.Fatalf("ReplaceIf after the conditional delete = %v, want ErrNotFound", err)
		}
		wantAbsent(t, b, k)
		// The key is free again.
		if err := b.Add(ctx, k, []byte("new"), time.Hour); err != nil {
			t.Fatalf("Add after the conditional delete: %v", err)
		}
		wantVersion(t, b, k, "new")
	})

	t.Run("EmptyValue", func(t *testing.T) {
		t.Parallel()
		c := newBackend(t)
		b, k, ctx := c.backend, c.prefix+"k", t.Context()
		if err := b.Add(ctx, k, []byte("v1"), time.Hour); err != nil {
			t.Fatal(err)
		}
		v1 := wantVersion(t, b, k, "v1")
		// An empty value is a value; only nil deletes.
		if _, _, err := b.ReplaceIf(ctx, k, v1, []byte{}, time.Hour); err != nil {
			t.Fatal(err)
		}
		v2 := wantVersion(t, b, k, "")
		// The empty current value comes back as an empty, non-nil slice:
		// nil would say that ReplaceIf brought nothing back.
		cur, curV, err := b.ReplaceIf(ctx, k, v1, []byte("x"), time.Hour)
		wantConflict(t, c, "ReplaceIf at the version before the empty value", cur, curV, err, "", v2)
		if _, _, err := b.ReplaceIf(ctx, k, v2, nil, time.Hour); err != nil {
			t.Fatal(err)
		}
		wantAbsent(t, b, k)
	})

	t.Run("Expiry", func(t *testing.T) {
		t.Parallel()
		c := newBackend(t)
		b, k, ctx := c.backend, c.prefix+"k", t.Context()
		if err := b.Add(ctx, k, []byte("v1"), time.Hour); err != nil {
			t.Fatal(err)
		}
		v1 := wantVersion(t, b, k, "v1")
		// 1.5s: Memcached rounds it up to 2s and its clock ticks in whole
		// seconds, so the item lives between 1 and 2 seconds there.
		if _, _, err := b.ReplaceIf(ctx, k, v1, []byte("short"), 1500*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		v2 := wantVersion(t, b, k, "short")
		waitNotFound(t, start, "value with a 1.5s ttl from ReplaceIf", func() error {
			_, _, err := b.GetVersion(ctx, k)
			return err
		})
		if _, _, err := b.ReplaceIf(ctx, k, v2, []byte("late"), time.Hour); err != ErrNotFound {
			t.Fatalf("ReplaceIf of an expired key = %v, want ErrNotFound", err)
		}
		wantAbsent(t, b, k)
	})

	t.Run("ContextCancellation", func(t *testing.T) {
		t.Parallel()
		c := newBackend(t)
		b, k := c.backend, c.prefix+"k"
		if err := b.Add(t.Context(), k, []byte("keep"), time.Hour); err != nil {
			t.Fatal(err)
		}
		v := wantVersion(t, b, k, "keep")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		check := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) ||
				errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
				t.Errorf("%s with a cancelled context: %v, want ErrUnavailable and context.Canceled", op, err)
			}
		}
		_, _, err := b.GetVersion(ctx, k)
		check("GetVersion", err)
		_, _, err = b.ReplaceIf(ctx, k, v, []byte("changed"), time.Hour)
		check("ReplaceIf", err)
		_, _, err = b.ReplaceIf(ctx, k, v, nil, time.Hour)
		check("conditional delete", err)
		if got := wantVersion(t, b, k, "keep"); got != v { // nothing reached the store
			t.Fatalf("version %#x, want %#x", got, v)
		}
	})

	// Two ReplaceIf calls from the same version, released together: exactly
	// one wins. In odd rounds one of them is a conditional delete: if it
	// wins, the other finds no key; if it loses, it finds another version.
	t.Run("Race", func(t *testing.T) {
		t.Parallel()
		c := newBackend(t)
		b, k, ctx := c.backend, c.prefix+"k", t.Context()
		if err := b.Add(ctx, k, []byte("start"), time.Hour); err != nil {
			t.Fatal(err)
		}
		deletes := 0
		for round := range 40 {
			_, v0, err := b.GetVersion(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			type result struct {
				value, cur []byte
				curV       uint64
				err        error
			}
			var res [2]result
			res[0].value = fmt.Appendf(nil, "g0-r%d", round)
			res[1].value = fmt.Appendf(nil, "g1-r%d", round)
			if round%2 == 1 {
				res[0].value = nil
			}
			start := make(chan struct{})
			var wg sync.WaitGroup
			for g := range res {
				wg.Go(func() {
					<-start
					r := &res[g]
					r.cur, r.curV, r.err = b.ReplaceIf(ctx, k, v0, r.value, time.Hour)
				})
			}
			close(start)
			wg.Wait()
			var winners []int
			for g, r := range res {
				if r.err == nil {
					winners = append(winners, g)
				}
			}
			if len(winners) != 1 {
				t.Fatalf("round %d: %d winners (errors %v, %v), want exactly one", round, len(winners), res[0].err, res[1].err)
			}
			w := winners[0]
			win, lose := res[w], res[1-w]
			if win.value == nil {
				deletes++
				if lose.err != ErrNotFound {
					t.Fatalf("round %d: the conditional delete won, the other ReplaceIf got %v, want ErrNotFound", round, lose.err)
				}
				wantAbsent(t, b, k)
				if err := b.Add(ctx, k, []byte("start"), time.Hour); err != nil {
					t.Fatal(err)
				}
				continue
			}
			curV := wantVersion(t, b, k, string(win.value))
			wantConflict(t, c, fmt.Sprintf("round %d: the losing ReplaceIf", round), lose.cur, lose.curV, lose.err, string(win.value), curV)
		}
		t.Logf("40 rounds, %d won by the conditional delete", deletes)
	})
}

// wantVersion asserts that key holds want and returns its version.
func wantVersion(t *testing.T, b ConditionalBackend, key, want string) uint64 {
	t.Helper()
	v, ver, err := b.GetVersion(t.Context(), key)
	if err != nil || string(v) != want {
		t.Fatalf("GetVersion = %q, %#x, %v; want %q", v, ver, err, want)
	}
	return ver
}

// writeTwice stores v1 under key (Add), then v2 in its place (ReplaceIf at
// v1's version), and returns both versions.
func writeTwice(t *testing.T, b ConditionalBackend, key string) (v1, v2 uint64) {
	t.Helper()
	if err := b.Add(t.Context(), key, []byte("v1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	v1 = wantVersion(t, b, key, "v1")
	if _, _, err := b.ReplaceIf(t.Context(), key, v1, []byte("v2"), time.Hour); err != nil {
		t.Fatal(err)
	}
	return v1, wantVersion(t, b, key, "v2")
}

// wantAbsent asserts that key holds nothing, for GetVersion and Get.
func wantAbsent(t *testing.T, b ConditionalBackend, key string) {
	t.Helper()
	if v, ver, err := b.GetVersion(t.Context(), key); err != ErrNotFound {
		t.Fatalf("GetVersion = %q, %#x, %v; want ErrNotFound", v, ver, err)
	}
	if v, err := b.Get(t.Context(), key); err != ErrNotFound {
		t.Fatalf("Get = %q, %v; want ErrNotFound", v, err)
	}
}

// wantConflict asserts that a ReplaceIf failed with ErrConflict and
// brought back the current value and version, or, where c allows it,
// nothing.
func wantConflict(t *testing.T, c backendUnderTest, op string, cur []byte, curV uint64, err error, want string, wantV uint64) {
	t.Helper()
	if err != ErrConflict {
		t.Fatalf("%s: %v, want ErrConflict", op, err)
	}
	if !c.current && cur == nil && curV == 0 {
		return
	}
	if cur == nil || string(cur) != want || curV != wantV {
		t.Fatalf("%s: ErrConflict with %q (nil: %t), %#x; want the current %q, %#x", op, cur, cur == nil, curV, want, wantV)
	}
}

// wantTTL asserts that key has at most want, and no less than 5 seconds
// short of it, left to live.
func wantTTL(t *testing.T, c backendUnderTest, key string, want time.Duration) {
	t.Helper()
	if got := c.ttl(t, key); got > want || got < want-5*time.Second {
		t.Fatalf("ttl of %q = %v, want %v (at most 5s less)", key, got, want)
	}
}

// anonymousFlood sends n read-only requests: a third without a cookie, a
// third with malformed cookies, a third with valid but unknown IDs. None
// may write the store or hand out a live cookie (a dead cookie may be
// cleared with a deletion cookie; a request without one gets none).
func anonymousFlood(t *testing.T, store *ServerStore, count *countingBackend, n int) {
	t.Helper()
	app := newApp(t, store)
	cl := jarClient(t)
	cl.Jar = nil // every request carries only the cookie it sets itself
	var unknown atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	var next atomic.Int64
	for range 8 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				req, _ := http.NewRequest(http.MethodGet, app.srv.URL+"/get?k=user", nil)
				switch i % 3 {
				case 1:
					req.Header.Set("Cookie", DefaultCookieName+"=garbage-"+strconv.FormatInt(i, 10))
				case 2:
					unknown.Add(1)
					req.Header.Set("Cookie", DefaultCookieName+"="+newID())
				}
				r := readResponse(cl.Do(req))
				if r.err == nil && r.status != http.StatusOK {
					r.err = fmt.Errorf("request %d: status %d", i, r.status)
				}
				if r.err == nil && i%3 == 0 && len(r.header.Values("Set-Cookie")) != 0 {
					r.err = fmt.Errorf("request %d without a cookie: Set-Cookie %q", i, r.header.Values("Set-Cookie"))
				}
				if r.err == nil {
					r.err = noLiveCookie(r)
				}
				if r.err != nil {
					select {
					case errs <- r.err:
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := count.snapshot()
	t.Logf("%d anonymous requests: %+v", n, got)
	if got.writes() != 0 || got.gets != unknown.Load() {
		t.Fatalf("backend calls %+v, want %d gets (the unknown IDs) and no writes", got, unknown.Load())
	}
}

// TestAiohttpKeyShapes: under WithAiohttpKeys both shapes of Python's
// usual key_factory are read, WithAiohttpKeyFactory chooses the one Go
// mints, and any other token is "no session" without a backend call.
func TestAiohttpKeyShapes(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		name  string
		opts  []ServerOption
		valid func(string) bool
	}{
		{"default", nil, validHexID},
		{"UUID4Hex", []ServerOption{WithAiohttpKeyFactory(UUID4Hex)}, validHexID},
		{"UUID4String", []ServerOption{WithAiohttpKeyFactory(UUID4String)}, validUUIDStringID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c := withCounting(NewMemoryStore(append([]ServerOption{WithAiohttpKeys("AIOHTTP_SESSION")}, tc.opts...)...))
			id, err := s.Save(ctx, "", []byte(`{"created": 1}`), time.Minute)
			if err != nil || !tc.valid(id) {
				t.Fatalf("create = %q, %v; want an ID of the chosen shape", id, err)
			}
			if keys := c.addedKeys(); len(keys) != 1 || keys[0] != "AIOHTTP_SESSION_"+id {
				t.Errorf("keys %q, want AIOHTTP_SESSION_%s", keys, id)
			}
			wantData(t, s, id, `{"created": 1}`)
			// Python's sessions of both shapes, written under its key.
			for _, pyID := range []string{"0123456789abcdef0123456789abcdef", "01234567-89ab-cdef-0123-456789abcdef"} {
				if err := s.backend.Add(ctx, "AIOHTTP_SESSION_"+pyID, []byte("py"), time.Minute); err != nil {
					t.Fatal(err)
				}
				wantData(t, s, pyID, "py")
			}
			gets := c.snapshot().gets
			for _, bad := range []string{"", "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcde",
				"01234567-89ab-cdef-0123-456789abcdeg", "0123456789-abcdef-0123-456789abcdef", "01234567_89ab_cdef_0123_456789abcdef",
				"k5BdXb3G7dBf3DqzRkP1vA", "../AIOHTTP_SESSION_0123456789abcdef0123456789abcdef"} {
				if _, _, err := s.LoadVersion(ctx, bad); !errors.Is(err, ErrNotFound) || !errors.Is(err, errForeignID) {
					t.Errorf("load %q: %v, want ErrNotFound (a foreign ID)", bad, err)
				}
			}
			if got := c.snapshot().gets - gets; got != 0 {
				t.Errorf("foreign IDs reached the backend %d times", got)
			}
		})
	}
	t.Run("Config", func(t *testing.T) {
		for _, s := range []*ServerStore{
			NewMemoryStore(WithAiohttpKeyFactory(UUID4String)), // without WithAiohttpKeys
			NewMemoryStore(WithAiohttpKeys("S"), WithAiohttpKeyFactory(UUID4String+1)),
		} {
			if _, err := Middleware(s, WithCookieName("S")); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Middleware: %v, want ErrInvalidConfig", err)
			}
		}
	})
}
