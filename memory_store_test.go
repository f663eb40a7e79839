package httpsession

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"testing"
	"time"
)

// memoryTTL reports the time key has left to live in b, by b's clock.
func memoryTTL(t *testing.T, b *MemoryBackend, key string) time.Duration {
	t.Helper()
	b.mu.RLock()
	it, ok := b.items[key]
	b.mu.RUnlock()
	if !ok {
		t.Fatalf("key %q not in the memory backend", key)
	}
	if it.expires.IsZero() {
		return -1 // no expiry: never what a test wants
	}
	return it.expires.Sub(b.now())
}

// TestMemoryBackendVersions checks what is particular to MemoryBackend's
// counter: every write is a new version, even of the same bytes, expiry
// follows the backend's clock, and no caller shares the stored bytes.
func TestMemoryBackendVersions(t *testing.T) {
	t.Parallel()
	clock := testClockAt(time.Unix(1_800_000_000, 0))
	b := NewMemoryBackend(0, clock.Now)
	ctx := t.Context()

	if err := b.Add(ctx, "a", []byte("same"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(ctx, "b", []byte("same"), time.Minute); err != nil {
		t.Fatal(err)
	}
	va, vb := wantVersion(t, b, "a", "same"), wantVersion(t, b, "b", "same")
	if va == 0 || vb <= va {
		t.Fatalf("versions %d then %d: want a counter from 1 on", va, vb)
	}
	// The same bytes written again are a new version.
	if err := b.Replace(ctx, "a", []byte("same"), time.Minute); err != nil {
		t.Fatal(err)
	}
	va2 := wantVersion(t, b, "a", "same")
	if va2 <= vb {
		t.Fatalf("version after Replace %d, want above %d", va2, vb)
	}
	if _, _, err := b.ReplaceIf(ctx, "a", va, []byte("same"), time.Minute); !errors.Is(err, ErrConflict) {
		t.Fatalf("ReplaceIf at the version before a same-bytes Replace = %v, want ErrConflict", err)
	}
	if _, _, err := b.ReplaceIf(ctx, "a", va2, []byte("same"), time.Minute); err != nil {
		t.Fatal(err)
	}
	va3 := wantVersion(t, b, "a", "same")
	if va3 <= va2 {
		t.Fatalf("version after ReplaceIf %d, want above %d", va3, va2)
	}

	// Copies in and out: changing a slice passed in or handed out does not
	// change the store.
	in := []byte("mine")
	if _, _, err := b.ReplaceIf(ctx, "a", va3, in, time.Minute); err != nil {
		t.Fatal(err)
	}
	copy(in, "XXXX")
	got, v, err := b.GetVersion(ctx, "a")
	if err != nil || string(got) != "mine" {
		t.Fatalf("GetVersion = %q, %v; want mine", got, err)
	}
	copy(got, "XXXX")
	cur, _, err := b.ReplaceIf(ctx, "a", va3, []byte("stale"), time.Minute)
	if !errors.Is(err, ErrConflict) || !bytes.Equal(cur, []byte("mine")) {
		t.Fatalf("stale ReplaceIf = %q, %v; want mine, ErrConflict", cur, err)
	}
	copy(cur, "XXXX")
	wantVersion(t, b, "a", "mine")

	// Expiry by the backend's clock: ReplaceIf sets it, and an expired
	// key is absent for GetVersion and ReplaceIf.
	if _, _, err := b.ReplaceIf(ctx, "a", v, []byte("short"), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := memoryTTL(t, b, "a"); d != 10*time.Second {
		t.Fatalf("ttl after ReplaceIf(10s) = %v", d)
	}
	v = wantVersion(t, b, "a", "short")
	clock.Advance(10 * time.Second)
	wantAbsent(t, b, "a")
	if _, _, err := b.ReplaceIf(ctx, "a", v, []byte("late"), time.Minute); err != ErrNotFound {
		t.Fatalf("ReplaceIf of an expired key = %v, want ErrNotFound", err)
	}
	if _, _, err := b.ReplaceIf(ctx, "a", v, nil, time.Minute); err != ErrNotFound {
		t.Fatalf("conditional delete of an expired key = %v, want ErrNotFound", err)
	}
	if n := b.Len(); n != 1 {
		t.Fatalf("Len = %d, want 1 (b)", n)
	}
}

// ownedTestKey is a key of an owned session as ServerStore forms them: the
// owner's hash tag in braces, then the session's own part.
func ownedTestKey(owner, id int) string {
	return fmt.Sprintf("httpsession:{u%d}:%064x", owner, id)
}

// wantAdd adds key with value key and fails the test on an error.
func wantAdd(t *testing.T, b *MemoryBackend, key string) {
	t.Helper()
	if err := b.Add(t.Context(), key, []byte(key), time.Hour); err != nil {
		t.Fatalf("Add(%q) = %v", key, err)
	}
}

// wantPresent asserts that every key of keys holds its own name.
func wantPresent(t *testing.T, b *MemoryBackend, keys ...string) {
	t.Helper()
	for _, k := range keys {
		wantVersion(t, b, k, k)
	}
}

// TestMemoryEvictsLeastRecentlyUsedAnonymous: a full backend makes room for
// any new key by evicting the anonymous entry read or written least
// recently; owned entries (keys with '{') are never evicted, so a backend
// full of them refuses every Add with ErrUnavailable until one goes.
func TestMemoryEvictsLeastRecentlyUsedAnonymous(t *testing.T) {
	t.Parallel()
	b := NewMemoryBackend(6, nil)
	ctx := t.Context()
	o1, o2, o3 := ownedTestKey(1, 1), ownedTestKey(2, 1), ownedTestKey(3, 1)
	for _, k := range []string{o1, "a1", o2, "a2", "a3", "a4"} {
		wantAdd(t, b, k)
	}
	// Least recently used first: a3 (written), a4 (written), a1 (read),
	// a2 (written again).
	wantPresent(t, b, "a1")
	if err := b.Replace(ctx, "a2", []byte("a2"), time.Hour); err != nil {
		t.Fatal(err)
	}
	evicts := func(newKey, gone string, stay ...string) {
		t.Helper()
		wantAdd(t, b, newKey)
		wantAbsent(t, b, gone)
		if n := b.Len(); n != 6 {
			t.Fatalf("after adding %s: Len = %d, want 6", newKey, n)
		}
	}
	evicts("n1", "a3")
	evicts(o3, "a4") // an owned Add evicts anonymous entries too
	// Reading a2 makes it more recent than n1, added before.
	wantPresent(t, b, "a2", o1, o2)
	evicts("n2", "a1")
	evicts("n3", "n1")
	// Owned Adds take the remaining anonymous places, least recent first,
	// and no owned entry was evicted on the way.
	o4, o5, o6, o7 := ownedTestKey(4, 1), ownedTestKey(1, 2), ownedTestKey(5, 1), ownedTestKey(6, 1)
	evicts(o4, "a2")
	evicts(o5, "n2")
	evicts(o6, "n3")
	wantPresent(t, b, o1, o2, o3, o4, o5, o6)

	// Full of owned entries: every Add fails, anonymous or owned, and
	// nothing is evicted.
	for _, k := range []string{"late", o7} {
		if err := b.Add(ctx, k, []byte(k), time.Hour); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Add(%q) to a backend full of owned entries = %v, want ErrUnavailable", k, err)
		}
		wantAbsent(t, b, k)
	}
	wantPresent(t, b, o1, o2, o3, o4, o5, o6)
	// A logout frees a place.
	if err := b.Delete(ctx, o1); err != nil {
		t.Fatal(err)
	}
	wantAdd(t, b, o7)
	wantPresent(t, b, o2, o3, o4, o5, o6, o7)
}

// TestMemoryReclaimsExpiredFirst: a full backend makes room by dropping
// expired entries, owned or anonymous, before it evicts a live anonymous
// one; only then does the least recently used anonymous entry go.
func TestMemoryReclaimsExpiredFirst(t *testing.T) {
	t.Parallel()
	clock := testClockAt(time.Unix(1_800_000_000, 0))
	b := NewMemoryBackend(4, clock.Now)
	ctx := t.Context()
	o1, o2 := ownedTestKey(1, 1), ownedTestKey(2, 1)
	add := func(key string, ttl time.Duration) {
		t.Helper()
		if err := b.Add(ctx, key, []byte(key), ttl); err != nil {
			t.Fatalf("Add(%q) = %v", key, err)
		}
	}
	add("old", time.Hour) // the least recently used anonymous entry
	add(o1, 5*time.Minute)
	add("short", 10*time.Minute)
	add(o2, time.Hour)

	clock.Advance(6 * time.Minute) // o1 expired
	add("n1", time.Hour)
	wantAbsent(t, b, o1)
	wantPresent(t, b, "old", "short", o2, "n1")

	clock.Advance(5 * time.Minute) // short expired
	add("n2", time.Hour)
	wantAbsent(t, b, "short")
	wantPresent(t, b, "old", o2, "n1", "n2")
	if n := len(b.items); n != 4 {
		t.Fatalf("%d entries kept, want 4 (the expired ones dropped)", n)
	}

	// Nothing expired: the least recently used anonymous entry goes.
	add("n3", time.Hour)
	wantAbsent(t, b, "old")
	wantPresent(t, b, o2, "n1", "n2", "n3")
}

// TestMemoryConcurrentFlood runs anonymous floods, reads, conditional
// writes and logouts of owned sessions at once on a small full backend,
// for the race detector and for the invariants: no anonymous Add is
// refused, every owned session stays readable with increasing versions,
// and the bound holds.
func TestMemoryConcurrentFlood(t *testing.T) {
	t.Parallel()
	const max, owners = 300, 50
	b := NewMemoryBackend(max, nil)
	ctx := t.Context()
	owned := make([]string, owners)
	for i := range owned {
		owned[i] = ownedTestKey(i, 0)
		wantAdd(t, b, owned[i])
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	fail := func(format string, args ...any) {
		select {
		case errs <- fmt.Errorf(format, args...):
		default:
		}
	}
	for w := range 3 { // flooders
		wg.Go(func() {
			for i := range 3000 {
				k := fmt.Sprintf("anon-%d-%d", w, i)
				if err := b.Add(ctx, k, []byte(k), time.Hour); err != nil {
					fail("Add(%q) = %v", k, err)
					return
				}
				if i%7 == 0 {
					_, _ = b.Get(ctx, fmt.Sprintf("anon-%d-%d", w, i/2))
				}
				if i%11 == 0 {
					_ = b.Delete(ctx, fmt.Sprintf("anon-%d-%d", w, i/3))
				}
			}
		})
	}
	for r := range 2 { // readers of owned sessions
		wg.Go(func() {
			last := make([]uint64, owners)
			pair, versions := make([][]byte, 2), make([]uint64, 2)
			for i := range 20000 {
				j := (i + r*17) % owners
				if i%4 == 0 { // an owned load: the session and another key at once
					if err := b.GetVersions(ctx, []string{owned[j], owned[(j+1)%owners]}, pair, versions); err != nil ||
						!bytes.HasPrefix(pair[0], []byte(owned[j])) || versions[0] == 0 {
						fail("GetVersions(%q) = %q, %v, %v", owned[j], pair, versions, err)
						return
					}
				}
				v, ver, err := b.GetVersion(ctx, owned[j])
				if err != nil || !bytes.HasPrefix(v, []byte(owned[j])) {
					fail("GetVersion(%q) = %q, %v", owned[j], v, err)
					return
				}
				if ver < last[j] {
					fail("version of %q went back from %d to %d", owned[j], last[j], ver)
					return
				}
				last[j] = ver
			}
		})
	}
	wg.Go(func() { // a writer of owned sessions
		for i := range 5000 {
			k := owned[i%owners]
			v, ver, err := b.GetVersion(ctx, k)
			if err != nil {
				fail("GetVersion(%q) = %v", k, err)
				return
			}
			if _, _, err := b.ReplaceIf(ctx, k, ver, append(v[:len(k):len(k)], fmt.Sprint(i)...), time.Hour); err != nil {
				fail("ReplaceIf(%q) = %v", k, err)
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(b.items); n > max {
		t.Errorf("%d entries, above the bound %d", n, max)
	}
	for _, k := range owned {
		if v, err := b.Get(ctx, k); err != nil || !bytes.HasPrefix(v, []byte(k)) {
			t.Errorf("Get(%q) = %q, %v after the flood", k, v, err)
		}
	}
}

// TestMemoryGetVersions: GetVersions reads several keys, in any shards, as
// GetVersion does each; a missing or expired key is a nil value at version
// 0; the values are copies.
func TestMemoryGetVersions(t *testing.T) {
	t.Parallel()
	clock := testClockAt(time.Unix(1_800_000_000, 0))
	b := NewMemoryBackend(0, clock.Now)
	ctx := t.Context()
	var keys []string
	for i := range 40 {
		k := ownedTestKey(i, i)
		if i%2 == 1 {
			k = fmt.Sprintf("anon-%d", i)
		}
		ttl := time.Hour
		if i%5 == 0 {
			ttl = time.Minute
		}
		if err := b.Add(ctx, k, []byte(k), ttl); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	keys = append(keys, "missing", ownedTestKey(99, 99))
	clock.Advance(2 * time.Minute)
	values, versions := make([][]byte, len(keys)), make([]uint64, len(keys))
	for i := range values {
		values[i], versions[i] = []byte("stale"), 7
	}
	if err := b.GetVersions(ctx, keys, values, versions); err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		v, ver, err := b.GetVersion(ctx, k)
		if err == ErrNotFound {
			if values[i] != nil || versions[i] != 0 {
				t.Errorf("%q: %q at %d, want nil at 0", k, values[i], versions[i])
			}
			continue
		}
		if !bytes.Equal(values[i], v) || versions[i] != ver {
			t.Errorf("%q: %q at %d, GetVersion says %q at %d", k, values[i], versions[i], v, ver)
		}
	}
	copy(values[1], "XXXX")
	wantVersion(t, b, keys[1], keys[1])
}

// raceEnabled reports whether the test binary runs under the race
// detector, which makes the flood through ServerStore about ten times
// slower.
func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// TestMemoryFlood is the flood: 200,000 anonymous sessions created
// against a memory backend capped at 100,000, with owned sessions created
// before and during it; every creation succeeds, then a new owned session
// is created and every owned one still reads back. The sessions are
// created through ServerStore and by Add on the backend, at a fifth of the
// size (the same ratio) under the race detector, which makes them about ten
// times slower.
func TestMemoryFlood(t *testing.T) {
	t.Parallel()
	max, flood := 100_000, 200_000
	if raceEnabled() {
		max, flood = 20_000, 40_000
	}
	record := []byte(`{"created":1800000000,"session":{"n":1}}`)
	t.Run("ServerStore", func(t *testing.T) {
		b := NewMemoryBackend(max, nil)
		anon := NewServerStore(b)
		testFlood(t, b, max, flood, func(i int) (string, error) {
			return anon.Save(t.Context(), "", record, 24*time.Hour)
		}, func(token string) error {
			got, err := anon.Load(t.Context(), token)
			if err == nil && !bytes.Equal(got, record) {
				err = fmt.Errorf("read back %q", got)
			}
			return err
		})
	})
	t.Run("Owners", func(t *testing.T) {
		// Real owned sessions (SetOwner's commits, with their owners'
		// lists) before and during the flood, then a login over HTTP.
		s := NewServerStore(NewMemoryBackend(max, nil))
		now := time.Now()
		var owned []string
		bind := func(i int) {
			t.Helper()
			token, err := s.NewOwnedToken("user" + strconv.Itoa(i%97))
			if err == nil {
				_, err = s.Commit(t.Context(), &Commit{NewToken: token, Data: record, TTL: 24 * time.Hour,
					Listing: &SessionInfo{Created: now, LastActive: now, Expires: now.Add(24 * time.Hour)}})
			}
			if err != nil {
				t.Fatalf("owned session %d: %v", i, err)
			}
			owned = append(owned, token)
		}
		for i := range 100 {
			bind(i)
		}
		for i := range flood {
			if _, err := s.Save(t.Context(), "", record, 24*time.Hour); err != nil {
				t.Fatalf("anonymous session %d: %v", i, err)
			}
			if i%500 == 0 {
				bind(len(owned))
			}
		}
		app := startApp(t, s, ownerRoutes())
		login := app.getWithCookie(t, "/login", "")
		if login.status != http.StatusOK || login.cookie == nil {
			t.Fatalf("login after the flood: %d, cookie %v", login.status, login.cookie)
		}
		if got := app.getWithCookie(t, "/whoami", login.cookie.Value).body; got != "alice" {
			t.Fatalf("the new login opens %q", got)
		}
		for i, token := range owned {
			if got, err := s.Load(t.Context(), token); err != nil || !bytes.Equal(got, record) {
				t.Fatalf("owned session %d after the flood: %q, %v", i, got, err)
			}
		}
	})
	t.Run("Backend", func(t *testing.T) {
		b := NewMemoryBackend(max, nil)
		key := func(i int) string { return "httpsession:" + strconv.Itoa(i) }
		testFlood(t, b, max, flood, func(i int) (string, error) {
			return key(i), b.Add(t.Context(), key(i), record, 24*time.Hour)
		}, func(k string) error {
			_, err := b.Get(t.Context(), k)
			return err
		})
	})
}

// testFlood creates flood anonymous sessions with create, and owned ones
// on b before and during the flood; see TestMemoryFlood. load reads back
// what create returned.
func testFlood(t *testing.T, b *MemoryBackend, max, flood int, create func(i int) (string, error), load func(string) error) {
	var owned []string
	addOwned := func() {
		k := ownedTestKey(len(owned)%97, len(owned))
		wantAdd(t, b, k)
		owned = append(owned, k)
	}
	for range 100 {
		addOwned()
	}
	var first, last string
	start := time.Now()
	for i := range flood {
		token, err := create(i)
		if err != nil {
			t.Fatalf("anonymous session %d: %v", i, err)
		}
		if i == 0 {
			first = token
		}
		last = token
		if i%500 == 0 {
			addOwned()
		}
	}
	t.Logf("%d anonymous sessions against a bound of %d in %v", flood, max, time.Since(start))
	addOwned() // a login after the flood
	wantPresent(t, b, owned...)
	if n := b.Len(); n != max {
		t.Errorf("Len = %d, want the bound %d", n, max)
	}
	// The flood churned anonymous sessions only: the first went, the
	// last is there.
	if err := load(first); err != ErrNotFound {
		t.Errorf("the first anonymous session: %v, want ErrNotFound (evicted)", err)
	}
	if err := load(last); err != nil {
		t.Errorf("the last anonymous session: %v", err)
	}
}
