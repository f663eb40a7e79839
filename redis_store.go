package httpsession

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// NewRedisStore returns a Store that keeps sessions in Redis through client:
// a *redis.Client (one node), a failover client (Sentinel) or a
// *redis.ClusterClient (Redis Cluster) all fit redis.UniversalClient. Every
// session is one string key, so Cluster needs no hash tags.
//
// Commands per request: none for a handler that never touches the session,
// one GET for a read-only request, GET plus one EVALSHA (a compare-and-set
// script) for a modifying one. Anonymous visitors who only read create no
// key.
//
// Timeouts: the per-operation timeout (WithTimeout) and the request's
// cancellation bound every call. Build the client with
// ContextTimeoutEnabled: true, and go-redis applies the context's deadline
// to the socket, so a call that runs out of time is cancelled there. A
// client built without it (go-redis's default) ignores the deadline and
// waits for its own ReadTimeout and WriteTimeout, seconds; for such a client
// each call runs in its own goroutine and is abandoned as soon as the
// context is done, so the request still gets its error (ErrUnavailable, 503
// by default) by its deadline. The abandoned call holds a connection of the
// client's pool until go-redis's own timeouts end it, and a write it carried
// may still land. Middleware logs a warning for such a client, once; a
// client of a type other than go-redis's *Client, *ClusterClient and *Ring
// is treated the same way, without the warning.
//
// client must not be nil: Middleware refuses a store on a nil client with an
// error wrapping ErrInvalidConfig.
func NewRedisStore(client redis.UniversalClient, opts ...ServerOption) *ServerStore {
	return NewServerStore(NewRedisBackend(client), opts...)
}

// RedisBackend is the ConditionalBackend behind NewRedisStore: every
// operation is one single-key command or script, so it works unchanged on a
// single node and on Redis Cluster, and one round trip (but for the first
// ReplaceIf on each server, see below). It is safe for concurrent use.
//
// Get is GET. Creating (Add) uses SET NX and updating (Replace) SET XX,
// both with the record's ttl (PX, or EX when it is whole seconds): a session
// that a logout deleted while another request was in flight is not written
// back. Delete is DEL. Every key gets an expiry; a ttl <= 0 makes one that
// expires at once. ServerStore updates through ReplaceIf, and uses Replace
// only for an unconditional Save.
//
// The version of GetVersion and ReplaceIf is not stored: it is a digest of
// the value, the first 8 bytes of its SHA-1 read as a big-endian uint64. So
// records written by any other client (aiohttp_session, an older version of
// this package) have a version without carrying a field for it, and
// GetVersion is a plain GET. Rewriting the same bytes keeps the version; a
// caller that read them still holds the current value, so no update is lost
// by it.
//
// ReplaceIf is one Lua script: it GETs the key and compares the first 16
// hex digits of redis.sha1hex of the value with the expected version. At
// that version it DELs the key (nil value) or SETs it with PX; at another
// it writes nothing and returns the current value, so ErrConflict comes
// with the current value and version in the same round trip. It is sent as
// EVALSHA; a server that has not cached the script yet answers NOSCRIPT,
// and that one call sends EVAL as well, a second round trip. The script
// touches only the one key it declares, so Cluster routes it like any
// single-key command.
type RedisBackend struct {
	client redis.UniversalClient
	// detached: the client may ignore a context's deadline (see
	// NewRedisStore), so each call runs in a goroutine of its own.
	detached bool
	// warning, when not empty, is what Middleware logs about the client.
	warning string
	// waitSet: WithRedisWaitReplicas(waitReplicas, waitTimeout) was given,
	// and every write waits for the replicas.
	waitReplicas int
	waitTimeout  time.Duration
	waitSet      bool
}

// WithRedisWaitReplicas makes every write of a Redis store (NewRedisStore,
// or NewServerStore over a RedisBackend) wait until n replicas acknowledged
// it, for at most timeout, before the request goes on: the write and
// "WAIT n timeout" go out in one pipeline, on one connection to the primary
// that holds the key (on a Cluster, the master that owns the key's slot), so
// the cost is the replica's acknowledgement, not another round trip. Redis
// replicates asynchronously, so without it a write the primary acknowledged
// shortly before it failed may be missing on the replica that a Sentinel or
// Cluster failover promotes (see the README's "Redis failover").
//
// A write that fewer than n replicas acknowledged in time fails with an
// error wrapping ErrUnavailable (503 by default, and no cookie), but it is
// not undone: it stays on the primary and reaches the replicas when they
// catch up. Only a write that changed the key waits; a compare-and-set
// that lost, a create whose ID was taken or an update of a vanished
// session return as without the option.
//
// WAIT counts acknowledgements, it does not make Redis strongly
// consistent: a failover keeps an acknowledged write when it promotes one
// of the n replicas that have it, as it does when the primary has n
// replicas or fewer (Sentinel and Cluster promote the most up-to-date
// replica they can reach).
//
// n must be at least 1 and timeout positive and shorter than the client's
// ReadTimeout (go-redis's default is 5s), which also bounds the reply of
// WAIT. The client must be a *redis.Client (one node, or a Sentinel
// failover client) or a *redis.ClusterClient: only there does the store
// know which connection wrote. Otherwise, or on a backend that is not a
// RedisBackend, Middleware refuses the store with an error wrapping
// ErrInvalidConfig.
func WithRedisWaitReplicas(n int, timeout time.Duration) ServerOption {
	return func(s *ServerStore) {
		b, ok := s.innerBackend().(*RedisBackend)
		if !ok || b == nil {
			s.backend = misconfigured{s.backend, fmt.Errorf(
				"%w: WithRedisWaitReplicas on a store whose backend is not a RedisBackend", ErrInvalidConfig)}
			return
		}
		w := *b // a copy: the backend may serve other stores too
		w.waitReplicas, w.waitTimeout, w.waitSet = n, timeout, true
		s.backend = &w
	}
}

// errFewReplicas: WAIT counted fewer replicas than WithRedisWaitReplicas
// asked for.
var errFewReplicas = errors.New("too few replicas")

// misconfigured is a backend that an option found unusable: Middleware
// refuses its store with err.
type misconfigured struct {
	ConditionalBackend
	err error
}

// valid implements validator.
func (m misconfigured) valid() error { return m.err }

// NewRedisBackend returns a RedisBackend using client, which must not be
// nil: Middleware refuses a store on a nil client with an error wrapping
// ErrInvalidConfig. Build the client with ContextTimeoutEnabled: true so
// that the request's context and WithTimeout bound every call (see
// NewRedisStore).
//
// The client's options are read here: for a client built without
// ContextTimeoutEnabled each call runs in its own goroutine, so that
// WithTimeout and the request's context still bound it (see NewRedisStore).
func NewRedisBackend(client redis.UniversalClient) *RedisBackend {
	b := &RedisBackend{client: client}
	if b.valid() != nil {
		return b // Middleware reports it
	}
	enabled, known := redisContextTimeouts(client)
	b.detached = !enabled
	if known && !enabled {
		b.warning = "httpsession: the Redis client was built without ContextTimeoutEnabled, so go-redis " +
			"ignores request deadlines and WithTimeout: each Redis call runs in its own goroutine and is " +
			"abandoned at the deadline, keeping a pooled connection until the client's ReadTimeout; " +
			"build the client with ContextTimeoutEnabled: true"
	}
	return b
}

// redisContextTimeouts reports whether client applies a context's deadline
// to its socket I/O (ContextTimeoutEnabled), and whether it could tell: it
// knows go-redis's own client types (a failover client is a *redis.Client).
func redisContextTimeouts(client redis.UniversalClient) (enabled, known bool) {
	switch c := client.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled, true
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled, true
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled, true
	}
	return false, false
}

// redisDo runs call, one go-redis call under ctx. A context that is already
// done fails before any I/O. For a detached backend call runs in its own
// goroutine and redisDo returns as soon as ctx is done, with ctx's error;
// the abandoned call finishes in the background within the client's own
// timeouts and its result is dropped. Errors are wrapped by redisError, so
// a nil reply is still errors.Is redis.Nil.
func redisDo[T any](ctx context.Context, b *RedisBackend, call func(context.Context) (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, redisError(err)
	}
	var v T
	var err error
	if done := ctx.Done(); !b.detached || done == nil {
		v, err = call(ctx)
	} else {
		type result struct {
			v   T
			err error
		}
		ch := make(chan result, 1) // buffered: an abandoned call does not block
		go func() {
			v, err := call(ctx)
			ch <- result{v, err}
		}()
		select {
		case r := <-ch:
			v, err = r.v, r.err
		case <-done:
			return zero, redisError(ctx.Err())
		}
	}
	if err != nil {
		b.reloadCluster(err)
		return zero, redisError(err)
	}
	return v, nil
}

// reloadCluster asks a ClusterClient to reload its slot map after a call
// failed with err, unless err is a nil reply or a reply of Redis that says
// nothing about the topology. go-redis follows MOVED by itself, but a
// master that died leaves its slots pointing at the dead node until the
// next periodic reload (ClusterStateReloadInterval, 60s by default): with
// this, requests reach the promoted replica as soon as the Cluster named
// it. The reload runs in the background, at most one at a time.
func (b *RedisBackend) reloadCluster(err error) {
	c, ok := b.client.(*redis.ClusterClient)
	if !ok || errors.Is(err, redis.Nil) || errors.Is(err, errFewReplicas) || errors.Is(err, context.Canceled) {
		return
	}
	var reply redis.Error
	if errors.As(err, &reply) && !redis.HasErrorPrefix(err, "CLUSTERDOWN") && !redis.HasErrorPrefix(err, "TRYAGAIN") {
		return
	}
	c.ReloadState(context.Background())
}

// own returns value, copied for a detached backend: a call abandoned at the
// deadline may still send it after the method returned, when the caller
// owns its buffer again.
func (b *RedisBackend) own(value []byte) []byte {
	if b.detached {
		return bytes.Clone(value)
	}
	return value
}

// warn implements warner.
func (b *RedisBackend) warn() string { return b.warning }

// valid implements validator: the client must not be nil, nor a nil
// pointer of go-redis's client types.
func (b *RedisBackend) valid() error {
	nilClient := b == nil || b.client == nil
	if !nilClient {
		switch c := b.client.(type) {
		case *redis.Client:
			nilClient = c == nil
		case *redis.ClusterClient:
			nilClient = c == nil
		case *redis.Ring:
			nilClient = c == nil
		}
	}
	if nilClient {
		return fmt.Errorf("%w: redis store with a nil client", ErrInvalidConfig)
	}
	if b.waitSet {
		return b.validWait()
	}
	return nil
}

// validWait checks WithRedisWaitReplicas's arguments against the client.
func (b *RedisBackend) validWait() error {
	if b.waitReplicas < 1 || b.waitTimeout <= 0 {
		return fmt.Errorf("%w: WithRedisWaitReplicas(%d, %v): want at least 1 replica and a positive timeout",
			ErrInvalidConfig, b.waitReplicas, b.waitTimeout)
	}
	var readTimeout time.Duration
	switch c := b.client.(type) {
	case *redis.Client:
		readTimeout = c.Options().ReadTimeout
	case *redis.ClusterClient:
		readTimeout = c.Options().ReadTimeout
	default:
		return fmt.Errorf("%w: WithRedisWaitReplicas needs a *redis.Client or *redis.ClusterClient, not %T",
			ErrInvalidConfig, b.client)
	}
	if readTimeout > 0 && b.waitTimeout >= readTimeout {
		return fmt.Errorf("%w: WithRedisWaitReplicas timeout %v is not shorter than the client's ReadTimeout %v",
			ErrInvalidConfig, b.waitTimeout, readTimeout)
	}
	return nil
}

// waited runs the write that queue puts on a pipeline to the primary that
// holds key, followed by WAIT on the same connection (WithRedisWaitReplicas).
// wrote tells from the write's reply whether it changed the key; only then
// do too few acknowledgements fail the call. The write's own error (a nil
// reply included) is returned as it is, for the caller to map.
//
// On a Cluster the pipeline goes to the node client of the key's master:
// ClusterClient routes a keyless WAIT to some node of its own choosing, on
// another connection than the write's, where it does not wait for it. A
// write that fails there (MOVED included, which the node client does not
// follow) fails the call, and redisDo has the ClusterClient reload its slot
// map.
func waited[C redis.Cmder](ctx context.Context, b *RedisBackend, key string,
	queue func(ctx context.Context, p redis.Pipeliner) C, wrote func(C) bool) (C, error) {
	var cmd C
	node := b.client
	cluster, isCluster := b.client.(*redis.ClusterClient)
	if isCluster {
		m, err := cluster.MasterForKey(ctx, key)
		if err != nil {
			return cmd, err
		}
		node = m
	}
	ms := (b.waitTimeout + time.Millisecond - 1) / time.Millisecond // >= 1: WAIT 0 blocks for ever
	var wait *redis.Cmd
	_, _ = node.Pipelined(ctx, func(p redis.Pipeliner) error {
		cmd = queue(ctx, p)
		wait = p.Do(ctx, "wait", b.waitReplicas, int64(ms))
		return nil
	})
	if err := cmd.Err(); err != nil {
		return cmd, err
	}
	if !wrote(cmd) {
		return cmd, nil
	}
	acks, err := wait.Int64()
	if err != nil {
		return cmd, fmt.Errorf("WAIT after the write: %w", err)
	}
	if acks < int64(b.waitReplicas) {
		return cmd, fmt.Errorf("%w: %d of %d acknowledged the write within %v (WAIT)",
			errFewReplicas, acks, b.waitReplicas, b.waitTimeout)
	}
	return cmd, nil
}

// Get implements Backend with GET.
func (b *RedisBackend) Get(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	var err error
	if b.detached {
		v, err = redisDo(ctx, b, func(ctx context.Context) ([]byte, error) {
			return b.client.Get(ctx, key).Bytes()
		})
	} else if err = ctx.Err(); err != nil {
		err = redisError(err)
	} else if v, err = b.client.Get(ctx, key).Bytes(); err != nil {
		// redisDo inline: its closure escapes (redisDo may run it in a
		// goroutine), which is an allocation on every session load.
		b.reloadCluster(err)
		err = redisError(err)
	}
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Add implements Backend with SET key value NX and the ttl; ErrExists when
// the key is taken.
func (b *RedisBackend) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return b.set(ctx, key, value, ttl, "NX", ErrExists)
}

// Replace implements Backend with SET key value XX and the ttl; ErrNotFound
// when the key is gone.
func (b *RedisBackend) Replace(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return b.set(ctx, key, value, ttl, "XX", ErrNotFound)
}

// set runs SET with mode NX or XX; notSet is the error for "condition not
// met", which Redis answers with a nil reply.
func (b *RedisBackend) set(ctx context.Context, key string, value []byte, ttl time.Duration, mode string, notSet error) error {
	value = b.own(value)
	args := redis.SetArgs{Mode: mode, TTL: redisTTL(ttl)}
	_, err := redisDo(ctx, b, func(ctx context.Context) (struct{}, error) {
		if b.waitSet {
			_, err := waited(ctx, b, key, func(ctx context.Context, p redis.Pipeliner) *redis.StatusCmd {
				return p.SetArgs(ctx, key, value, args)
			}, func(*redis.StatusCmd) bool { return true }) // not set is a nil reply, an error
			return struct{}{}, err
		}
		return struct{}{}, b.client.SetArgs(ctx, key, value, args).Err()
	})
	if errors.Is(err, redis.Nil) {
		return notSet
	}
	return err
}

// Delete implements Backend with DEL; a missing key is not an error.
func (b *RedisBackend) Delete(ctx context.Context, key string) error {
	_, err := redisDo(ctx, b, func(ctx context.Context) (int64, error) {
		if b.waitSet {
			cmd, err := waited(ctx, b, key, func(ctx context.Context, p redis.Pipeliner) *redis.IntCmd {
				return p.Del(ctx, key)
			}, func(c *redis.IntCmd) bool { return c.Val() > 0 })
			if err != nil {
				return 0, err
			}
			return cmd.Val(), nil
		}
		return b.client.Del(ctx, key).Result()
	})
	return err
}

var _ ConditionalBackend = (*RedisBackend)(nil)

// GetVersion implements ConditionalBackend with GET; the version is
// redisVersion of the value, computed here.
func (b *RedisBackend) GetVersion(ctx context.Context, key string) ([]byte, uint64, error) {
	v, err := b.Get(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	return v, redisVersion(v), nil
}

// ReplaceIf implements ConditionalBackend with one run of redisReplaceIf.
// ErrConflict comes with the current value and its version, which the
// script brought back in the same round trip.
func (b *RedisBackend) ReplaceIf(ctx context.Context, key string, version uint64, value []byte, ttl time.Duration) ([]byte, uint64, error) {
	args := []any{redisVersionHex(version)}
	if value != nil { // no ttl and value: the script deletes
		args = append(args, redisTTL(ttl).Milliseconds(), b.own(value))
	}
	res, err := redisDo(ctx, b, func(ctx context.Context) (any, error) {
		if b.waitSet {
			return b.replaceIfWaited(ctx, key, args)
		}
		return redisReplaceIf.Run(ctx, b.client, []string{key}, args...).Result()
	})
	if err != nil {
		return nil, 0, err
	}
	switch r := res.(type) {
	case int64:
		if r == 1 {
			return nil, 0, nil
		}
		if r == 0 {
			return nil, 0, ErrNotFound
		}
	case string:
		cur := []byte(r)
		return cur, redisVersion(cur), ErrConflict
	}
	return nil, 0, redisError(fmt.Errorf("unexpected reply %T %v from the ReplaceIf script", res, res))
}

// replaceIfWaited is ReplaceIf's script with WithRedisWaitReplicas: EVALSHA
// and WAIT, and on NOSCRIPT once more with EVAL, as Script.Run would. Only
// the reply 1 (written or deleted) waits for the replicas. The WAIT behind a
// NOSCRIPT may block for up to the timeout (for the connection's earlier
// writes): once per server, on its first script call.
func (b *RedisBackend) replaceIfWaited(ctx context.Context, key string, args []any) (any, error) {
	keys := []string{key}
	wrote := func(c *redis.Cmd) bool { r, _ := c.Int64(); return r == 1 }
	cmd, err := waited(ctx, b, key, func(ctx context.Context, p redis.Pipeliner) *redis.Cmd {
		return redisReplaceIf.EvalSha(ctx, p, keys, args...)
	}, wrote)
	if err != nil && cmd != nil && redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
		cmd, err = waited(ctx, b, key, func(ctx context.Context, p redis.Pipeliner) *redis.Cmd {
			return redisReplaceIf.Eval(ctx, p, keys, args...)
		}, wrote)
	}
	if err != nil {
		return nil, err
	}
	return cmd.Val(), nil
}

// redisReplaceIf is ReplaceIf's compare-and-set. Replies are integers and
// strings only, never Lua booleans, whose reply differs between RESP2 (nil
// or 1) and the RESP3 that go-redis speaks by default: 0 when the key is
// absent, 1 when it was written or deleted, the current value (a string,
// maybe empty) on a version mismatch.
//
// It is a package-level value because it holds no state that changes:
// NewScript computes the script's SHA-1 once and Run only reads it (Load,
// which would replace it, is never called).
var redisReplaceIf = redis.NewScript(`
-- KEYS[1]: the key. ARGV[1]: the expected version, 16 lowercase hex digits.
-- ARGV[2] and ARGV[3], absent for a delete: the ttl in ms and the value.
local cur = redis.call('GET', KEYS[1])
if not cur then
	return 0
end
if string.sub(redis.sha1hex(cur), 1, 16) ~= ARGV[1] then
	return cur
end
if #ARGV == 1 then
	redis.call('DEL', KEYS[1])
else
	redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2])
end
return 1
`)

// redisVersion is a value's version: the first 8 bytes of its SHA-1 as a
// big-endian uint64. redisVersionHex of it is the first 16 hex digits of
// the SHA-1, what the script compares.
func redisVersion(value []byte) uint64 {
	sum := sha1.Sum(value)
	return binary.BigEndian.Uint64(sum[:8])
}

// redisVersionHex formats version as the script's ARGV[1]: 16 lowercase hex
// digits, zero-padded, as redis.sha1hex spells them.
func redisVersionHex(version uint64) string {
	return hex.EncodeToString(binary.BigEndian.AppendUint64(nil, version))
}

// redisTTL rounds ttl up to whole milliseconds, the resolution of PX, so a
// record never lives shorter than asked. A ttl <= 0 (a session already past
// its deadline) becomes 1ms: the key expires at once instead of living
// forever, so the store never holds a key without expiry.
func redisTTL(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return time.Millisecond
	}
	return (ttl + time.Millisecond - 1).Truncate(time.Millisecond)
}

// redisError makes err errors.Is-able both as ErrUnavailable and as its
// cause (a net.Error, context.DeadlineExceeded, a Redis error reply...).
func redisError(err error) error {
	return errorf("%w: redis: %w", ErrUnavailable, err)
}

var _ BatchBackend = (*RedisBackend)(nil)

// GetVersions implements BatchBackend with one MGET: on Redis Cluster the
// keys must share a hash slot, as an owner's keys do ("{tag}").
func (b *RedisBackend) GetVersions(ctx context.Context, keys []string, values [][]byte, versions []uint64) error {
	got, err := redisDo(ctx, b, func(ctx context.Context) ([]any, error) {
		return b.client.MGet(ctx, keys...).Result()
	})
	if err != nil {
		return err
	}
	for i := range keys {
		values[i], versions[i] = nil, 0
		if i < len(got) {
			if s, ok := got[i].(string); ok {
				values[i] = []byte(s)
				versions[i] = redisVersion(values[i])
			}
		}
	}
	return nil
}
