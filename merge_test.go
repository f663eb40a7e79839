package httpsession

import (
	"context"
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
// Deterministic interleavings: a Backend wrapper that holds one marked
// request before or after any of its backend calls, while other requests
// of the same session run to completion.
//
// A logout winning at every point, both ways round, and two writers of
// different keys both surviving are facts of every backend: the
// conformance kit (httpsessiontest) checks them, and every backend runs it
// (conformance_test.go). What is here is the merge policy's.

// pauseMark in a request's context names the request's pause plan; the
// test app sets it from an X-Pause header.
type pauseMark struct{}

// pausePlan holds one named request at point at: its pause points are
// numbered 2i before its i-th backend call and 2i+1 after it.
type pausePlan struct {
	at      int64
	n       atomic.Int64
	reached chan struct{} // closed when the request reaches at
	resume  chan struct{}

	mu  sync.Mutex
	ops []string // the request's calls, in order
}

// pauseBackend holds marked requests at their plans' points while other
// requests of the same session run to completion. Plans are added before
// any request is sent.
type pauseBackend struct {
	ConditionalBackend
	plans map[string]*pausePlan
}

func newPauseBackend(b ConditionalBackend, at int64) *pauseBackend {
	p := &pauseBackend{ConditionalBackend: b, plans: map[string]*pausePlan{}}
	p.add("A", at)
	return p
}

// add plans to hold the request marked name at point at (-1: never).
func (p *pauseBackend) add(name string, at int64) {
	p.plans[name] = &pausePlan{at: at, reached: make(chan struct{}), resume: make(chan struct{})}
}

func (p *pauseBackend) point(ctx context.Context, op string, after bool) {
	name, _ := ctx.Value(pauseMark{}).(string)
	plan := p.plans[name]
	if plan == nil {
		return
	}
	if !after {
		plan.mu.Lock()
		plan.ops = append(plan.ops, op)
		plan.mu.Unlock()
	}
	if plan.n.Add(1)-1 == plan.at {
		close(plan.reached)
		<-plan.resume
	}
}

func (p *pauseBackend) Get(ctx context.Context, key string) ([]byte, error) {
	p.point(ctx, "Get", false)
	defer p.point(ctx, "Get", true)
	return p.ConditionalBackend.Get(ctx, key)
}

func (p *pauseBackend) GetVersion(ctx context.Context, key string) ([]byte, uint64, error) {
	p.point(ctx, "GetVersion", false)
	defer p.point(ctx, "GetVersion", true)
	return p.ConditionalBackend.GetVersion(ctx, key)
}

func (p *pauseBackend) GetVersions(ctx context.Context, keys []string, values [][]byte, versions []uint64) error {
	p.point(ctx, "GetVersions", false)
	defer p.point(ctx, "GetVersions", true)
	return p.ConditionalBackend.(BatchBackend).GetVersions(ctx, keys, values, versions)
}

func (p *pauseBackend) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	p.point(ctx, "Add", false)
	defer p.point(ctx, "Add", true)
	return p.ConditionalBackend.Add(ctx, key, value, ttl)
}

func (p *pauseBackend) Replace(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	p.point(ctx, "Replace", false)
	defer p.point(ctx, "Replace", true)
	return p.ConditionalBackend.Replace(ctx, key, value, ttl)
}

func (p *pauseBackend) ReplaceIf(ctx context.Context, key string, version uint64, value []byte, ttl time.Duration) ([]byte, uint64, error) {
	p.point(ctx, "ReplaceIf", false)
	defer p.point(ctx, "ReplaceIf", true)
	return p.ConditionalBackend.ReplaceIf(ctx, key, version, value, ttl)
}

func (p *pauseBackend) Delete(ctx context.Context, key string) error {
	p.point(ctx, "Delete", false)
	defer p.point(ctx, "Delete", true)
	return p.ConditionalBackend.Delete(ctx, key)
}

// calls lists the backend calls of the request marked name.
func (p *pauseBackend) calls(name string) string {
	plan := p.plans[name]
	plan.mu.Lock()
	defer plan.mu.Unlock()
	return strings.Join(plan.ops, ",")
}

// conflictApp is a real HTTP server (routes under /c) whose handlers act on a logged-in
// session only, as an application's would: a request whose session ended
// before it loaded has nothing to do.
//
//	/login         user=alice, x=old
//	/set?k=&v=     sets k
//	/del?k=        deletes k
//	/clear         deletes every key
//	/read          reads x (a due activity refresh writes)
//	/renew         NewIdentity
//	/newsession    NewSession carrying the user over
//	/incr          n++
//	/logout        Invalidate, for any session
//	/dump          the session's keys and values, or "new"
type conflictApp struct {
	*testApp
	store   *ServerStore // the server store, or the revocable cookie store's lists
	cookie  bool         // a NaCl cookie store with WithCookieRevocation(store, 0)
	backend *countingBackend
	pause   *pauseBackend
	clock   *testClock
	logs    *logBuffer
}

func newConflictApp(t *testing.T, cb *countingBackend, at int64, opts ...Option) *conflictApp {
	t.Helper()
	return buildConflictApp(t, cb, at, false, opts...)
}

// buildConflictApp is newConflictApp; with cookie, the session store is a
// NaCl cookie store whose owned sessions are listed in a server store on
// cb, with no staleness.
func buildConflictApp(t *testing.T, cb *countingBackend, at int64, cookie bool, opts ...Option) *conflictApp {
	t.Helper()
	a := &conflictApp{backend: cb, pause: newPauseBackend(cb.counted().(ConditionalBackend), at), clock: newTestClock(), cookie: cookie}
	a.store = NewServerStore(a.pause, WithKeyPrefix(keyPrefix(t)))
	var store Store = a.store
	if cookie {
		var err error
		if store, err = NewNaClCookieStore(randomKey(t)); err != nil {
			t.Fatal(err)
		}
		opts = append([]Option{WithCookieRevocation(a.store, 0)}, opts...)
	}
	l, buf := newLogger()
	a.logs = buf
	opts = append([]Option{WithClock(a.clock.Now), WithIdleTimeout(time.Hour), WithLogger(l)}, opts...)
	mark := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if name := r.Header.Get("X-Pause"); name != "" {
				r = r.WithContext(context.WithValue(r.Context(), pauseMark{}, name))
			}
			next.ServeHTTP(w, r)
		})
	}
	a.testApp = newAppWrapped(t, store, mark, opts...)
	loggedIn := func(w http.ResponseWriter, r *http.Request) *Session {
		s, err := Get(r)
		if err != nil || s.IsNew() {
			_, _ = io.WriteString(w, "new")
			return nil
		}
		return s
	}
	handle := func(path string, fn func(w http.ResponseWriter, r *http.Request, s *Session)) {
		a.mux.HandleFunc("/c"+path, func(w http.ResponseWriter, r *http.Request) {
			if path == "/login" {
				s, err := Get(r)
				if err != nil {
					return
				}
				_ = s.Set("user", "alice")
				_ = s.Set("x", "old")
				_, _ = io.WriteString(w, "hi")
				return
			}
			if s := loggedIn(w, r); s != nil {
				fn(w, r, s)
			}
		})
	}
	handle("/login", nil)
	handle("/set", func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set(r.FormValue("k"), r.FormValue("v"))
	})
	handle("/del", func(w http.ResponseWriter, r *http.Request, s *Session) { s.Delete(r.FormValue("k")) })
	handle("/clear", func(w http.ResponseWriter, r *http.Request, s *Session) { s.Clear() })
	handle("/read", func(w http.ResponseWriter, r *http.Request, s *Session) {
		_, _ = fmt.Fprint(w, s.Get("x"))
	})
	handle("/renew", func(w http.ResponseWriter, r *http.Request, s *Session) { s.NewIdentity() })
	handle("/newsession", func(w http.ResponseWriter, r *http.Request, s *Session) {
		user := s.Get("user")
		ns, err := NewSession(r)
		if err == nil {
			_ = ns.Set("user", user)
		}
	})
	handle("/incr", func(w http.ResponseWriter, r *http.Request, s *Session) {
		n, _ := GetAs[int](s, "n")
		_ = s.Set("n", n+1)
	})
	a.mux.HandleFunc("/c/logout", func(w http.ResponseWriter, r *http.Request) {
		if s, err := Get(r); err == nil {
			s.Invalidate() // whether or not the cookie still opens a session
		}
	})
	handle("/dump", func(w http.ResponseWriter, r *http.Request, s *Session) {
		for _, k := range s.Keys() {
			raw, _ := s.vals.get(k)
			_, _ = fmt.Fprintf(w, "%s=%s;", k, raw)
		}
	})
	return a
}

// send runs one request carrying cookie ("" for none); paused marks it
// "A" for the pause backend.
func (a *conflictApp) send(path, cookie string, paused bool) response {
	mark := ""
	if paused {
		mark = "A"
	}
	return a.sendAs(mark, path, cookie)
}

// sendAs runs one request marked name ("" for none) for the pause backend.
func (a *conflictApp) sendAs(name, path, cookie string) response {
	req, err := http.NewRequest(http.MethodGet, a.srv.URL+"/c"+path, nil)
	if err != nil {
		return response{err: err}
	}
	if cookie != "" {
		req.Header.Set("Cookie", DefaultCookieName+"="+cookie)
	}
	if name != "" {
		req.Header.Set("X-Pause", name)
	}
	return readResponse(a.srv.Client().Do(req))
}

func (a *conflictApp) must(t *testing.T, path, cookie string) response {
	t.Helper()
	r := a.send(path, cookie, false)
	if r.err != nil || r.status != http.StatusOK {
		t.Fatalf("%s: status %d, %v: %s", path, r.status, r.err, r.body)
	}
	return r
}

// login starts a session and returns its cookie.
func (a *conflictApp) login(t *testing.T) string {
	t.Helper()
	r := a.must(t, "/login", "")
	if r.cookie == nil {
		t.Fatal("login set no cookie")
	}
	return r.cookie.Value
}

// dump returns the session's content as the store has it now.
func (a *conflictApp) dump(t *testing.T, cookie string) string {
	t.Helper()
	return a.must(t, "/dump", cookie).body
}

// paused starts the marked request in the background and waits until it
// reaches the pause point; it returns a func that resumes it and returns
// its response. ok is false when the request finished without reaching
// the point (the point lies past its last backend call).
func (a *conflictApp) paused(t *testing.T, path, cookie string) (finish func() response, ok bool) {
	t.Helper()
	return a.pausedAs(t, "A", path, cookie)
}

// overlap holds pathA after its load while pathB, with the same cookie,
// runs to completion; finish lets pathA go on and returns its response.
func (a *conflictApp) overlap(t *testing.T, pathA, pathB, cookie string) (finish func() response) {
	t.Helper()
	finish, ok := a.paused(t, pathA, cookie)
	if !ok {
		t.Fatalf("%s did not pause after its load", pathA)
	}
	a.must(t, pathB, cookie)
	return finish
}

// pausedAs is paused for the request marked name.
func (a *conflictApp) pausedAs(t *testing.T, name, path, cookie string) (finish func() response, ok bool) {
	t.Helper()
	plan := a.pause.plans[name]
	done := make(chan response, 1)
	go func() { done <- a.sendAs(name, path, cookie) }()
	select {
	case <-plan.reached:
	case r := <-done:
		return func() response { return r }, false
	case <-time.After(20 * time.Second):
		t.Fatalf("%s never reached pause point %d", path, plan.at)
	}
	return func() response {
		close(plan.resume)
		select {
		case r := <-done:
			return r
		case <-time.After(20 * time.Second):
			t.Fatalf("%s did not finish after resuming", path)
			return response{}
		}
	}, true
}

// conflictBackends returns, for each server-side store, a function making
// a fresh counted backend whose keys are removed after the test.
func conflictBackends() map[string]func(t *testing.T) *countingBackend {
	return map[string]func(t *testing.T) *countingBackend{
		"memory": func(t *testing.T) *countingBackend {
			return &countingBackend{Backend: NewMemoryBackend(0, nil)}
		},
		"redis": func(t *testing.T) *countingBackend {
			c := redisClient(t, needEnv(t, "HTTPSESSION_REDIS_ADDR"))
			cb := &countingBackend{Backend: NewRedisBackend(c)}
			t.Cleanup(cb.deleteAdded)
			return cb
		},
		"redis-cluster": func(t *testing.T) *countingBackend {
			c := redisClient(t, splitAddrs(needEnv(t, "HTTPSESSION_REDIS_CLUSTER_ADDRS"))...)
			cb := &countingBackend{Backend: NewRedisBackend(c)}
			t.Cleanup(cb.deleteAdded)
			return cb
		},
		"memcached": func(t *testing.T) *countingBackend {
			c := memcachedClient(t, splitAddrs(needEnv(t, "HTTPSESSION_MEMCACHED_ADDRS"))...)
			cb := &countingBackend{Backend: NewMemcachedBackend(c)}
			t.Cleanup(cb.deleteAdded)
			return cb
		},
	}
}

// forEachBackend runs test on every server-side store, in parallel.
func forEachBackend(t *testing.T, test func(t *testing.T, newBackend func(t *testing.T) *countingBackend)) {
	for name, nb := range conflictBackends() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, nb)
		})
	}
}

// TestRefreshNeverUndoes: a read-only request whose activity refresh is
// due overlaps a Set and a Delete; its refresh undoes neither.
func TestRefreshNeverUndoes(t *testing.T) {
	for _, change := range []struct{ path, want string }{
		{"/set?k=x&v=new", `user="alice";x="new";`},
		{"/del?k=x", `user="alice";`},
	} {
		t.Run(strings.TrimPrefix(change.path, "/"), func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, nb func(t *testing.T) *countingBackend) {
				a := newConflictApp(t, nb(t), 1)
				cookie := a.login(t)
				a.clock.Advance(10 * time.Minute) // a tenth of the idle timeout: refresh due
				finish := a.overlap(t, "/read", change.path, cookie)
				if r := finish(); r.status != http.StatusOK || r.body != "old" {
					t.Fatalf("reader: %d %q", r.status, r.body)
				}
				if calls := a.pause.calls("A"); calls != "GetVersion,ReplaceIf" {
					t.Fatalf("reader's calls = %s; want its load and one conditional refresh", calls)
				}
				if got := a.dump(t, cookie); got != change.want {
					t.Fatalf("session = %s, want %s", got, change.want)
				}
			})
		})
	}
}

// TestCounterMerge: 8 concurrent clients × 100 increments of one counter
// over real HTTP. With a merge function the counter ends at exactly 800;
// without one, every lost increment is a reported conflict and the record
// stays valid.
func TestCounterMerge(t *testing.T) {
	const clients, each = 8, 100
	run := func(t *testing.T, a *conflictApp) (int, int) {
		cookie := a.login(t)
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for range clients {
			wg.Go(func() {
				for range each {
					if r := a.send("/incr", cookie, false); r.err != nil || r.status != http.StatusOK {
						errs <- fmt.Errorf("incr: %d %v %s", r.status, r.err, r.body)
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
		dump := a.dump(t, cookie)
		i := strings.Index(dump, "n=")
		if i < 0 {
			t.Fatalf("no counter in %s", dump)
		}
		n, err := strconv.Atoi(dump[i+2 : i+strings.IndexByte(dump[i:], ';')])
		if err != nil {
			t.Fatalf("counter in %s: %v", dump, err)
		}
		reported := 0
		for _, line := range strings.Split(a.logs.String(), "\n") {
			if _, after, ok := strings.Cut(line, " conflicts="); ok {
				c, _ := strconv.Atoi(strings.Fields(after)[0])
				reported += c
			}
		}
		return n, reported
	}
	t.Run("merge", func(t *testing.T) {
		forEachBackend(t, func(t *testing.T, nb func(t *testing.T) *countingBackend) {
			a := newConflictApp(t, nb(t), -1, WithMerge("n", Merge(func(base, mine, theirs int) int {
				return theirs + mine - base
			})))
			if n, _ := run(t, a); n != clients*each {
				t.Fatalf("counter = %d, want %d", n, clients*each)
			}
		})
	})
	t.Run("overwrite", func(t *testing.T) {
		forEachBackend(t, func(t *testing.T, nb func(t *testing.T) *countingBackend) {
			a := newConflictApp(t, nb(t), -1)
			// One overwrite can erase several increments, so the count of
			// reports is not the count of lost increments; a lost one is
			// never silent. TestConflictPolicy checks one report per
			// overwrite.
			n, reported := run(t, a)
			if lost := clients*each - n; n <= 0 || lost > 0 && reported == 0 {
				t.Fatalf("counter = %d: %d increments lost, %d conflicts reported", n, lost, reported)
			}
			t.Logf("counter = %d, %d conflicts reported", n, reported)
		})
	})
}

// TestConflictPolicy: A loads, B sets x and finishes, A sets x. By default
// A's value wins and exactly one conflict is reported; with ConflictFail A
// gets 409 and B's value stays.
func TestConflictPolicy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []Option
		status int
		want   string
	}{
		{"overwrite", nil, http.StatusOK, `user="alice";x="a";`},
		{"fail", []Option{WithConflictPolicy(ConflictFail)}, http.StatusConflict, `user="alice";x="b";`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, nb func(t *testing.T) *countingBackend) {
				a := newConflictApp(t, nb(t), 1, tc.opts...)
				cookie := a.login(t)
				finish := a.overlap(t, "/set?k=x&v=a", "/set?k=x&v=b", cookie)
				r := finish()
				if r.status != tc.status {
					t.Fatalf("A: %d %s, want %d", r.status, r.body, tc.status)
				}
				if got := a.dump(t, cookie); got != tc.want {
					t.Fatalf("session = %s, want %s", got, tc.want)
				}
				logs := a.logs.String()
				if n := strings.Count(logs, "conflicts=1 "); tc.status == http.StatusOK && n != 1 {
					t.Fatalf("%d conflict reports, want 1:\n%s", n, logs)
				}
				if !strings.Contains(logs, `changed by a concurrent request`) {
					t.Fatalf("no error wrapping ErrConflict logged:\n%s", logs)
				}
			})
		})
	}
}

// TestNewIdentityMergesConcurrentChange: A loads and renews its session
// while B, which loaded after A, sets a key and finishes first. A's new
// session carries B's key, and the old ID opens nothing.
func TestNewIdentityMergesConcurrentChange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, nb func(t *testing.T) *countingBackend) {
		a := newConflictApp(t, nb(t), 1)
		cookie := a.login(t)
		finish := a.overlap(t, "/renew", "/set?k=y&v=b", cookie)
		r := finish()
		if r.status != http.StatusOK || r.cookie == nil || r.cookie.Value == cookie {
			t.Fatalf("renew: %d cookie %v, want a new ID", r.status, r.cookie)
		}
		if got, want := a.dump(t, r.cookie.Value), `user="alice";x="old";y="b";`; got != want {
			t.Fatalf("renewed session = %s, want %s", got, want)
		}
		if got := a.dump(t, cookie); got != "new" {
			t.Fatalf("old ID opens %s", got)
		}
	})
}

// TestIdleRefreshThrottle: with a 2 s idle timeout, read-only requests
// every 50 ms record activity once per 200 ms (a tenth of the timeout),
// not on most requests as whole-second activity times made them do; and
// the session ends exactly when the timeout has passed since the last
// recorded activity, not up to a second early.
func TestIdleRefreshThrottle(t *testing.T) {
	cb := &countingBackend{Backend: NewMemoryBackend(0, nil)}
	a := newConflictApp(t, cb, -1, WithIdleTimeout(2*time.Second))
	a.clock.Set(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	cookie := a.login(t)
	before := cb.snapshot()
	cookies := 0
	const step, steps = 50 * time.Millisecond, 80
	for range steps {
		a.clock.Advance(step)
		r := a.must(t, "/read", cookie)
		if r.body != "old" {
			t.Fatalf("read: %q", r.body)
		}
		if r.cookie != nil {
			cookies++
		}
	}
	writes := cb.since(before).writes()
	// 4 s of traffic, one refresh due every 200 ms.
	if want := int64(steps * step / 200 / time.Millisecond); writes != want || int64(cookies) != want {
		t.Fatalf("%d writes and %d Set-Cookies for %d read-only requests over %v, want %d",
			writes, cookies, steps, steps*step, want)
	}
	// The last refresh was at the last step; 2 s minus 1 ms later the
	// session is alive, at 2 s it is over.
	a.clock.Advance(2*time.Second - time.Millisecond)
	if got := a.dump(t, cookie); got == "new" {
		t.Fatal("session ended before its idle timeout")
	}
	// That read recorded activity (it was due): idle again from here.
	a.clock.Advance(2 * time.Second)
	if got := a.dump(t, cookie); got != "new" {
		t.Fatalf("session still open after its idle timeout: %s", got)
	}
}

// TestEmptiedSessionMergedBack: A loads and deletes every key, which ends a
// session, while B sets a new key and finishes first. A's deletions apply
// on top of B's record, which keeps B's key: the session lives on, and A's
// response carries a live cookie for it, not a deletion.
func TestEmptiedSessionMergedBack(t *testing.T) {
	forEachBackend(t, func(t *testing.T, nb func(t *testing.T) *countingBackend) {
		a := newConflictApp(t, nb(t), 1)
		cookie := a.login(t)
		finish := a.overlap(t, "/clear", "/set?k=y&v=b", cookie)
		r := finish()
		if r.status != http.StatusOK || r.cookie == nil || r.cookie.Value != cookie || r.cookie.MaxAge <= 0 {
			t.Fatalf("A: %d cookie %+v, want the session's cookie, live", r.status, r.cookie)
		}
		if got, want := a.dump(t, cookie), `y="b";`; got != want {
			t.Fatalf("session = %s, want %s", got, want)
		}
	})
}
