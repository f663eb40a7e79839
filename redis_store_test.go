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
	"os"
	"os/exec"
	"path/filepath"
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

// ---------------------------------------------------------------------------
// Failover: a primary with a replica under three Sentinels, and a Cluster
// with a replica per master (scripts/testenv.sh starts both for these tests
// alone). Each test freezes a replica to check WithRedisWaitReplicas, then
// kills a primary (SIGKILL, a crash) while requests flow, and at the end
// starts it again as a replica, so that the setup is whole for the next run.

// TestRedisWaitReplicasConfig: WithRedisWaitReplicas is refused with
// ErrInvalidConfig, before any request, where it cannot work: no replica or
// no timeout (WAIT 0 would block for ever), a timeout that the client's
// ReadTimeout cuts short, a client whose connection per key the store
// cannot tell (a Ring), a backend that is not Redis. It does not change the
// backend it was given, which another store may share. The behaviour on
// real replicas is tested by TestRedisSentinelFailover and
// TestRedisClusterFailover.
func TestRedisWaitReplicasConfig(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true, ReadTimeout: time.Second})
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, ContextTimeoutEnabled: true})
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close(); cc.Close(); ring.Close() })
	for name, store := range map[string]Store{
		"no replica":                   NewRedisStore(c, WithRedisWaitReplicas(0, 100*time.Millisecond)),
		"no timeout":                   NewRedisStore(c, WithRedisWaitReplicas(1, 0)),
		"timeout = ReadTimeout":        NewRedisStore(c, WithRedisWaitReplicas(1, time.Second)),
		"Cluster, default ReadTimeout": NewRedisStore(cc, WithRedisWaitReplicas(1, 5*time.Second)),
		"Ring":                         NewRedisStore(ring, WithRedisWaitReplicas(1, 100*time.Millisecond)),
		"memory":                       NewMemoryStore(WithRedisWaitReplicas(1, 100*time.Millisecond)),
		"nil client":                   NewRedisStore(nil, WithRedisWaitReplicas(1, 100*time.Millisecond)),
	} {
		if mw, err := Middleware(store); !errors.Is(err, ErrInvalidConfig) || mw != nil {
			t.Errorf("%s: Middleware err %v, want ErrInvalidConfig", name, err)
		}
	}
	for name, store := range map[string]Store{
		"Client":        NewRedisStore(c, WithRedisWaitReplicas(2, 999*time.Millisecond)),
		"ClusterClient": NewRedisStore(cc, WithRedisWaitReplicas(1, 500*time.Millisecond)),
	} {
		if _, err := Middleware(store); err != nil {
			t.Errorf("%s: Middleware: %v", name, err)
		}
	}
	b := NewRedisBackend(c)
	NewServerStore(b, WithRedisWaitReplicas(1, 100*time.Millisecond))
	if b.waitSet {
		t.Error("WithRedisWaitReplicas changed the backend it was given")
	}
}

// failoverSetup is one of the replicated setups.
type failoverSetup struct {
	name   string
	client redis.UniversalClient // what the stores use
	// ready waits until every primary has a replica in sync and the
	// failover machinery (Sentinels, Cluster) knows it.
	ready func(t *testing.T)
	// primaryOf returns the address of the primary that holds key.
	primaryOf func(ctx context.Context, key string) (string, error)
	// rejoinArgs are the arguments, after the config file, that make a
	// killed primary start again as a replica of newPrimary.
	rejoinArgs func(newPrimary string) []string
}

// TestRedisSentinelFailover runs the failover test on a primary with one
// replica and three Sentinels, through go-redis's failover client.
func TestRedisSentinelFailover(t *testing.T) {
	sentinels := splitAddrs(needEnv(t, "HTTPSESSION_REDIS_SENTINEL_ADDRS"))
	master := needEnv(t, "HTTPSESSION_REDIS_SENTINEL_MASTER")
	t.Parallel()
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:            master,
		SentinelAddrs:         sentinels,
		ContextTimeoutEnabled: true,
		DialTimeout:           time.Second,
	})
	t.Cleanup(func() { c.Close() })
	primary := func(ctx context.Context) (string, error) {
		s := redis.NewSentinelClient(&redis.Options{Addr: sentinels[0], DialTimeout: time.Second})
		defer s.Close()
		a, err := s.GetMasterAddrByName(ctx, master).Result()
		if err != nil {
			return "", err
		}
		return net.JoinHostPort(a[0], a[1]), nil
	}
	testFailover(t, failoverSetup{
		name:   "sentinel",
		client: c,
		ready: func(t *testing.T) {
			pollUntil(t, 30*time.Second, "the Sentinels agree on a primary with an online replica", func() error {
				return sentinelsReady(t.Context(), sentinels, master)
			})
		},
		primaryOf: func(ctx context.Context, _ string) (string, error) { return primary(ctx) },
		rejoinArgs: func(newPrimary string) []string {
			host, port, _ := net.SplitHostPort(newPrimary)
			return []string{"--replicaof", host, port}
		},
	})
}

// TestRedisClusterFailover runs the failover test on a Cluster of three
// masters with a replica each, through go-redis's ClusterClient; the killed
// master holds some of the sessions, the others go on meanwhile.
func TestRedisClusterFailover(t *testing.T) {
	addrs := splitAddrs(needEnv(t, "HTTPSESSION_REDIS_FAILOVER_CLUSTER_ADDRS"))
	t.Parallel()
	c := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 addrs,
		ContextTimeoutEnabled: true,
		DialTimeout:           time.Second,
	})
	t.Cleanup(func() { c.Close() })
	testFailover(t, failoverSetup{
		name:   "cluster",
		client: c,
		ready: func(t *testing.T) {
			pollUntil(t, 30*time.Second, "every master of the Cluster has an online replica", func() error {
				return replicatedClusterReady(t.Context(), addrs)
			})
		},
		primaryOf: func(ctx context.Context, key string) (string, error) {
			n, err := c.MasterForKey(ctx, key)
			if err != nil {
				return "", err
			}
			return n.Options().Addr, nil
		},
		rejoinArgs: func(string) []string { return nil }, // its nodes.conf makes it rejoin
	})
}

// failoverSession is a session created before the kill, and what a
// request must find in it.
type failoverSession struct {
	app     *testApp
	store   *ServerStore
	id      string
	user    string
	primary string // the address of the primary that held it at creation
	acked   atomic.Int64
}

// testFailover is the failover test on setup:
//
//  1. WithRedisWaitReplicas: while the replica of a primary is frozen
//     (DEBUG SLEEP), a write through a store with the option fails with 503
//     and no cookie, and one without the option succeeds; once the replica
//     is awake, both succeed. A WAIT sent on another connection than the
//     write's would return at once: this checks it waits for the write.
//  2. Sessions are created through two stores (without the option, "async",
//     and with it, "wait") and acknowledged; the async ones are let reach
//     the replicas (their offsets catch up with the primary's). Then one
//     goroutine per session alternates a read of the user and a write of a
//     counter, and the primary holding some of them is killed. Every
//     response is 200 with the session's own data and at most a Set-Cookie
//     of the same ID, or the error handler's 503 with no Set-Cookie: never
//     a fresh session. Some requests get 503; all resume on their own,
//     without rebuilding the client, within a bound.
//  3. Afterwards every session has its user, and every counter write that
//     the wait store acknowledged is there. Async counter writes may be
//     lost, as the README says; the test logs how many were.
func testFailover(t *testing.T, setup failoverSetup) {
	ctx := t.Context()
	setup.ready(t)
	const waitTimeout = 300 * time.Millisecond
	async := redisStore(t, setup.client, WithTimeout(2*time.Second))
	wait := redisStore(t, setup.client, WithTimeout(2*time.Second), WithRedisWaitReplicas(1, waitTimeout))
	asyncApp, waitApp := newApp(t, async), newApp(t, wait)

	// create makes a session on app with user set, and reports where it is.
	create := func(app *testApp, store *ServerStore, user string) *failoverSession {
		t.Helper()
		r := app.getWithCookie(t, "/set?k=user&v="+user, "")
		if r.status != http.StatusOK || r.cookie == nil {
			t.Fatalf("%s: create: %d %q, cookie %v", setup.name, r.status, r.body, r.cookie)
		}
		p, err := setup.primaryOf(ctx, store.key(r.cookie.Value))
		if err != nil {
			t.Fatal(err)
		}
		return &failoverSession{app: app, store: store, id: r.cookie.Value, user: user, primary: p}
	}

	t.Run("WaitReplicas", func(t *testing.T) {
		w := create(waitApp, wait, "w0")
		// sameAs creates sessions until one is on w's primary (on a
		// Cluster too).
		sameAs := func(app *testApp, store *ServerStore, user string) *failoverSession {
			t.Helper()
			for range 50 {
				if f := create(app, store, user); f.primary == w.primary {
					return f
				}
			}
			t.Fatalf("no session on %s", w.primary)
			return nil
		}
		w2, a := sameAs(waitApp, wait, "w1"), sameAs(asyncApp, async, "a0")
		replica := replicaOf(t, w.primary)
		wake := freezeRedis(t, replica, 4*time.Second)
		want503 := func(what, path, cookie string) {
			t.Helper()
			start := time.Now()
			r := waitApp.getWithCookie(t, path, cookie)
			took := time.Since(start)
			if r.status != http.StatusServiceUnavailable || len(r.setCookies()) != 0 {
				t.Errorf("wait store, replica frozen, %s: %d %q Set-Cookie %q, want 503 and none",
					what, r.status, r.body, r.setCookies())
			}
			if took < waitTimeout {
				t.Errorf("wait store, replica frozen, %s: answered after %v, before the WAIT timeout %v", what, took, waitTimeout)
			}
			t.Logf("wait store, replica frozen, %s: %d after %v", what, r.status, took.Round(time.Millisecond))
		}
		want503("update", "/set?k=frozen&v=1", w.id)
		want503("logout", "/logout", w2.id)
		// A new session: on a Cluster it may land on another master,
		// whose replica answers; some of 30 land on the frozen one.
		created503 := false
		for range 30 {
			r := waitApp.getWithCookie(t, "/set?k=user&v=new", "")
			if r.status == http.StatusServiceUnavailable {
				if len(r.setCookies()) != 0 {
					t.Errorf("wait store, replica frozen, create: 503 with Set-Cookie %q", r.setCookies())
				}
				created503 = true
				break
			}
			if r.status != http.StatusOK || r.cookie == nil {
				t.Errorf("wait store, replica frozen, create elsewhere: %d %q", r.status, r.body)
			}
		}
		if !created503 {
			t.Errorf("wait store, replica frozen: no create got 503")
		}
		if r := asyncApp.getWithCookie(t, "/set?k=frozen&v=1", a.id); r.status != http.StatusOK {
			t.Errorf("async store, replica frozen: %d %q, want 200", r.status, r.body)
		}
		wake()
		// The writes that failed for want of replicas are not undone.
		if r := waitApp.getWithCookie(t, "/get?k=frozen", w.id); r.status != http.StatusOK || r.body != "1" {
			t.Errorf("wait store, replica awake: frozen = %d %q, want the update that got 503 kept", r.status, r.body)
		}
		if r := waitApp.getWithCookie(t, "/get?k=user", w2.id); r.status != http.StatusOK || r.body != "" {
			t.Errorf("wait store, replica awake: user = %d %q, want the logout that got 503 kept", r.status, r.body)
		}
		if r := waitApp.getWithCookie(t, "/set?k=frozen&v=2", w.id); r.status != http.StatusOK || !strings.Contains(r.body, "frozen=2") {
			t.Errorf("wait store, replica awake: %d %q, want 200", r.status, r.body)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("Kill", func(t *testing.T) {
		setup.ready(t)
		// The victim: the primary of a wait session; at least 3 sessions of
		// each store on it and 8 in all.
		var sessions []*failoverSession
		victim := ""
		for _, s := range []struct {
			app   *testApp
			store *ServerStore
			name  string
		}{{waitApp, wait, "wait"}, {asyncApp, async, "async"}} {
			on, all := 0, 0
			for i := 0; on < 3 || all < 8; i++ {
				if i == 100 {
					t.Fatalf("%d of 100 %s sessions on %s", on, s.name, victim)
				}
				f := create(s.app, s.store, fmt.Sprintf("%s%d", s.name, i))
				if victim == "" {
					victim = f.primary
				}
				if f.primary == victim {
					on++
				}
				all++
				sessions = append(sessions, f)
			}
		}
		// A sync point: the replicas caught up with everything acknowledged
		// so far, async sessions included.
		primaries := map[string]bool{}
		for _, s := range sessions {
			primaries[s.primary] = true
		}
		for p := range primaries {
			waitCaughtUp(t, p)
		}
		exe, conf, pid := redisProcess(t, victim)

		// One goroutine per session alternates a read and a write. After the
		// kill, streak counts each session's successful requests in a row,
		// and readStreak its successful reads in a row.
		type progress struct{ streak, readStreak atomic.Int64 }
		var (
			stop   atomic.Bool
			killed atomic.Bool
			errs   handlerErrors
			fails  atomic.Int64 // 503s
			oks    atomic.Int64
			prog   = make([]progress, len(sessions))
			wg     sync.WaitGroup
		)
		for i, s := range sessions {
			wg.Go(func() {
				for n := int64(1); !stop.Load(); n++ {
					for _, path := range []string{"/get?k=user", "/set?k=n&v=" + strconv.FormatInt(n, 10)} {
						read := path == "/get?k=user"
						r := s.app.doWithCookie(path, s.id)
						switch {
						case r.err != nil:
							errs.errorf("%s %s: %v", s.user, path, r.err)
						case r.status == http.StatusServiceUnavailable:
							fails.Add(1)
							if sc := r.setCookies(); len(sc) != 0 {
								errs.errorf("%s %s: 503 with Set-Cookie %q", s.user, path, sc)
							}
							prog[i].streak.Store(0)
							if read {
								prog[i].readStreak.Store(0)
							}
						case r.status != http.StatusOK:
							errs.errorf("%s %s: status %d %q", s.user, path, r.status, r.body)
						case r.cookie != nil && (r.cookie.Value != s.id || isDeletion(r.cookie)):
							errs.errorf("%s %s: Set-Cookie %q replaces the session", s.user, path, r.setCookies())
						case read && r.body != s.user:
							errs.errorf("%s %s: body %q, want the session's user: a fresh session", s.user, path, r.body)
						case !read && (!strings.Contains(r.body, "new=false") || !strings.Contains(r.body, " user="+s.user)):
							errs.errorf("%s %s: body %q, want the session's user: a fresh session", s.user, path, r.body)
						default:
							oks.Add(1)
							if !read {
								s.acked.Store(n)
							}
							if killed.Load() {
								prog[i].streak.Add(1)
								if read {
									prog[i].readStreak.Add(1)
								}
							}
						}
					}
					time.Sleep(10 * time.Millisecond)
				}
			})
		}
		defer func() { stop.Store(true); wg.Wait() }()

		pollUntil(t, 10*time.Second, "requests flow", func() error {
			if n := oks.Load(); n < int64(4*len(sessions)) {
				return fmt.Errorf("%d successful requests", n)
			}
			return nil
		})
		if err := pid.Kill(); err != nil {
			t.Fatal(err)
		}
		killAt := time.Now()
		killed.Store(true)
		t.Logf("%s: killed the primary %s (SIGKILL); %d sessions, %d on it", setup.name, victim, len(sessions),
			countOn(sessions, victim))

		// On their own, without a new client: every request of the async
		// store and every read of the wait store succeeds again. Writes of
		// the wait store need a replica, and the promoted one has none.
		pollUntil(t, 20*time.Second, "requests resume after the kill", func() error {
			for i, s := range sessions {
				if s.store == async && prog[i].streak.Load() < 4 {
					return fmt.Errorf("%s (on %s): requests not resumed; %d 503s so far", s.user, s.primary, fails.Load())
				}
				if prog[i].readStreak.Load() < 2 {
					return fmt.Errorf("%s (on %s): reads not resumed; %d 503s so far", s.user, s.primary, fails.Load())
				}
			}
			return nil
		})
		t.Logf("%s: requests resumed %v after the kill; %d answered 503 so far", setup.name,
			time.Since(killAt).Round(time.Millisecond), fails.Load())
		if fails.Load() == 0 {
			t.Errorf("%s: no request failed while the primary was down: the kill was not seen", setup.name)
		}
		newPrimary, err := setup.primaryOf(ctx, wait.key(sessions[0].id)) // sessions[0] was on the victim
		if err != nil {
			t.Fatal(err)
		}
		if newPrimary == victim {
			t.Fatalf("%s: %s is still the primary after the failover", setup.name, victim)
		}

		// The promoted replica has no replica of its own: the wait store's
		// writes of a session on it fail, with no cookie.
		if r := waitApp.getWithCookie(t, "/set?k=probe&v=1", sessions[0].id); r.status != http.StatusServiceUnavailable ||
			len(r.setCookies()) != 0 {
			t.Errorf("%s: wait store write with no replica: %d %q Set-Cookie %q, want 503 and none",
				setup.name, r.status, r.body, r.setCookies())
		}

		// Start the killed primary again, as a replica of its successor:
		// then the wait store's writes resume too.
		restartRedis(t, exe, append([]string{conf}, setup.rejoinArgs(newPrimary)...)...)
		pollUntil(t, 20*time.Second, victim+" rejoins as a replica of "+newPrimary, func() error {
			return isSyncedReplica(ctx, victim)
		})
		rejoined := time.Now()
		pollUntil(t, 20*time.Second, "writes resume once a replica is back", func() error {
			for i, s := range sessions {
				if prog[i].streak.Load() < 4 {
					return fmt.Errorf("%s (on %s): requests not resumed", s.user, s.primary)
				}
			}
			return nil
		})
		t.Logf("%s: all requests resumed %v after the rejoin, %v after the kill; %d answered 503, %d 200",
			setup.name, time.Since(rejoined).Round(time.Millisecond), time.Since(killAt).Round(time.Millisecond),
			fails.Load(), oks.Load())
		stop.Store(true)
		wg.Wait()
		errs.report(t)

		// Afterwards: every session is there with its user; every write the
		// wait store acknowledged is there.
		lost := 0
		for _, s := range sessions {
			r := s.app.getWithCookie(t, "/get", s.id)
			if r.status != http.StatusOK || !strings.Contains(r.body, "new=false") || !strings.Contains(r.body, " user="+s.user) {
				t.Errorf("%s after the failover: %d %q", s.user, r.status, r.body)
				continue
			}
			if got := sessionCounter(r.body); got < s.acked.Load() {
				if s.store == wait {
					t.Errorf("%s after the failover: n=%d, but n=%d was acknowledged with WithRedisWaitReplicas",
						s.user, got, s.acked.Load())
				} else {
					lost++
				}
			}
		}
		t.Logf("%s: async sessions whose last acknowledged write was lost: %d", setup.name, lost)
		setup.ready(t)
	})
}

// pollUntil calls check every 50ms until it returns nil, and fails the test
// with its last error if that takes longer than d.
func pollUntil(t *testing.T, d time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// redisInfo returns the fields of INFO section on the server at addr.
func redisInfo(ctx context.Context, addr, section string) (map[string]string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	s, err := c.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	info := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			info[k] = v
		}
	}
	return info, nil
}

// redisReplicas parses the slaveN lines of INFO replication: each
// replica's address, state and acknowledged offset.
func redisReplicas(info map[string]string) (addrs []string, states []string, offsets []int64) {
	for i := 0; ; i++ {
		line, ok := info["slave"+strconv.Itoa(i)]
		if !ok {
			return
		}
		f := map[string]string{}
		for _, kv := range strings.Split(line, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				f[k] = v
			}
		}
		off, _ := strconv.ParseInt(f["offset"], 10, 64)
		addrs = append(addrs, net.JoinHostPort(f["ip"], f["port"]))
		states = append(states, f["state"])
		offsets = append(offsets, off)
	}
}

// replicaOf returns the address of an online replica of primary.
func replicaOf(t *testing.T, primary string) string {
	t.Helper()
	info, err := redisInfo(t.Context(), primary, "replication")
	if err != nil {
		t.Fatal(err)
	}
	addrs, states, _ := redisReplicas(info)
	for i, a := range addrs {
		if states[i] == "online" {
			return a
		}
	}
	t.Fatalf("%s has no online replica: %v %v", primary, addrs, states)
	return ""
}

// waitCaughtUp waits until every replica of primary acknowledged the
// replication offset the primary had when it was called: all writes the
// primary acknowledged before are on its replicas.
func waitCaughtUp(t *testing.T, primary string) {
	t.Helper()
	info, err := redisInfo(t.Context(), primary, "replication")
	if err != nil {
		t.Fatal(err)
	}
	target, _ := strconv.ParseInt(info["master_repl_offset"], 10, 64)
	pollUntil(t, 10*time.Second, "the replicas of "+primary+" catch up", func() error {
		info, err := redisInfo(t.Context(), primary, "replication")
		if err != nil {
			return err
		}
		addrs, states, offsets := redisReplicas(info)
		if len(addrs) == 0 {
			return errors.New("no replica")
		}
		for i := range addrs {
			if states[i] != "online" || offsets[i] < target {
				return fmt.Errorf("replica %s %s at offset %d of %d", addrs[i], states[i], offsets[i], target)
			}
		}
		return nil
	})
}

// isSyncedReplica reports nil when addr is a replica whose link to its
// primary is up.
func isSyncedReplica(ctx context.Context, addr string) error {
	info, err := redisInfo(ctx, addr, "replication")
	if err != nil {
		return err
	}
	if info["role"] != "slave" || info["master_link_status"] != "up" {
		return fmt.Errorf("%s: role %s, link %s", addr, info["role"], info["master_link_status"])
	}
	return nil
}

// freezeRedis makes the server at addr sleep for d (DEBUG SLEEP, which
// testenv.sh enables for local clients) and returns once it no longer
// answers PING. The returned function waits until it answers again.
func freezeRedis(t *testing.T, addr string, d time.Duration) (wake func()) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprintf(c, "DEBUG SLEEP %.3f\r\n", d.Seconds()); err != nil {
		t.Fatal(err)
	}
	quickPing := func() error {
		p, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		defer p.Close()
		_ = p.SetDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := io.WriteString(p, "PING\r\n"); err != nil {
			return err
		}
		_, err = p.Read(make([]byte, 16))
		return err
	}
	pollUntil(t, 5*time.Second, addr+" sleeps", func() error {
		if quickPing() == nil {
			return errors.New("still answers PING")
		}
		return nil
	})
	return func() {
		t.Helper()
		pollUntil(t, d+5*time.Second, addr+" wakes up", quickPing)
	}
}

// redisProcess returns the executable, config file and process of the
// server at addr, from INFO server: the test runs on the same host.
func redisProcess(t *testing.T, addr string) (exe, conf string, p *os.Process) {
	t.Helper()
	info, err := redisInfo(t.Context(), addr, "server")
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(info["process_id"])
	if err != nil || info["executable"] == "" || info["config_file"] == "" {
		t.Fatalf("%s: INFO server without process_id, executable or config_file: %v", addr, info)
	}
	if p, err = os.FindProcess(pid); err != nil {
		t.Fatal(err)
	}
	// executable is argv[0] made absolute against the server's working
	// directory, wrong for a server started through the PATH.
	exe = info["executable"]
	if _, err := os.Stat(exe); err != nil {
		if exe, err = exec.LookPath(filepath.Base(exe)); err != nil {
			t.Fatal(err)
		}
	}
	return exe, info["config_file"], p
}

// restartRedis starts a server again that the test killed. It is not tied
// to the test binary: it lives on as a member of testenv.sh's setup, which
// stops it on exit by the pidfile in its config.
func restartRedis(t *testing.T, exe string, args ...string) {
	t.Helper()
	cmd := exec.Command(exe, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait() }()
	t.Logf("restarted %s %q", exe, args)
}

// countOn counts the sessions that were on primary.
func countOn(sessions []*failoverSession, primary string) int {
	n := 0
	for _, s := range sessions {
		if s.primary == primary {
			n++
		}
	}
	return n
}

// sessionCounter returns n from a dumpSession body, 0 when absent.
func sessionCounter(body string) int64 {
	for _, f := range strings.Fields(body) {
		if v, ok := strings.CutPrefix(f, "n="); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// sentinelsReady reports nil when every Sentinel names the same primary,
// knows the two others and an online replica of it, and the primary has an
// online replica.
func sentinelsReady(ctx context.Context, sentinels []string, master string) error {
	primary := ""
	for _, addr := range sentinels {
		s := redis.NewSentinelClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second})
		err := func() error {
			defer s.Close()
			m, err := s.Master(ctx, master).Result()
			if err != nil {
				return err
			}
			if m["flags"] != "master" || m["num-other-sentinels"] != "2" {
				return fmt.Errorf("sentinel %s: master flags %q, %s other sentinels", addr, m["flags"], m["num-other-sentinels"])
			}
			p := net.JoinHostPort(m["ip"], m["port"])
			if primary != "" && p != primary {
				return fmt.Errorf("sentinels disagree: %s and %s", primary, p)
			}
			primary = p
			replicas, err := s.Replicas(ctx, master).Result()
			if err != nil {
				return err
			}
			for _, r := range replicas {
				if r["flags"] == "slave" && r["master-link-status"] == "ok" {
					return nil
				}
			}
			return fmt.Errorf("sentinel %s: no healthy replica in %v", addr, replicas)
		}()
		if err != nil {
			return err
		}
	}
	info, err := redisInfo(ctx, primary, "replication")
	if err != nil {
		return err
	}
	if info["role"] != "master" {
		return fmt.Errorf("primary %s: role %s", primary, info["role"])
	}
	addrs, states, _ := redisReplicas(info)
	for i := range addrs {
		if states[i] == "online" {
			return isSyncedReplica(ctx, addrs[i])
		}
	}
	return fmt.Errorf("primary %s: no online replica", primary)
}

// replicatedClusterReady reports nil when the Cluster at addrs is ok and
// has three masters with slots, none failing, each with a replica whose
// link is up.
func replicatedClusterReady(ctx context.Context, addrs []string) error {
	var nodes string
	var err error
	for _, a := range addrs { // the first node that answers
		c := redis.NewClient(&redis.Options{Addr: a, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
		nodes, err = c.ClusterNodes(ctx).Result()
		if err == nil {
			var info string
			info, err = c.ClusterInfo(ctx).Result()
			if err == nil && !strings.Contains(info, "cluster_state:ok") {
				err = fmt.Errorf("%s: cluster_state not ok", a)
			}
		}
		c.Close()
		if err == nil {
			break
		}
	}
	if err != nil {
		return err
	}
	type node struct{ addr, flags, master, link string }
	byID := map[string]node{}
	var masters []string
	for _, line := range strings.Split(strings.TrimSpace(nodes), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		byID[f[0]] = node{addr, f[2], f[3], f[7]}
		if strings.Contains(f[2], "master") && len(f) > 8 {
			masters = append(masters, f[0])
		}
	}
	if len(masters) != 3 {
		return fmt.Errorf("%d masters with slots, want 3", len(masters))
	}
	for _, id := range masters {
		m := byID[id]
		if strings.Contains(m.flags, "fail") {
			return fmt.Errorf("master %s: %s", m.addr, m.flags)
		}
		found := false
		for _, n := range byID {
			if n.master == id && !strings.Contains(n.flags, "fail") && n.link == "connected" {
				if err := isSyncedReplica(ctx, n.addr); err != nil {
					return err
				}
				found = true
			}
		}
		if !found {
			return fmt.Errorf("master %s: no healthy replica", m.addr)
		}
	}
	return nil
}
