package httpsession

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisKeys lists the keys under prefix, on every master of a Cluster.
func redisKeys(ctx context.Context, c redis.UniversalClient, prefix string) ([]string, error) {
	var mu sync.Mutex
	var keys []string
	scan := func(ctx context.Context, n *redis.Client) error {
		it := n.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for it.Next(ctx) {
			mu.Lock()
			keys = append(keys, it.Val())
			mu.Unlock()
		}
		return it.Err()
	}
	var err error
	switch c := c.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		err = fmt.Errorf("unexpected client %T", c)
	}
	return keys, err
}

// redisStore returns a store under a fresh prefix whose keys are deleted
// when t ends.
func redisStore(t *testing.T, c redis.UniversalClient, opts ...ServerOption) *ServerStore {
	t.Helper()
	prefix := keyPrefix(t)
	t.Cleanup(func() {
		ctx := context.Background()
		keys, err := redisKeys(ctx, c, prefix)
		if err != nil {
			t.Errorf("cleanup scan: %v", err)
		}
		for _, k := range keys { // one DEL per key: keys span Cluster slots
			_ = c.Del(ctx, k).Err()
		}
	})
	return NewRedisStore(c, append([]ServerOption{WithKeyPrefix(prefix)}, opts...)...)
}

// onSharedRedis runs test in parallel subtests, on a client of the single
// node and on one of the Cluster that scripts/testenv.sh started.
func onSharedRedis(t *testing.T, test func(t *testing.T, c redis.UniversalClient)) {
	for _, tc := range []struct{ name, env string }{
		{"Single", "HTTPSESSION_REDIS_ADDR"},
		{"Cluster", "HTTPSESSION_REDIS_CLUSTER_ADDRS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addrs := splitAddrs(needEnv(t, tc.env))
			t.Parallel()
			test(t, redisClient(t, addrs...))
		})
	}
}

// TestRedisClusterKeysSpreadOverNodes: sessions land on every master of
// the 3-node Cluster: the store does not pin a slot.
func TestRedisClusterKeysSpreadOverNodes(t *testing.T) {
	addrs := splitAddrs(needEnv(t, "HTTPSESSION_REDIS_CLUSTER_ADDRS"))
	t.Parallel()
	c := redisClient(t, addrs...)
	if _, ok := c.(*redis.ClusterClient); !ok {
		t.Fatalf("client %T, want *redis.ClusterClient", c)
	}
	s := redisStore(t, c)
	for range 30 {
		if _, err := s.Save(t.Context(), "", []byte("x"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	cc := c.(*redis.ClusterClient)
	var nodes atomic.Int32
	err := cc.ForEachMaster(t.Context(), func(ctx context.Context, n *redis.Client) error {
		keys, err := redisKeys(ctx, n, s.prefix)
		if len(keys) > 0 {
			nodes.Add(1)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if nodes.Load() < 2 {
		t.Fatalf("30 sessions on %d master(s), want them spread", nodes.Load())
	}
}

// TestRedisBackend checks the command-level contract on a single node and
// on the Cluster: NX/XX semantics, TTLs, error mapping.
func TestRedisBackend(t *testing.T) {
	onSharedRedis(t, func(t *testing.T, c redis.UniversalClient) {
		prefix := redisStore(t, c).prefix // for its cleanup
		b := NewRedisBackend(c)
		ctx := t.Context()
		k := prefix + "k"
		if _, err := b.Get(ctx, k); err != ErrNotFound {
			t.Fatalf("Get missing = %v, want ErrNotFound", err)
		}
		if err := b.Replace(ctx, k, []byte("v"), time.Hour); err != ErrNotFound {
			t.Fatalf("Replace missing = %v, want ErrNotFound", err)
		}
		if n := c.Exists(ctx, k).Val(); n != 0 {
			t.Fatal("Replace of a missing key created it")
		}
		if err := b.Add(ctx, k, []byte("v1"), time.Hour); err != nil {
			t.Fatalf("Add: %v", err)
		}
		if err := b.Add(ctx, k, []byte("v2"), time.Hour); err != ErrExists {
			t.Fatalf("Add existing = %v, want ErrExists", err)
		}
		if v, err := b.Get(ctx, k); err != nil || string(v) != "v1" {
			t.Fatalf("Get = %q, %v; want v1 (Add must not overwrite)", v, err)
		}
		if ttl := c.PTTL(ctx, k).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
			t.Fatalf("PTTL after Add(1h) = %v", ttl)
		}
		if err := b.Replace(ctx, k, []byte("v3"), 90*time.Minute); err != nil {
			t.Fatalf("Replace: %v", err)
		}
		if ttl := c.PTTL(ctx, k).Val(); ttl <= 89*time.Minute || ttl > 90*time.Minute {
			t.Fatalf("PTTL after Replace(90m) = %v: Replace must reset the TTL", ttl)
		}
		// Sub-millisecond TTLs round up, never down to "no expiry".
		if err := b.Replace(ctx, k, []byte("v4"), 1500*time.Microsecond); err != nil {
			t.Fatal(err)
		}
		if ttl := c.PTTL(ctx, k).Val(); ttl > 2*time.Millisecond {
			t.Fatalf("PTTL after Replace(1.5ms) = %v, want <= 2ms", ttl)
		}
		waitExpired(t, c, k)
		// A ttl <= 0 (a session past its deadline) never makes an
		// immortal key: it expires at once.
		for _, ttl := range []time.Duration{0, -time.Second} {
			if err := b.Add(ctx, k, []byte("v5"), ttl); err != nil {
				t.Fatalf("Add(ttl %v): %v", ttl, err)
			}
			if pttl := c.PTTL(ctx, k).Val(); pttl > time.Millisecond {
				t.Fatalf("PTTL after Add(ttl %v) = %v, want at most 1ms", ttl, pttl)
			}
			waitExpired(t, c, k)
		}
		if err := b.Delete(ctx, k); err != nil {
			t.Fatalf("Delete missing = %v, want nil", err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := b.Get(cctx, k); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Get with cancelled ctx = %v", err)
		}
	})
	t.Run("ErrorWrapping", func(t *testing.T) {
		t.Parallel()
		// A port nobody listens on: the cause (ECONNREFUSED) stays visible.
		c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), MaxRetries: -1, DialerRetries: 1})
		defer c.Close()
		_, err := NewRedisBackend(c).Get(t.Context(), "k")
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, ErrNotFound) {
			t.Fatalf("Get on a closed port = %v, want ErrUnavailable and ECONNREFUSED", err)
		}
		_, err = NewRedisStore(c).Load(t.Context(), newID())
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("store Load on a closed port = %v", err)
		}
	})
}

// TestRedisVersionDigest checks that the version is the digest of the
// bytes, computed alike in Go and by the script on the server: for records
// written by another client, for binary values, and for digests whose hex
// form starts with zeros.
func TestRedisVersionDigest(t *testing.T) {
	// SHA-1("abc") = a9993e364706816aba3e25717850c26c9cd0d89d.
	if v := redisVersion([]byte("abc")); v != 0xa9993e364706816a {
		t.Fatalf("redisVersion(abc) = %#x", v)
	}
	if h := redisVersionHex(0xa9993e364706816a); h != "a9993e364706816a" {
		t.Fatalf("redisVersionHex = %q", h)
	}
	if h := redisVersionHex(1); h != "0000000000000001" {
		t.Fatalf("redisVersionHex(1) = %q, want zero-padded", h)
	}
	onSharedRedis(t, func(t *testing.T, c redis.UniversalClient) {
		prefix := redisStore(t, c).prefix // for its cleanup
		b := NewRedisBackend(c)
		ctx := t.Context()
		// A value whose SHA-1 starts with a zero byte: its version
		// formats to leading zeros, which the script must see too.
		var zero []byte
		for i := 0; zero == nil; i++ {
			if v := fmt.Appendf(nil, "record-%d", i); redisVersion(v)>>56 == 0 {
				zero = v
			}
		}
		for i, value := range [][]byte{
			[]byte(`{"created": 1, "session": {"user": "alice"}}`), // as aiohttp_session writes it
			{0, 0xff, '\r', '\n', 0x80, '"', '\\'},
			zero,
			{},
		} {
			k := fmt.Sprintf("%sk%d", prefix, i)
			// Written by another client, with no version beside it.
			if err := c.Set(ctx, k, value, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			got, v, err := b.GetVersion(ctx, k)
			if err != nil || !bytes.Equal(got, value) || v != redisVersion(value) {
				t.Fatalf("GetVersion of %q = %q, %#x, %v; want the value and %#x", value, got, v, err, redisVersion(value))
			}
			if _, _, err := b.ReplaceIf(ctx, k, v+1, []byte("wrong"), time.Hour); err != ErrConflict {
				t.Fatalf("ReplaceIf of %q at version+1 = %v, want ErrConflict", value, err)
			}
			if _, _, err := b.ReplaceIf(ctx, k, v, value, time.Hour); err != nil {
				t.Fatalf("ReplaceIf of %q at its digest: %v", value, err)
			}
			// The same bytes again: the same version, still current.
			if _, _, err := b.ReplaceIf(ctx, k, v, nil, time.Hour); err != nil {
				t.Fatalf("conditional delete of %q after rewriting it: %v", value, err)
			}
			if n := c.Exists(ctx, k).Val(); n != 0 {
				t.Fatalf("key of %q still there after the conditional delete", value)
			}
		}
	})
}

// TestRedisReplaceIfRoundTrips counts ReplaceIf's commands on a private
// redis-server, whose script cache starts empty: the first call finds no
// cached script (EVALSHA fails with NOSCRIPT) and sends EVAL; later calls
// are one EVALSHA. GetVersion is one GET.
func TestRedisReplaceIfRoundTrips(t *testing.T) {
	t.Parallel()
	p := startRedis(t, t.TempDir())
	c := redisClient(t, p.addr)
	stats := redis.NewClient(&redis.Options{Addr: p.addr})
	t.Cleanup(func() { stats.Close() })
	hook := &commandCounter{cmds: map[string]int{}}
	c.AddHook(hook)
	b := NewRedisBackend(c)
	ctx := t.Context()
	if err := b.Add(ctx, "k", []byte("v1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	hook.take()
	step := func(name string, want map[string]int, do func() error) {
		t.Helper()
		before := commandStats(t, stats)
		if err := do(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := hook.take()
		server := countsDiff(commandStats(t, stats), before)
		t.Logf("%-24s client %v; server %v", name, got, server)
		if !maps.Equal(got, want) {
			t.Errorf("%s: client sent %v, want %v", name, got, want)
		}
		for cmd, n := range want {
			if server[cmd] != n {
				t.Errorf("%s: server counted %s %d times, want %d (all: %v)", name, cmd, server[cmd], n, server)
			}
		}
	}
	var v uint64
	step("GetVersion", map[string]int{"get": 1}, func() (err error) {
		_, v, err = b.GetVersion(ctx, "k")
		return err
	})
	step("first ReplaceIf", map[string]int{"evalsha": 1, "eval": 1}, func() error {
		_, _, err := b.ReplaceIf(ctx, "k", v, []byte("v2"), time.Hour)
		return err
	})
	step("ReplaceIf, conflict", map[string]int{"evalsha": 1}, func() error {
		cur, curV, err := b.ReplaceIf(ctx, "k", v, []byte("v3"), time.Hour)
		if err != ErrConflict || string(cur) != "v2" || curV != redisVersion([]byte("v2")) {
			return fmt.Errorf("got %q, %#x, %v; want v2, its version, ErrConflict", cur, curV, err)
		}
		return nil
	})
	step("ReplaceIf, delete", map[string]int{"evalsha": 1}, func() error {
		_, _, err := b.ReplaceIf(ctx, "k", redisVersion([]byte("v2")), nil, time.Hour)
		return err
	})
	if n := c.Exists(ctx, "k").Val(); n != 0 {
		t.Fatal("key still there after the conditional delete")
	}
}

// waitExpired waits for a key with a tiny TTL to expire.
func waitExpired(t *testing.T, c redis.UniversalClient, k string) {
	t.Helper()
	for i := 0; c.Exists(t.Context(), k).Val() != 0; i++ {
		if i > 100 {
			t.Fatalf("key %q with a millisecond TTL did not expire", k)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Round trips per request.

// commandCounter is a redis.Hook that records the commands a client sends.
type commandCounter struct {
	mu   sync.Mutex
	cmds map[string]int
}

func (h *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.mu.Lock()
		h.cmds[cmd.Name()]++
		h.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (h *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.mu.Lock()
		for _, cmd := range cmds {
			h.cmds[cmd.Name()]++
		}
		h.mu.Unlock()
		return next(ctx, cmds)
	}
}

// take returns the commands recorded since the last take.
func (h *commandCounter) take() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.cmds
	h.cmds = map[string]int{}
	return out
}

// commandStats reads INFO commandstats: calls per command, without
// the bookkeeping commands of connection setup and of this call itself.
func commandStats(t *testing.T, c *redis.Client) map[string]int {
	t.Helper()
	info, err := c.Info(t.Context(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		name = strings.TrimPrefix(name, "cmdstat_")
		if name == "info" || name == "hello" || name == "ping" || name == "command" ||
			strings.HasPrefix(name, "client") || strings.HasPrefix(name, "command|") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, err := strconv.Atoi(calls)
		if err != nil {
			t.Fatalf("commandstats line %q", line)
		}
		out[name] = n
	}
	return out
}

func countsDiff(after, before map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// roundTripStep is one request of the round-trip scenario and the
// commands it may send.
type roundTripStep struct {
	name   string
	path   string
	cookie string // "jar": the client's session; "unknown": a valid unknown ID; "": none
	want   map[string]int
	server map[string]int // INFO commandstats, which also counts a script's commands; nil: want
	status int
}

// redisRoundTrips drives requests through the middleware on a Redis store
// and checks the commands each one sends, counted by a hook on the client
// and, when stats is non-nil, by INFO commandstats deltas on the server.
func redisRoundTrips(t *testing.T, c redis.UniversalClient, stats *redis.Client) {
	hook := &commandCounter{cmds: map[string]int{}}
	c.AddHook(hook)
	store := redisStore(t, c)
	clock := testClockAt(time.Now()) // the test moves it ahead
	app := newApp(t, store, WithIdleTimeout(time.Hour), WithClock(clock.Now))
	cl := jarClient(t)
	// Warm up: the cluster client loads slots and command info, the
	// connection pool dials, before anything is counted.
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	_ = c.Get(t.Context(), store.prefix+"warmup").Err()
	// Every node caches the compare-and-set script, so EVALSHA never
	// answers NOSCRIPT (which costs one EVAL once per server).
	if err := redisReplaceIf.Load(t.Context(), c).Err(); err != nil {
		t.Fatal(err)
	}
	hook.take()

	// A conditional write is one EVALSHA; the server counts the GET and
	// SET (or DEL) the script runs as well.
	cas := map[string]int{"get": 1, "evalsha": 1}
	casServer := map[string]int{"get": 2, "set": 1, "evalsha": 1}
	steps := []roundTripStep{
		{"anonymous read-only", "/get?k=user", "", nil, nil, 200},
		{"create", "/set?k=user&v=alice", "jar", map[string]int{"set": 1}, nil, 200},
		{"untouched", "/untouched", "jar", nil, nil, 200},
		{"read-only", "/get?k=user", "jar", map[string]int{"get": 1}, nil, 200},
		{"modify", "/set?k=user&v=bob", "jar", cas, casServer, 200},
		{"anonymous read-only, unknown ID", "/get?k=user", "unknown", map[string]int{"get": 1}, nil, 200},
		{"read-only, idle refresh not due", "/get?k=user", "jar", map[string]int{"get": 1}, nil, 200},
		{"advance clock", "", "", nil, nil, 0},
		{"read-only, idle refresh due", "/get?k=user", "jar", cas, casServer, 200},
		{"read-only after refresh", "/get?k=user", "jar", map[string]int{"get": 1}, nil, 200},
		// Create the new session (SET NX), then turn the old record into
		// a forwarding one if it is still as loaded (the script).
		{"NewIdentity", "/renew", "jar", map[string]int{"get": 1, "set": 1, "evalsha": 1},
			map[string]int{"get": 2, "set": 2, "evalsha": 1}, 200},
		// Delete the record if it is still as loaded (the script).
		{"logout", "/logout", "jar", cas, map[string]int{"get": 2, "del": 1, "evalsha": 1}, 200},
		{"anonymous read-only after logout", "/get?k=user", "jar", nil, nil, 200},
	}
	for _, st := range steps {
		if st.path == "" {
			clock.Advance(7 * time.Minute) // past idleTimeout/10
			continue
		}
		var before map[string]int
		if stats != nil {
			before = commandStats(t, stats)
		}
		r := app.getAs(t, cl, st.cookie, st.path)
		if r.status != st.status {
			t.Fatalf("%s: status %d, want %d", st.name, r.status, st.status)
		}
		want := st.want
		if want == nil {
			want = map[string]int{}
		}
		got := hook.take()
		total := 0
		for _, n := range got {
			total += n
		}
		t.Logf("%-34s %d round trip(s) %v", st.name, total, got)
		if !maps.Equal(got, want) {
			t.Errorf("%s: client sent %v, want %v", st.name, got, want)
		}
		if stats != nil {
			wantServer := st.server
			if wantServer == nil {
				wantServer = want
			}
			server := countsDiff(commandStats(t, stats), before)
			if !maps.Equal(server, wantServer) {
				t.Errorf("%s: INFO commandstats delta %v, want %v (hook counted %v)", st.name, server, wantServer, got)
			}
		}
	}
	// Left: only NewIdentity's forwarding record under the old ID.
	keys, err := redisKeys(t.Context(), c, store.prefix)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys left: %q, %v; want the forwarding record", keys, err)
	}
	if v, err := c.Get(t.Context(), keys[0]).Bytes(); err != nil || !isMoved(v) {
		t.Fatalf("key left holds %q, %v; want a forwarding record", v, err)
	}
}

// TestRedisRoundTrips counts commands per request on a private redis-server
// (so INFO commandstats sees no other test's traffic) and checks that the
// client-side hook agrees with the server.
func TestRedisRoundTrips(t *testing.T) {
	t.Parallel()
	p := startRedis(t, t.TempDir())
	c := redisClient(t, p.addr)
	stats := redis.NewClient(&redis.Options{Addr: p.addr})
	t.Cleanup(func() { stats.Close() })
	redisRoundTrips(t, c, stats)
}

// TestRedisRoundTripsShared counts commands per request with the hook on the
// shared single node and on the Cluster.
func TestRedisRoundTripsShared(t *testing.T) {
	onSharedRedis(t, func(t *testing.T, c redis.UniversalClient) { redisRoundTrips(t, c, nil) })
}

// ---------------------------------------------------------------------------
// Faults against real processes.

// TestRedisServerStopped kills a private redis-server (SIGKILL) in the
// middle of a run, checks that requests needing the session fail closed,
// then restarts it on the same port and data directory (append-only file,
// fsync always) and checks that the same cookie loads the same data.
// It does not run in parallel: it counts goroutines.
func TestRedisServerStopped(t *testing.T) {
	dir := t.TempDir()
	ping := pingRedis
	p := startRedis(t, dir, "--appendonly", "yes", "--appendfsync", "always")
	// DialerRetries 1: a refused connection fails at once rather than after
	// go-redis's dial retries; WithTimeout bounds the rest.
	c := redis.NewClient(&redis.Options{Addr: p.addr, ContextTimeoutEnabled: true, DialTimeout: time.Second, DialerRetries: 1})
	t.Cleanup(func() { c.Close() })
	store := redisStore(t, c, WithTimeout(time.Second))
	app := newApp(t, store)
	cl := jarClient(t)

	if r := app.do(t, cl, "/set?k=user&v=alice"); r.status != http.StatusOK || r.cookie == nil {
		t.Fatalf("create: status %d cookie %v", r.status, r.cookie)
	}
	id := app.cookie(t, cl)
	if r := app.do(t, cl, "/get?k=user"); r.body != "alice" {
		t.Fatalf("read: %q", r.body)
	}
	closeIdle := func() {
		cl.CloseIdleConnections()
		app.srv.Client().CloseIdleConnections()
		app.srv.CloseClientConnections()
	}
	closeIdle()
	runtime.GC()
	base := runtime.NumGoroutine()

	p.kill()
	t.Log("redis-server killed (SIGKILL)")
	down := []struct{ path, cookie string }{
		{"/get?k=user", id},
		{"/set?k=user&v=mallory", id},
		{"/logout", id},
		{"/renew", id},
		{"/set?k=user&v=newcomer", ""}, // a new session cannot be created either
		{"/get?k=user", newID()},
	}
	for _, tc := range slices.Concat(down, down, down) {
		start := time.Now()
		r := app.getWithCookie(t, tc.path, tc.cookie)
		if r.status != http.StatusServiceUnavailable {
			t.Errorf("%s while down: status %d body %q, want 503", tc.path, r.status, r.body)
		}
		if sc := r.header.Values("Set-Cookie"); len(sc) != 0 {
			t.Errorf("%s while down: Set-Cookie %q", tc.path, sc)
		}
		t.Logf("%s while down: %d in %v", tc.path, r.status, time.Since(start).Round(time.Millisecond))
	}
	// A handler that never touches the session does not need the store.
	if r := app.getWithCookie(t, "/untouched", id); r.status != http.StatusOK {
		t.Errorf("untouched while down: status %d", r.status)
	}
	// An anonymous visitor who only reads needs no store either.
	if r := app.getWithCookie(t, "/get?k=user", ""); r.status != http.StatusOK {
		t.Errorf("anonymous read while down: status %d", r.status)
	}

	p.restart(ping)
	t.Log("redis-server restarted on the same port and directory")
	var r response
	for i := 0; ; i++ {
		r = app.getWithCookie(t, "/get?k=user", id)
		if r.status == http.StatusOK || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond) // the pool drops its dead connections
	}
	if r.status != http.StatusOK || r.body != "alice" {
		t.Fatalf("after restart: status %d body %q, want alice: the data did not survive", r.status, r.body)
	}
	if r := app.getWithCookie(t, "/set?k=user&v=bob", id); r.status != http.StatusOK || r.cookie == nil || r.cookie.Value != id {
		t.Fatalf("modify after restart: status %d cookie %v", r.status, r.cookie)
	}
	wantRecord(t, store, id, "user", "bob")
	checkGoroutines(t, base, closeIdle)
}

// TestRedisSlowStore points a client at a listener that accepts and never
// answers: with WithTimeout(200ms) requests fail with 503 instead of
// hanging.
func TestRedisSlowStore(t *testing.T) {
	addr := silentListener(t)
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	app := newApp(t, NewRedisStore(c, WithTimeout(200*time.Millisecond)))
	for _, tc := range []struct{ path, cookie string }{
		{"/get?k=user", newID()},         // load
		{"/set?k=user&v=alice", ""},      // create
		{"/set?k=user&v=alice", newID()}, // load before update
	} {
		start := time.Now()
		r := app.getWithCookie(t, tc.path, tc.cookie)
		elapsed := time.Since(start)
		t.Logf("%s on a silent server: %d after %v", tc.path, r.status, elapsed.Round(time.Millisecond))
		if r.status != http.StatusServiceUnavailable || len(r.header.Values("Set-Cookie")) != 0 {
			t.Errorf("%s: status %d Set-Cookie %q, want 503 and none", tc.path, r.status, r.header.Values("Set-Cookie"))
		}
		if elapsed > 5*time.Second {
			t.Errorf("%s: took %v, want the operation timeout to cut it short", tc.path, elapsed)
		}
	}
}

// TestRedisAnonymousFlood sends 10,000 read-only requests without a valid
// session and checks that no key exists under the store's prefix, on the
// single node and on the Cluster.
func TestRedisAnonymousFlood(t *testing.T) {
	onSharedRedis(t, func(t *testing.T, c redis.UniversalClient) {
		store, count := withCounting(redisStore(t, c))
		anonymousFlood(t, store, count, 10_000)
		keys, err := redisKeys(t.Context(), c, store.prefix)
		if err != nil || len(keys) != 0 {
			t.Fatalf("keys after anonymous flood: %d, %v", len(keys), err)
		}
	})
}

// TestRedisTimeoutWithoutContextTimeoutEnabled: go-redis's default client
// (ContextTimeoutEnabled off) ignores a context's deadline on the socket and
// waits for its own ReadTimeout, seconds. WithTimeout(100ms) must still hold:
// behind a server that never answers, every request gets the error handler
// (503) well before 1s, for a single-node and a Cluster client.
func TestRedisTimeoutWithoutContextTimeoutEnabled(t *testing.T) {
	for name, newClient := range map[string]func(addr string) redis.UniversalClient{
		"Client": func(addr string) redis.UniversalClient { return redis.NewClient(&redis.Options{Addr: addr}) },
		"ClusterClient": func(addr string) redis.UniversalClient {
			return redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}})
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := newClient(newRedisSilencingProxy(t, "").addr())
			t.Cleanup(func() { c.Close() })
			h := redisTimeoutApp(t, NewRedisStore(c, WithTimeout(100*time.Millisecond)))
			for _, cookie := range []string{newID(), ""} { // load an existing ID; create one
				redisAssertQuick503(t, h, cookie)
			}
		})
	}
}

// TestRedisTimeoutRealServerSilenced: the same through a real Redis server
// that goes silent: a client without ContextTimeoutEnabled reaches Redis
// through a proxy, creates and reads a session, and once the proxy stops
// passing bytes on, every request gets 503 well before 1s.
func TestRedisTimeoutRealServerSilenced(t *testing.T) {
	target := needEnv(t, "HTTPSESSION_REDIS_ADDR")
	t.Parallel()
	proxy := newRedisSilencingProxy(t, target)
	c := redis.NewClient(&redis.Options{Addr: proxy.addr()})
	t.Cleanup(func() { c.Close() })
	prefix := "httpsession:silenced:" + newID() + ":"
	t.Cleanup(func() {
		direct := redis.NewClient(&redis.Options{Addr: target})
		defer direct.Close()
		keys, _ := direct.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			direct.Del(context.Background(), keys...)
		}
	})
	// While Redis answers, a generous timeout: a loaded machine must not
	// fail the setup. The 100ms store shares the client and the keys.
	answering := redisTimeoutApp(t, NewRedisStore(c, WithTimeout(10*time.Second), WithKeyPrefix(prefix)))
	h := redisTimeoutApp(t, NewRedisStore(c, WithTimeout(100*time.Millisecond), WithKeyPrefix(prefix)))

	w := httptest.NewRecorder()
	answering.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	cookies := w.Result().Cookies()
	if w.Code != http.StatusOK || len(cookies) != 1 {
		t.Fatalf("creating a session while Redis answers: %d %q", w.Code, w.Header().Values("Set-Cookie"))
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(cookies[0])
	w = httptest.NewRecorder()
	answering.ServeHTTP(w, r)
	if w.Code != http.StatusOK || w.Body.String() != "2" {
		t.Fatalf("reading the session while Redis answers: %d %q", w.Code, w.Body)
	}

	proxy.silence()
	for _, cookie := range []string{cookies[0].Value, newID(), ""} { // update; load an unknown ID; create
		redisAssertQuick503(t, h, cookie)
	}
}

// TestRedisContextTimeoutWarning: Middleware warns, once, about a go-redis
// client built without ContextTimeoutEnabled, and not about one built with
// it.
func TestRedisContextTimeoutWarning(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client redis.UniversalClient
		warn   bool
	}{
		{"Client", redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), true},
		{"ClusterClient", redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}}), true},
		{"Ring", redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}}), true},
		{"Client with ContextTimeoutEnabled", redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true}), false},
		{"ClusterClient with ContextTimeoutEnabled", redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, ContextTimeoutEnabled: true}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.client.Close()
			var buf bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&buf, nil))
			if _, err := Middleware(NewRedisStore(tc.client), WithLogger(logger)); err != nil {
				t.Fatal(err)
			}
			n := strings.Count(buf.String(), "level=WARN")
			if tc.warn && (n != 1 || !strings.Contains(buf.String(), "ContextTimeoutEnabled")) {
				t.Errorf("log %q: want one warning about ContextTimeoutEnabled", buf.String())
			}
			if !tc.warn && buf.Len() != 0 {
				t.Errorf("log %q: want nothing", buf.String())
			}
		})
	}
}

// redisTimeoutApp returns the middleware around a handler that counts in
// the session, with the default error handler and a silent logger.
func redisTimeoutApp(t *testing.T, store Store) http.Handler {
	t.Helper()
	mw, err := Middleware(store, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	return mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Get(r)
		if err != nil {
			return // the error handler answers
		}
		n, _ := GetAs[int](s, "n")
		if err := s.Set("n", n+1); err != nil {
			t.Error(err)
		}
		fmt.Fprint(w, n+1)
	}))
}

// redisAssertQuick503 sends a request with the session cookie (none if
// empty) and wants 503 without Set-Cookie, in well under a second.
func redisAssertQuick503(t *testing.T, h http.Handler, cookie string) {
	t.Helper()
	r := httptest.NewRequest("GET", "/", nil)
	if cookie != "" {
		r.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: cookie})
	}
	w := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(w, r)
	elapsed := time.Since(start)
	t.Logf("cookie %q: %d after %v", cookie, w.Code, elapsed.Round(time.Millisecond))
	if w.Code != http.StatusServiceUnavailable || len(w.Header().Values("Set-Cookie")) != 0 {
		t.Errorf("cookie %q: %d, Set-Cookie %q; want 503 and none", cookie, w.Code, w.Header().Values("Set-Cookie"))
	}
	if elapsed >= time.Second {
		t.Errorf("cookie %q: answered after %v; WithTimeout(100ms) should have cut it short", cookie, elapsed)
	}
}

// redisSilencingProxy forwards TCP connections to a server until silence
// is called; from then on it drops whatever either side sends, so the
// server looks alive (connections stay open) but never answers. With no
// target it is silent from the start and dials nothing.
type redisSilencingProxy struct {
	ln     net.Listener
	silent atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func newRedisSilencingProxy(t *testing.T, target string) *redisSilencingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &redisSilencingProxy{ln: ln}
	p.silent.Store(target == "")
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			var server net.Conn
			if target != "" {
				if server, err = net.Dial("tcp", target); err != nil {
					client.Close()
					continue
				}
			}
			p.mu.Lock()
			p.conns = append(p.conns, client)
			if server != nil {
				p.conns = append(p.conns, server)
			}
			p.mu.Unlock()
			go p.pipe(client, server)
			if server != nil {
				go p.pipe(server, client)
			}
		}
	}()
	return p
}

func (p *redisSilencingProxy) addr() string { return p.ln.Addr().String() }

func (p *redisSilencingProxy) silence() { p.silent.Store(true) }

// pipe copies from src to dst (nil: nowhere) until src closes, dropping
// what arrives while the proxy is silent.
func (p *redisSilencingProxy) pipe(src, dst net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && dst != nil && !p.silent.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
