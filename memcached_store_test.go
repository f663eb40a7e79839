package httpsession

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// memcachedStore returns a store on client under a fresh prefix. Its
// backend records the keys it creates, and deletes them when t ends
// (Memcached cannot list keys).
func memcachedStore(t *testing.T, client *memcache.Client, opts ...ServerOption) (*ServerStore, *countingBackend) {
	t.Helper()
	c := &countingBackend{Backend: NewMemcachedBackend(client)}
	t.Cleanup(c.deleteAdded)
	return NewServerStore(c.counted(), append([]ServerOption{WithKeyPrefix(keyPrefix(t))}, opts...)...), c
}

// memcachedTTL asks the servers for key's remaining TTL with the meta
// command "mg <key> t": -1 means no expiry.
func memcachedTTL(t *testing.T, addrs []string, key string) int64 {
	t.Helper()
	for _, addr := range addrs {
		line := memcachedCommand(t, addr, "mg "+key+" t")
		if line == "EN" {
			continue
		}
		ttl, ok := strings.CutPrefix(line, "HD t")
		if !ok {
			t.Fatalf("mg: %q", line)
		}
		n, err := strconv.ParseInt(ttl, 10, 64)
		if err != nil {
			t.Fatalf("mg: %q", line)
		}
		return n
	}
	t.Fatalf("key %q on no server", key)
	return 0
}

// memcachedCommand sends one command line over a raw connection and
// returns the first response line.
func memcachedCommand(t *testing.T, addr, cmd string) string {
	t.Helper()
	lines, err := rawCommand(addr, cmd, nil)
	if err != nil {
		t.Fatal(err)
	}
	return lines[0]
}

// memcachedStats reads "stats" from one server.
func memcachedStats(t *testing.T, addr string) map[string]int64 {
	t.Helper()
	lines, err := rawCommand(addr, "stats", func(line string) bool { return line == "END" })
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "STAT" {
			if n, err := strconv.ParseInt(f[2], 10, 64); err == nil {
				out[f[1]] = n
			}
		}
	}
	return out
}

// TestMemcachedBackend checks add/replace semantics and the expiration
// field as the servers understood it.
func TestMemcachedBackend(t *testing.T) {
	addrs := splitAddrs(needEnv(t, "HTTPSESSION_MEMCACHED_ADDRS"))
	t.Parallel()
	client := memcachedClient(t, addrs...)
	s, _ := memcachedStore(t, client)
	b := NewMemcachedBackend(client)
	ctx := t.Context()
	k := s.prefix + "k"
	t.Cleanup(func() { _ = b.Delete(context.Background(), k) })

	if _, err := b.Get(ctx, k); err != ErrNotFound {
		t.Fatalf("Get missing = %v, want ErrNotFound", err)
	}
	if err := b.Replace(ctx, k, []byte("v"), time.Hour); err != ErrNotFound {
		t.Fatalf("Replace missing = %v, want ErrNotFound", err)
	}
	if err := b.Add(ctx, k, []byte("v1"), time.Hour); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if err := b.Add(ctx, k, []byte("v2"), time.Hour); err != ErrExists {
		t.Fatalf("Add existing = %v, want ErrExists", err)
	}
	if v, err := b.Get(ctx, k); err != nil || string(v) != "v1" {
		t.Fatalf("Get = %q, %v; want v1", v, err)
	}
	if ttl := memcachedTTL(t, addrs, k); ttl < 3595 || ttl > 3600 {
		t.Fatalf("TTL after Add(1h) = %d s", ttl)
	}
	// Longer than 30 days: sent as an absolute time. Sent as a relative
	// number it would be read as a date in 1970 and the item would vanish.
	if err := b.Replace(ctx, k, []byte("v3"), 40*24*time.Hour); err != nil {
		t.Fatalf("Replace(40 days): %v", err)
	}
	if ttl := memcachedTTL(t, addrs, k); ttl < 40*86400-10 || ttl > 40*86400+2 {
		t.Fatalf("TTL after Replace(40 days) = %d s, want about %d", ttl, 40*86400)
	}
	if v, err := b.Get(ctx, k); err != nil || string(v) != "v3" {
		t.Fatalf("Get after 40-day Replace = %q, %v", v, err)
	}
	// Sub-second TTLs round up to a second, never down to "no expiry".
	if err := b.Replace(ctx, k, []byte("v4"), 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if ttl := memcachedTTL(t, addrs, k); ttl < 0 || ttl > 1 {
		t.Fatalf("TTL after Replace(300ms) = %d s, want 0 or 1", ttl)
	}
	// A ttl <= 0 (a session past its deadline) never makes an immortal
	// item: it expires at once.
	if err := b.Replace(ctx, k, []byte("v5"), 0); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Get(ctx, k); err != ErrNotFound {
		t.Fatalf("Get after Replace(ttl 0) = %q, %v; want ErrNotFound", v, err)
	}
	if err := b.Add(ctx, k, []byte("v6"), -time.Second); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Get(ctx, k); err != ErrNotFound {
		t.Fatalf("Get after Add(ttl -1s) = %q, %v; want ErrNotFound", v, err)
	}
	for range 2 {
		if err := b.Delete(ctx, k); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	if _, err := b.Get(ctx, k); err != ErrNotFound {
		t.Fatalf("Get after Delete = %v", err)
	}
}

// TestMemcachedConditionalDelete checks on a private memcached, by its own
// stats and raw protocol answers, that ReplaceIf with a nil value is one cas
// (no delete command), that a following get misses, that a stale one is
// refused (cas_badval) and leaves the item, and that ErrConflict comes with
// nothing.
func TestMemcachedConditionalDelete(t *testing.T) {
	t.Parallel()
	p := startMemcached(t)
	client := memcachedClient(t, p.addr)
	s, _ := memcachedStore(t, client)
	b := s.backend
	ctx := t.Context()
	k := s.prefix + "k"
	v1, v2 := writeTwice(t, b, k)

	before := memcachedStats(t, p.addr)
	cur, curV, err := b.ReplaceIf(ctx, k, v1, nil, time.Hour)
	if err != ErrConflict || cur != nil || curV != 0 {
		t.Fatalf("stale conditional delete = %q, %d, %v; want nil, 0, ErrConflict", cur, curV, err)
	}
	after := memcachedStats(t, p.addr)
	d := func(name string) int64 { return after[name] - before[name] }
	if d("cas_badval") != 1 || d("cas_hits") != 0 {
		t.Fatalf("stale conditional delete: cas_badval +%d cas_hits +%d, want +1 and +0", d("cas_badval"), d("cas_hits"))
	}
	if line := memcachedCommand(t, p.addr, "mg "+k+" v"); line != "VA 2" {
		t.Fatalf("mg after the stale conditional delete: %q, want the item (VA 2)", line)
	}

	before = memcachedStats(t, p.addr)
	if _, _, err := b.ReplaceIf(ctx, k, v2, nil, time.Hour); err != nil {
		t.Fatalf("conditional delete: %v", err)
	}
	after = memcachedStats(t, p.addr)
	if d("cas_hits") != 1 || d("delete_hits")+d("delete_misses") != 0 {
		t.Fatalf("conditional delete: cas_hits +%d deletes +%d, want one cas and no delete",
			d("cas_hits"), d("delete_hits")+d("delete_misses"))
	}
	// Raw get and mg, not only gomemcache's reading of them: the server
	// itself no longer serves the item.
	before = memcachedStats(t, p.addr)
	if line := memcachedCommand(t, p.addr, "get "+k); line != "END" {
		t.Fatalf("get after the conditional delete: %q, want END (a miss)", line)
	}
	if line := memcachedCommand(t, p.addr, "mg "+k+" v"); line != "EN" {
		t.Fatalf("mg after the conditional delete: %q, want EN (a miss)", line)
	}
	after = memcachedStats(t, p.addr)
	if d("get_misses") != 2 || d("get_hits") != 0 {
		t.Fatalf("gets after the conditional delete: get_misses +%d get_hits +%d, want +2 and +0", d("get_misses"), d("get_hits"))
	}
	wantAbsent(t, b, k)
	if _, _, err := b.ReplaceIf(ctx, k, v2, []byte("back"), time.Hour); err != ErrNotFound {
		t.Fatalf("ReplaceIf after the conditional delete = %v, want ErrNotFound", err)
	}
	// add takes the key again, as it would a deleted one.
	if err := b.Add(ctx, k, []byte("v3"), time.Hour); err != nil {
		t.Fatalf("Add after the conditional delete: %v", err)
	}
	wantVersion(t, b, k, "v3")
}

func TestMemcachedExpiration(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	const day = 24 * time.Hour
	for _, tc := range []struct {
		ttl  time.Duration
		want int32
	}{
		{-time.Second, -1},
		{0, -1},
		{time.Nanosecond, 1},
		{time.Second, 1},
		{time.Second + time.Millisecond, 2},
		{time.Hour, 3600},
		{30 * day, 30 * 86400},
		{30*day + time.Second, 1_800_000_000 + 30*86400 + 1},
		{40 * day, 1_800_000_000 + 40*86400},
		{100 * 365 * day, math.MaxInt32},
	} {
		if got := memcachedExpiration(tc.ttl, now); got != tc.want {
			t.Errorf("memcachedExpiration(%v) = %d, want %d", tc.ttl, got, tc.want)
		}
	}
}

// TestMemcachedInvalidKeys checks that a prefix making keys Memcached
// refuses is an error, not a panic, and that such a key never reaches a
// server.
func TestMemcachedInvalidKeys(t *testing.T) {
	t.Parallel()
	var accepted atomic.Int32
	client := memcache.New(serveTCP(t, func(c net.Conn) {
		accepted.Add(1)
		c.Close()
	}))
	for _, prefix := range []string{
		"with space:", "tab\t:", "nl\n:", "del\x7f:", "nul\x00:",
		strings.Repeat("p", memcachedMaxKey-64+1), // 251-byte keys
	} {
		s := NewMemcachedStore(client, WithKeyPrefix(prefix))
		id := newID()
		check := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, ErrInvalidConfig) || !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) {
				t.Errorf("prefix %q: %s = %v, want ErrInvalidConfig and ErrUnavailable", prefix, op, err)
			}
		}
		_, err := s.Load(t.Context(), id)
		check("Load", err)
		_, err = s.Save(t.Context(), "", []byte("x"), time.Minute)
		check("create", err)
		_, err = s.Save(t.Context(), id, []byte("x"), time.Minute)
		check("update", err)
		check("Delete", s.Delete(t.Context(), id))
	}
	// The longest legal key passes the check (and then fails on this fake
	// server, which hangs up).
	s := NewMemcachedStore(client, WithKeyPrefix(strings.Repeat("p", memcachedMaxKey-64)))
	if _, err := s.Load(t.Context(), newID()); errors.Is(err, ErrInvalidConfig) || !errors.Is(err, ErrUnavailable) {
		t.Errorf("250-byte key: %v, want a server error", err)
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("%d connections, want 1 (only the legal key)", n)
	}
}

// TestMemcachedContext points the client at a server that never answers,
// with a client Timeout far longer than the store's WithTimeout: the
// request still fails with 503 once the store's deadline passes.
func TestMemcachedContext(t *testing.T) {
	t.Parallel()
	client := memcache.New(silentListener(t))
	client.Timeout = 3 * time.Second
	store := NewMemcachedStore(client, WithTimeout(200*time.Millisecond))
	start := time.Now()
	_, err := store.Load(t.Context(), newID())
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Load on a silent server = %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	t.Logf("Load on a silent server failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	app := newApp(t, store)
	start = time.Now()
	r := app.getWithCookie(t, "/set?k=user&v=alice", "")
	elapsed := time.Since(start)
	if r.status != http.StatusServiceUnavailable || len(r.header.Values("Set-Cookie")) != 0 {
		t.Fatalf("create on a silent server: status %d Set-Cookie %q", r.status, r.header.Values("Set-Cookie"))
	}
	if elapsed > 2*time.Second {
		t.Fatalf("create on a silent server took %v: the store's deadline was not honoured", elapsed)
	}
	t.Logf("create on a silent server: 503 after %v", elapsed.Round(time.Millisecond))
}

// TestMemcachedRoundTrips counts calls per request on a private memcached
// twice: with a counting Backend and with the server's own "stats" deltas.
func TestMemcachedRoundTrips(t *testing.T) {
	t.Parallel()
	p := startMemcached(t)
	client := memcachedClient(t, p.addr)
	store, count := memcachedStore(t, client)
	clock := testClockAt(time.Now()) // the test moves it ahead
	app := newApp(t, store, WithIdleTimeout(time.Hour), WithClock(clock.Now))
	cl := jarClient(t)
	type calls = counts
	steps := []struct {
		name, path, cookie string
		want               calls
	}{
		{"anonymous read-only", "/get?k=user", "", calls{}},
		{"create", "/set?k=user&v=alice", "jar", calls{adds: 1}},
		{"untouched", "/untouched", "jar", calls{}},
		{"read-only", "/get?k=user", "jar", calls{gets: 1}},
		{"modify", "/set?k=user&v=bob", "jar", calls{gets: 1, replaces: 1}},
		{"anonymous read-only, unknown ID", "/get?k=user", "unknown", calls{gets: 1}},
		{"read-only, idle refresh not due", "/get?k=user", "jar", calls{gets: 1}},
		{"advance clock", "", "", calls{}},
		{"read-only, idle refresh due", "/get?k=user", "jar", calls{gets: 1, replaces: 1}},
		{"read-only after refresh", "/get?k=user", "jar", calls{gets: 1}},
		// Create the new session, then turn the old record into a
		// forwarding one if it is still as loaded (cas).
		{"NewIdentity", "/renew", "jar", calls{gets: 1, adds: 1, replaces: 1}},
		// Delete the record if it is still as loaded: a cas that expires
		// it at once.
		{"logout", "/logout", "jar", calls{gets: 1, replaces: 1}},
		{"anonymous read-only after logout", "/get?k=user", "jar", calls{}},
	}
	for _, st := range steps {
		if st.path == "" {
			clock.Advance(7 * time.Minute)
			continue
		}
		before, statsBefore := count.snapshot(), memcachedStats(t, p.addr)
		r := app.getAs(t, cl, st.cookie, st.path)
		if r.status != http.StatusOK {
			t.Fatalf("%s: status %d", st.name, r.status)
		}
		got := count.since(before)
		statsAfter := memcachedStats(t, p.addr)
		d := func(name string) int64 { return statsAfter[name] - statsBefore[name] }
		server := calls{gets: d("cmd_get")}
		sets := d("cmd_set") // add, replace, set and cas all count here
		deletes := d("delete_hits") + d("delete_misses")
		t.Logf("%-34s %d round trip(s) %+v; server: cmd_get %d cmd_set %d deletes %d cmd_touch %d",
			st.name, got.total(), got, d("cmd_get"), sets, deletes, d("cmd_touch"))
		if got != st.want {
			t.Errorf("%s: backend calls %+v, want %+v", st.name, got, st.want)
		}
		if server.gets != st.want.gets || sets != st.want.adds+st.want.replaces || deletes != st.want.deletes || d("cmd_touch") != 0 {
			t.Errorf("%s: server saw cmd_get %d cmd_set %d deletes %d, want %+v", st.name, server.gets, sets, deletes, st.want)
		}
	}
	// Left: only NewIdentity's forwarding record under the old ID.
	if n := count.liveKeys(t); n != 1 {
		t.Fatalf("%d keys left, want the forwarding record", n)
	}
}

// TestMemcachedServerDown runs two private memcached servers, kills one
// (SIGKILL) and checks that sessions on the other still work while those on
// the dead one fail with 503: never a fresh session that would overwrite
// them. It then starts the dead server again on the same port (empty, as
// Memcached keeps nothing) and checks that the client uses it again.
func TestMemcachedServerDown(t *testing.T) {
	t.Parallel()
	p1, p2 := startMemcached(t), startMemcached(t)
	client := memcachedClient(t, p1.addr, p2.addr)
	store, count := memcachedStore(t, client)
	var sel memcache.ServerList
	if err := sel.SetServers(p1.addr, p2.addr); err != nil {
		t.Fatal(err)
	}
	serverOf := func(id string) string {
		a, err := sel.PickServer(store.key(id))
		if err != nil {
			t.Fatal(err)
		}
		return a.String()
	}
	app := newApp(t, store)

	// Sessions until each server holds at least three.
	type session struct{ id, user string }
	on := map[string][]session{}
	for i := 0; len(on[p1.addr]) < 3 || len(on[p2.addr]) < 3; i++ {
		if i == 200 {
			t.Fatalf("sessions per server: %d and %d", len(on[p1.addr]), len(on[p2.addr]))
		}
		user := fmt.Sprintf("user%d", i)
		r := app.getWithCookie(t, "/set?k=user&v="+user, "")
		if r.status != http.StatusOK || r.cookie == nil {
			t.Fatalf("create: status %d", r.status)
		}
		a := serverOf(r.cookie.Value)
		on[a] = append(on[a], session{r.cookie.Value, user})
	}

	p2.kill()
	t.Logf("memcached %s killed (SIGKILL); %s still up", p2.addr, p1.addr)
	for _, s := range on[p1.addr] {
		if r := app.getWithCookie(t, "/get?k=user", s.id); r.status != http.StatusOK || r.body != s.user {
			t.Errorf("session on the live server: status %d body %q, want %q", r.status, r.body, s.user)
		}
		if r := app.getWithCookie(t, "/set?k=n&v=1", s.id); r.status != http.StatusOK || r.cookie == nil || r.cookie.Value != s.id {
			t.Errorf("modify on the live server: status %d cookie %v", r.status, r.cookie)
		}
	}
	before := count.snapshot()
	for _, s := range on[p2.addr] {
		for _, path := range []string{"/get?k=user", "/set?k=user&v=mallory", "/logout"} {
			r := app.getWithCookie(t, path, s.id)
			if r.status != http.StatusServiceUnavailable || len(r.header.Values("Set-Cookie")) != 0 {
				t.Errorf("%s on the dead server: status %d body %q Set-Cookie %q, want 503 and no cookie",
					path, r.status, r.body, r.header.Values("Set-Cookie"))
			}
		}
	}
	if d := count.since(before); d.adds != 0 || d.replaces != 0 || d.deletes != 0 {
		t.Errorf("requests for sessions on the dead server wrote: %+v; want load failures only", d)
	}
	// New visitors: whichever server their new ID hashes to decides.
	var live, dead int
	for range 20 {
		r := app.getWithCookie(t, "/set?k=user&v=new", "")
		switch {
		case r.status == http.StatusOK && r.cookie != nil && serverOf(r.cookie.Value) == p1.addr:
			live++
		case r.status == http.StatusServiceUnavailable && len(r.header.Values("Set-Cookie")) == 0:
			dead++
		default:
			t.Errorf("new session with one server down: status %d cookie %v", r.status, r.cookie)
		}
	}
	t.Logf("new sessions with one server down: %d created on the live server, %d refused (503)", live, dead)
	for _, s := range on[p1.addr] {
		wantRecord(t, store, s.id, "user", s.user) // untouched by all of the above
	}

	p2.restart(pingMemcached)
	t.Logf("memcached %s restarted (empty)", p2.addr)
	for _, s := range on[p2.addr] {
		var r response
		for i := 0; i < 50; i++ {
			if r = app.getWithCookie(t, "/get?k=user", s.id); r.status == http.StatusOK {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Memcached lost the data with the process: now it is "no session".
		if r.status != http.StatusOK || r.body != "" {
			t.Errorf("after restart: status %d body %q, want an empty session", r.status, r.body)
		}
	}
	for range 20 {
		if r := app.getWithCookie(t, "/set?k=user&v=new", ""); r.status != http.StatusOK {
			t.Fatalf("new session after restart: status %d", r.status)
		}
	}
}

// TestMemcachedAnonymousFlood sends 10,000 read-only requests without a
// valid session: the counting backend sees no add, replace or delete.
func TestMemcachedAnonymousFlood(t *testing.T) {
	addrs := splitAddrs(needEnv(t, "HTTPSESSION_MEMCACHED_ADDRS"))
	t.Parallel()
	client := memcachedClient(t, addrs...)
	store, _ := memcachedStore(t, client)
	s, count := withCounting(store)
	anonymousFlood(t, s, count, 10_000)
}

// TestMemcachedServersHashTag: keys with one hash tag go to one server,
// whatever follows the tag, so an owned session's record and its owner's
// list are read in one round trip; keys without a tag spread as gomemcache's
// own ServerList spreads them.
func TestMemcachedServersHashTag(t *testing.T) {
	addrs := []string{"127.0.0.1:11211", "127.0.0.1:11212", "127.0.0.1:11213", "127.0.0.1:11214"}
	sel, err := NewMemcachedServers(addrs...)
	if err != nil {
		t.Fatal(err)
	}
	var plain memcache.ServerList
	if err := plain.SetServers(addrs...); err != nil {
		t.Fatal(err)
	}
	servers := map[string]bool{}
	for i := range 200 {
		tag := ownerTag(fmt.Sprint("user", i))
		first, err := sel.PickServer("p:{" + tag + "}")
		if err != nil {
			t.Fatal(err)
		}
		servers[first.String()] = true
		for range 3 {
			other, _ := sel.PickServer("p:{" + tag + "}" + handleOf(newID()))
			if other.String() != first.String() {
				t.Fatalf("tag %s: %s and %s", tag, first, other)
			}
		}
		key := "p:" + newID()
		got, _ := sel.PickServer(key)
		want, _ := plain.PickServer(key)
		if got.String() != want.String() {
			t.Fatalf("untagged key %s: %s, ServerList picks %s", key, got, want)
		}
	}
	if len(servers) != len(addrs) {
		t.Fatalf("200 owners used %d of %d servers", len(servers), len(addrs))
	}
	for key, tag := range map[string]string{"a{b}c": "b", "a{}c": "a{}c", "a{b": "a{b", "{x}{y}": "x", "plain": "plain"} {
		if got := hashTag(key); got != tag {
			t.Fatalf("hashTag(%q) = %q, want %q", key, got, tag)
		}
	}
}
