package httpsession

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// revocableApp is a NaCl cookie app whose owned sessions are listed in a
// counted memory store, with staleness maxStale, on the test clock.
type revocableApp struct {
	*testApp
	lists   *ServerStore
	backend *countingBackend
	clock   *testClock
}

func newRevocableApp(t *testing.T, maxStale time.Duration) *revocableApp {
	t.Helper()
	clock := newTestClock()
	lists, cb := countedMemoryStore(clock.Now)
	cookies, err := NewNaClCookieStore(randomKey(t))
	if err != nil {
		t.Fatal(err)
	}
	mux := ownerRoutes()
	mux.HandleFunc("/revoke-all", func(w http.ResponseWriter, r *http.Request) {
		s, _ := Get(r)
		_ = s.RevokeOwner(false)
	})
	mux.HandleFunc("/renew", func(w http.ResponseWriter, r *http.Request) {
		s, _ := Get(r)
		s.NewIdentity()
	})
	app := startApp(t, cookies, mux, WithClock(clock.Now), WithCookieRevocation(lists, maxStale))
	return &revocableApp{app, lists, cb, clock}
}

// TestCookieRevocationAnonymousCostsNothing: anonymous cookie sessions
// never touch the lists' store; an owned one reads its owner's list once
// per load without staleness.
func TestCookieRevocationAnonymousCostsNothing(t *testing.T) {
	a := newRevocableApp(t, 0)
	r := a.getWithCookie(t, "/visit", "")
	r = a.getWithCookie(t, "/visit", r.cookie.Value)
	a.getWithCookie(t, "/whoami", r.cookie.Value)
	if n := a.backend.total(); n != 0 {
		t.Fatalf("anonymous cookie sessions made %d store calls", n)
	}
	r = a.getWithCookie(t, "/login", r.cookie.Value)
	before := a.backend.snapshot()
	if got := a.getWithCookie(t, "/whoami", r.cookie.Value).body; got != "alice" {
		t.Fatalf("whoami = %q", got)
	}
	if c := a.backend.since(before); c.gets != 1 || c.writes() != 0 {
		t.Fatalf("an owned cookie load cost %+v, want one read", c)
	}
}

// TestCookieRevocationStaleness: with a staleness of a minute, a
// revocation made elsewhere (another process: the store alone) takes
// effect within the minute, one made through this middleware at once, and
// loads within the minute share one read.
func TestCookieRevocationStaleness(t *testing.T) {
	a := newRevocableApp(t, time.Minute)
	laptop := a.getWithCookie(t, "/login", "").cookie.Value
	phone := a.getWithCookie(t, "/login", "").cookie.Value
	a.getWithCookie(t, "/whoami", laptop)
	before := a.backend.snapshot()
	for range 5 {
		a.getWithCookie(t, "/whoami", phone)
	}
	if c := a.backend.since(before); c.gets != 0 {
		t.Fatalf("5 loads within the staleness made %d reads, want 0", c.gets)
	}
	if err := a.lists.RevokeOwner(t.Context(), "alice", ""); err != nil { // elsewhere
		t.Fatal(err)
	}
	if got := a.getWithCookie(t, "/whoami", laptop).body; got != "alice" {
		t.Fatalf("within the staleness: %q, want the cached answer", got)
	}
	a.clock.Advance(time.Minute)
	if got := a.getWithCookie(t, "/whoami", laptop).body; got != "" {
		t.Fatalf("after the staleness a revoked cookie opens %q", got)
	}
	// Through this middleware: at once, whatever the staleness.
	tablet := a.getWithCookie(t, "/login", "").cookie.Value
	desk := a.getWithCookie(t, "/login", "").cookie.Value
	a.getWithCookie(t, "/whoami", desk) // cached
	a.getWithCookie(t, "/revoke-all", tablet)
	if got := a.getWithCookie(t, "/whoami", desk).body; got != "" {
		t.Fatalf("after this middleware's revocation: %q", got)
	}
}

// TestCookieRevocationFailsClosed: a real Redis keeps the lists and is
// killed; an owned cookie session is then an error (503), never a silent
// anonymous one, while anonymous cookie sessions go on; restarted, the
// owned cookie opens again.
func TestCookieRevocationFailsClosed(t *testing.T) {
	p := startRedis(t, t.TempDir(), "--appendonly", "yes", "--appendfsync", "always")
	lists := NewRedisStore(redisClient(t, p.addr), WithTimeout(2*time.Second))
	cookies, err := NewNaClCookieStore(randomKey(t))
	if err != nil {
		t.Fatal(err)
	}
	a := startApp(t, cookies, ownerRoutes(), WithCookieRevocation(lists, 0))
	owned := a.getWithCookie(t, "/login", "").cookie.Value
	anon := a.getWithCookie(t, "/visit", "").cookie.Value
	p.kill()
	if r := a.getWithCookie(t, "/whoami", owned); r.status != http.StatusServiceUnavailable || r.cookie != nil {
		t.Fatalf("owned load with the lists down: %d %q, cookie %v; want 503 and no cookie", r.status, r.body, r.cookie)
	}
	if r := a.getWithCookie(t, "/visit", anon); r.status != http.StatusOK {
		t.Fatalf("anonymous load with the lists down: %d", r.status)
	}
	p.restart(pingRedis)
	if got := a.getWithCookie(t, "/whoami", owned).body; got != "alice" {
		t.Fatalf("after the restart: %q", got)
	}
}

// TestCookieRevocationUnboundCookies: a cookie bound to an owner before
// revocation was on carries no reference; it opens empty.
func TestCookieRevocationUnboundCookies(t *testing.T) {
	key := randomKey(t)
	plain, _ := NewNaClCookieStore(key)
	mux := ownerRoutes()
	before := startApp(t, plain, mux)
	cookie := before.getWithCookie(t, "/login", "").cookie.Value
	if got := before.getWithCookie(t, "/whoami", cookie).body; got != "alice" {
		t.Fatalf("without revocation: %q", got)
	}
	lists := NewMemoryStore()
	after := startApp(t, plain, mux, WithCookieRevocation(lists, 0))
	if got := after.getWithCookie(t, "/whoami", cookie).body; got != "" {
		t.Fatalf("an unlisted owned cookie opens %q", got)
	}
}

// TestCookieRevocationConfig: the option is for cookie stores, with a
// store and a staleness that is not negative.
func TestCookieRevocationConfig(t *testing.T) {
	nacl, _ := NewNaClCookieStore(randomKey(t))
	for name, c := range map[string]struct {
		store Store
		opt   Option
	}{
		"server store": {NewMemoryStore(), WithCookieRevocation(NewMemoryStore(), 0)},
		"nil lists":    {nacl, WithCookieRevocation(nil, 0)},
		"negative":     {nacl, WithCookieRevocation(NewMemoryStore(), -time.Second)},
		"aiohttp keys": {nacl, WithCookieRevocation(NewMemoryStore(WithAiohttpKeys("AIOHTTP_SESSION")), 0)},
	} {
		if _, err := Middleware(c.store, c.opt); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
}

// TestCookieRevocationNewIdentity: renewing an owned cookie session gives
// it a new entry in its owner's list, so the cookie from before stops
// opening it; the list still holds one session.
func TestCookieRevocationNewIdentity(t *testing.T) {
	a := newRevocableApp(t, 0)
	before := a.getWithCookie(t, "/login", "").cookie.Value
	r := a.getWithCookie(t, "/renew", before)
	if r.cookie == nil {
		t.Fatal("renewal set no cookie")
	}
	if got := a.getWithCookie(t, "/whoami", before).body; got != "" {
		t.Fatalf("the cookie from before the renewal opens %q", got)
	}
	if got := a.getWithCookie(t, "/whoami", r.cookie.Value).body; got != "alice" {
		t.Fatalf("the renewed cookie opens %q", got)
	}
	if list, err := a.lists.ListSessions(t.Context(), "alice"); err != nil || len(list) != 1 {
		t.Fatalf("list: %v, %v", list, err)
	}
}

// heldGets is a ConditionalBackend whose Gets, once hold is set, each
// announce themselves on entered and wait for release.
type heldGets struct {
	ConditionalBackend
	hold     atomic.Bool
	gets     atomic.Int64
	entered  chan struct{}
	release  chan struct{}
	released sync.Once
}

func (h *heldGets) Get(ctx context.Context, key string) ([]byte, error) {
	if h.hold.Load() {
		h.gets.Add(1)
		h.entered <- struct{}{}
		<-h.release
	}
	return h.ConditionalBackend.Get(ctx, key)
}

// TestCookieRevocationSharesRead: two loads of one owner's cookie sessions
// while the first one's read of the list is in flight make one read: the
// second waits for the first's answer.
func TestCookieRevocationSharesRead(t *testing.T) {
	held := &heldGets{ConditionalBackend: NewMemoryBackend(0, nil), entered: make(chan struct{}, 2), release: make(chan struct{})}
	t.Cleanup(func() { held.released.Do(func() { close(held.release) }) })
	lists := NewServerStore(held)
	cookies, err := NewNaClCookieStore(randomKey(t))
	if err != nil {
		t.Fatal(err)
	}
	a := startApp(t, cookies, ownerRoutes(), WithCookieRevocation(lists, time.Minute))
	laptop := a.getWithCookie(t, "/login", "").cookie.Value
	phone := a.getWithCookie(t, "/login", "").cookie.Value
	held.hold.Store(true) // the logins wrote the list; from now on its reads are held
	answers := make(chan response, 2)
	go func() { answers <- a.doWithCookie("/whoami", laptop) }()
	<-held.entered // the laptop's load is reading alice's list
	go func() { answers <- a.doWithCookie("/whoami", phone) }()
	select {
	case <-held.entered:
		t.Error("a second read of the list while the first was in flight")
	case <-time.After(300 * time.Millisecond): // the phone's load waits for the laptop's read
	}
	held.released.Do(func() { close(held.release) })
	for range 2 {
		if r := <-answers; r.err != nil || r.body != "alice" {
			t.Fatalf("whoami: %q, %v", r.body, r.err)
		}
	}
	if n := held.gets.Load(); n != 1 {
		t.Fatalf("%d reads of the list for two concurrent loads, want 1", n)
	}
}
