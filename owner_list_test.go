package httpsession

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestOwnedRoundTrips: loading an owned session is one backend call (the
// record and its owner's list in one read), listing is one, and revoking
// all of an owner's sessions costs the same for 1 session as for 100.
func TestOwnedRoundTrips(t *testing.T) {
	forEachBackend(t, func(t *testing.T, nb func(t *testing.T) *countingBackend) {
		a := newOwnerApp(t, nb(t), -1)
		before := a.backend.snapshot()
		d := a.signIn(t, "alice", "laptop")
		if c := a.backend.since(before); c.total() != 3 {
			t.Fatalf("a login without a session before cost %+v, want 3 calls", c)
		}
		before = a.backend.snapshot()
		if got := a.whoami(t, d); got != "alice" {
			t.Fatalf("whoami = %q", got)
		}
		if c := a.backend.since(before); c.gets != 1 || c.writes() != 0 {
			t.Fatalf("an owned read-only request cost %+v, want 1 read", c)
		}
		job := NewServerStore(a.backend.counted(), WithKeyPrefix(a.store.prefix))
		before = a.backend.snapshot()
		if list, err := job.ListSessions(t.Context(), "alice"); err != nil || len(list) != 1 {
			t.Fatalf("list: %v, %v", list, err)
		}
		if c := a.backend.since(before); c.total() != 1 {
			t.Fatalf("listing cost %+v, want 1 read", c)
		}
		revokeCost := func(owner string, n int) counts {
			for range n {
				a.signIn(t, owner, "device")
			}
			before := a.backend.snapshot()
			if err := job.RevokeOwner(t.Context(), owner, ""); err != nil {
				t.Fatal(err)
			}
			return a.backend.since(before)
		}
		other := a.signIn(t, "alice", "phone")
		before = a.backend.snapshot()
		a.must(t, "/logout", other.cookie)
		if c := a.backend.since(before); c.total() != 4 {
			t.Fatalf("logout of an owned session cost %+v, want 4 calls", c)
		}
		one, hundred := revokeCost("solo", 1), revokeCost("many", 100)
		if one != hundred || one.total() > 2 {
			t.Fatalf("revoking 1 session cost %+v, 100 cost %+v; want equal and at most 2 calls", one, hundred)
		}
	})
}

// TestOwnerCap: beyond the bound, binding another session revokes the
// owner's least recently active one.
func TestOwnerCap(t *testing.T) {
	forEachOwnerStore(t, func(t *testing.T, newApp func(t *testing.T, at int64) *conflictApp) {
		a := newApp(t, -1)
		a.store.maxOwned = 3
		var ds []device
		for i := range 4 {
			ds = append(ds, a.signIn(t, "alice", "device"))
			a.clock.Advance(time.Minute)
			if i == 1 {
				a.must(t, "/set?k=seen&v=1", ds[0].cookie) // the first is now more recent than the second
			}
		}
		for i, want := range []string{"alice", "new", "alice", "alice"} {
			if got := a.whoami(t, ds[i]); got != want {
				t.Fatalf("device %d opens %q, want %q", i, got, want)
			}
		}
		if list, _ := a.store.ListSessions(t.Context(), "alice"); len(list) != 3 {
			t.Fatalf("list holds %d sessions, want 3", len(list))
		}
	})
}

// TestOwnerListFormat: entries survive a round trip through the list's
// text, labels with spaces, newlines and non-ASCII included, and listed
// matches whole handles only.
func TestOwnerListFormat(t *testing.T) {
	at := time.UnixMilli(1700000000123)
	es := []listEntry{
		{handle: handleOf(newID()), created: at, active: at.Add(time.Minute), expires: at.Add(time.Hour), label: "Firefox on Linux\nsecond line é"},
		{handle: handleOf(newID()), created: at, active: at, expires: at.Add(2 * time.Hour)},
	}
	data := appendList(nil, es)
	got := parseList(data)
	if len(got) != 2 {
		t.Fatalf("parsed %d entries from %q", len(got), data)
	}
	for i := range es {
		if got[i].handle != es[i].handle || got[i].label != es[i].label || !got[i].created.Equal(es[i].created) ||
			!got[i].active.Equal(es[i].active) || !got[i].expires.Equal(es[i].expires) {
			t.Fatalf("entry %d: %+v, want %+v", i, got[i], es[i])
		}
	}
	// The README says about 80 bytes per session: one with a label of 16
	// bytes, such as "Firefox on Linux", takes 82.
	one := appendList(nil, []listEntry{{handle: handleOf(newID()), created: at, active: at, expires: at, label: "Firefox on Linux"}})
	if len(one) > 85 {
		t.Fatalf("an entry takes %d bytes: %q", len(one), one)
	}
	if strings.Count(string(data), "\n") != 2 {
		t.Fatalf("a label broke the one-line-per-entry format: %q", data)
	}
	other := "x" + es[1].handle[1:] // another handle of the same length
	if other == es[1].handle {
		other = "y" + es[1].handle[1:]
	}
	if !listed(data, es[1].handle) || listed(data, es[1].handle[:10]) || listed(data, other) {
		t.Fatal("listed matches other than whole handles")
	}
	if got := parseList([]byte("garbage\n" + string(data))); len(got) != 2 {
		t.Fatalf("a malformed line: parsed %d entries", len(got))
	}
}

// TestKeyPrefixBraceRejected: a brace in the key prefix would put every
// key in one Redis Cluster slot.
func TestKeyPrefixBraceRejected(t *testing.T) {
	_, err := Middleware(NewMemoryStore(WithKeyPrefix("{app}:")))
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Middleware = %v, want ErrInvalidConfig", err)
	}
}

// TestOwnersWithAiohttpKeys: aiohttp_session's tokens name no owner, so
// SetOwner records the owner but listing is unsupported.
func TestOwnersWithAiohttpKeys(t *testing.T) {
	store := NewServerStore(NewMemoryBackend(0, nil), WithAiohttpKeys("AIOHTTP_SESSION"))
	var listErr error
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		s, _ := Get(r)
		_ = s.SetOwner("alice")
		_, listErr = s.ListSessions()
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		s, _ := Get(r)
		_, _ = w.Write([]byte(s.Owner()))
	})
	app := startApp(t, store, mux, WithCookieName("AIOHTTP_SESSION"))
	c, _ := app.do(t, nil, "/login").setCookie("AIOHTTP_SESSION")
	if c == nil || !validHexID(c.Value) {
		t.Fatalf("login cookie %v, want an aiohttp_session ID", c)
	}
	if got := app.do(t, nil, "/whoami", c).body; got != "alice" {
		t.Fatalf("owner after login: %q", got)
	}
	if !errors.Is(listErr, errors.ErrUnsupported) {
		t.Fatalf("ListSessions = %v, want errors.ErrUnsupported", listErr)
	}
	if _, err := store.ListSessions(t.Context(), "alice"); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("store.ListSessions = %v", err)
	}
}

// TestOwnerListLostFailsClosed: when an owner's list is gone (Memcached
// evicted it), the owner's sessions end rather than outlive a revocation.
func TestOwnerListLostFailsClosed(t *testing.T) {
	forEachOwnerStore(t, func(t *testing.T, newApp func(t *testing.T, at int64) *conflictApp) {
		a := newApp(t, -1)
		d := a.signIn(t, "alice", "laptop")
		if err := a.backend.Backend.Delete(t.Context(), a.store.listKey(ownerTag("alice"))); err != nil {
			t.Fatal(err)
		}
		if got := a.whoami(t, d); got != "new" {
			t.Fatalf("without its list the session opens %q", got)
		}
	})
}

// TestOwnedCommitWithoutListing: a Commit that binds a session without a
// Listing (a caller other than the middleware) lists it for the record's
// time to live, not for a moment.
func TestOwnedCommitWithoutListing(t *testing.T) {
	clock := newTestClock()
	s := NewServerStore(NewMemoryBackend(0, clock.Now))
	token, err := s.NewOwnedToken("alice")
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(`{"created":1800000000,"session":{}}`)
	if _, err := s.Commit(t.Context(), &Commit{NewToken: token, Data: data, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if _, err := s.Load(t.Context(), token); err != nil {
		t.Fatalf("a minute after binding: %v", err)
	}
}
