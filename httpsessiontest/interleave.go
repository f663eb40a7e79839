package httpsessiontest

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-httpsession/httpsession"
)

// pauser holds the request marked name (see pauseMark) at one point: its
// points are numbered 2i before its i-th backend call and 2i+1 after it.
type pauser struct {
	name    string
	at      int64
	n       atomic.Int64
	reached chan struct{} // closed when the request reaches at
	resume  chan struct{}

	mu  sync.Mutex
	ops []string // the request's calls, in order
}

func (p *pauser) point(ctx context.Context, op string, after bool) {
	if name, _ := ctx.Value(pauseMark{}).(string); name != p.name {
		return
	}
	if !after {
		p.mu.Lock()
		p.ops = append(p.ops, op)
		p.mu.Unlock()
	}
	if p.n.Add(1)-1 == p.at {
		close(p.reached)
		<-p.resume
	}
}

func (p *pauser) calls() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.ops, ",")
}

// pausedFixture returns a fixture whose backend holds request A at point at.
func (k *kit) pausedFixture(t *testing.T, at int64) (*fixture, *pauser) {
	f := k.newFixture(t)
	return f, f.pause("A", at)
}

// pause plans to hold the request marked name at point at; call it before
// the first request.
func (f *fixture) pause(name string, at int64) *pauser {
	p := &pauser{name: name, at: at, reached: make(chan struct{}), resume: make(chan struct{})}
	f.rec.pauses = append(f.rec.pauses, p)
	return p
}

// held starts the request p holds on path in the background and waits
// until it is held; finish resumes it and returns its response. ok is
// false when the request finished without reaching the point.
func held(t *testing.T, a *app, p *pauser, path, cookie string) (finish func() response, ok bool) {
	t.Helper()
	done := make(chan response, 1)
	go func() { done <- a.send(path, cookie, p.name) }()
	select {
	case <-p.reached:
	case r := <-done:
		return func() response { return r }, false
	case <-time.After(20 * time.Second):
		t.Fatalf("%s never reached pause point %d", path, p.at)
	}
	return func() response {
		close(p.resume)
		select {
		case r := <-done:
			return r
		case <-time.After(20 * time.Second):
			t.Fatalf("%s did not finish after resuming", path)
			return response{}
		}
	}, true
}

// testInterleaving runs the deterministic interleavings. A Backend
// without compare-and-set guarantees that a logout wins over changes
// only, not over NewIdentity or NewSession (see the README's "Concurrent
// requests").
func (k *kit) testInterleaving(t *testing.T, conditional bool) {
	paths := []string{"/set?k=x&v=new", "/get?k=x"}
	if conditional {
		paths = append(paths, "/renew", "/newsession")
	}
	// Logout wins: a request of the session is held at each point before
	// and after each of its backend calls while a logout of the session
	// runs to completion. Afterwards no key is left, and neither the old
	// cookie nor one the held request sends opens a session.
	for _, path := range paths {
		t.Run("LogoutWins"+path, func(t *testing.T) {
			t.Parallel()
			points := 0
			for at := int64(0); ; at++ {
				f, p := k.pausedFixture(t, at)
				a := newApp(t, f.store())
				cookie := a.login(t)
				a.clock.Advance(10 * time.Minute) // /get's activity refresh is due
				finish, ok := held(t, a, p, path, cookie)
				if ok {
					if r := a.get(t, "/logout", cookie); r.status != http.StatusOK {
						t.Fatalf("logout: status %d: %s", r.status, r.body)
					}
				}
				r := finish()
				if !ok {
					if at < 4 { // at least the load, a write and the points around them
						t.Fatalf("only %d pause points (%s)", at, p.calls())
					}
					break
				}
				points++
				where := fmt.Sprintf("point %d (%s)", at, p.calls())
				if r.err != nil || r.status != http.StatusOK {
					t.Fatalf("%s: held request: %d %v %s", where, r.status, r.err, r.body)
				}
				if n := f.rec.liveKeys(t); n != 0 {
					t.Fatalf("%s: %d keys left after the logout", where, n)
				}
				for _, c := range []*http.Cookie{{Value: cookie}, r.cookie} {
					if c != nil && c.Value != "" {
						if got := a.dump(t, c.Value); got != "new" {
							t.Fatalf("%s: cookie %.8s… still opens %s", where, c.Value, got)
						}
					}
				}
			}
			t.Logf("%d pause points", points)
		})
	}

	// The other way round: the request loads the session before the
	// logout starts, and completes while the logout is held at each of
	// its points.
	for _, path := range paths {
		t.Run("LogoutHeldWins"+path, func(t *testing.T) {
			t.Parallel()
			points := 0
			for at := int64(0); ; at++ {
				f := k.newFixture(t)
				pa, pb := f.pause("A", 1), f.pause("B", at) // A: after its load
				a := newApp(t, f.store())
				cookie := a.login(t)
				a.clock.Advance(10 * time.Minute) // /get's activity refresh is due
				finishA, ok := held(t, a, pa, path, cookie)
				if !ok {
					t.Fatalf("%s did not pause after its load", path)
				}
				finishB, heldB := held(t, a, pb, "/logout", cookie)
				ra, rb := finishA(), finishB()
				if !heldB {
					if at < 2 {
						t.Fatalf("only %d pause points in the logout (%s)", at, pb.calls())
					}
					break
				}
				points++
				where := fmt.Sprintf("logout point %d (%s), request %s", at, pb.calls(), pa.calls())
				if ra.err != nil || ra.status != http.StatusOK || rb.err != nil || rb.status != http.StatusOK {
					t.Fatalf("%s: request %d %v, logout %d %v", where, ra.status, ra.err, rb.status, rb.err)
				}
				if n := f.rec.liveKeys(t); n != 0 {
					t.Fatalf("%s: %d keys left after the logout", where, n)
				}
				for _, c := range []*http.Cookie{{Value: cookie}, ra.cookie} {
					if c != nil && c.Value != "" {
						if got := a.dump(t, c.Value); got != "new" {
							t.Fatalf("%s: cookie %.8s… still opens %s", where, c.Value, got)
						}
					}
				}
			}
			t.Logf("%d pause points", points)
		})
	}
	if !conditional {
		return
	}

	// A loads, B sets another key and finishes, A sets its key: both
	// survive, at a cost of one more conditional write for A (or a read
	// and a write where ReplaceIf brings nothing back on conflict).
	t.Run("WritersOfDifferentKeysBothSurvive", func(t *testing.T) {
		t.Parallel()
		f, p := k.pausedFixture(t, 1) // after A's load
		a := newApp(t, f.store())
		cookie := a.login(t)
		finish, ok := held(t, a, p, "/set?k=a&v=1", cookie)
		if !ok {
			t.Fatal("A did not pause after its load")
		}
		if r := a.get(t, "/set?k=b&v=2", cookie); r.status != http.StatusOK {
			t.Fatalf("B: status %d: %s", r.status, r.body)
		}
		if r := finish(); r.err != nil || r.status != http.StatusOK {
			t.Fatalf("A: %d %v %s", r.status, r.err, r.body)
		}
		want := "GetVersion,ReplaceIf,ReplaceIf"
		if f.cfg.noCurrent {
			want = "GetVersion,ReplaceIf,GetVersion,ReplaceIf"
		}
		if calls := p.calls(); calls != want {
			t.Errorf("A's calls = %s, want %s", calls, want)
		}
		if got, want := a.dump(t, cookie), "a=1;b=2;user=alice;x=old;"; got != want {
			t.Fatalf("session = %s, want %s", got, want)
		}
	})

	// 4 clients × 25 concurrent increments of one counter with a merge
	// function: none is lost.
	t.Run("ConcurrentIncrementsMerged", func(t *testing.T) {
		t.Parallel()
		const clients, each = 4, 25
		f := k.newFixture(t)
		a := newApp(t, f.store(), httpsession.WithMerge("n", httpsession.Merge(func(base, mine, theirs int) int {
			return theirs + mine - base
		})))
		cookie := a.login(t)
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for range clients {
			wg.Go(func() {
				for range each {
					if r := a.send("/incr", cookie, ""); r.err != nil || r.status != http.StatusOK {
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
		_, after, _ := strings.Cut(dump, "n=")
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.SplitN(after, ";", 2)[0], ";"))
		if n != clients*each {
			t.Fatalf("counter = %d (%s), want %d", n, dump, clients*each)
		}
	})
}
