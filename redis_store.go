package httpsession

import (
	"context"
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
// one GET for a read-only request, GET plus SET XX for a modifying one.
// Anonymous visitors who only read create no key.
//
// The per-operation timeout (WithTimeout) and the request's cancellation
// reach the socket only if the client was built with
// ContextTimeoutEnabled: true; otherwise go-redis bounds each call by its own
// ReadTimeout and WriteTimeout alone (a context that is already done still
// fails the call before any I/O).
func NewRedisStore(client redis.UniversalClient, opts ...ServerOption) *ServerStore {
	return NewServerStore(NewRedisBackend(client), opts...)
}

// RedisBackend is the Backend behind NewRedisStore: four single-key
// commands, one round trip each, so it works unchanged on a single node and
// on Redis Cluster. It is safe for concurrent use.
//
// Creating uses SET NX and updating SET XX, both with the record's ttl (PX,
// or EX when it is whole seconds): a session that a logout deleted while
// another request was in flight is not written back. Every key gets an
// expiry; a ttl <= 0 makes one that expires at once.
// Idle refresh is a full SET XX by the middleware, at most once per tenth
// of the idle timeout.
type RedisBackend struct {
	client redis.UniversalClient
}

// NewRedisBackend returns a RedisBackend using client, which must not be
// nil. Build the client with ContextTimeoutEnabled: true so that the
// request's context and WithTimeout bound every call (see NewRedisStore).
func NewRedisBackend(client redis.UniversalClient) *RedisBackend {
	return &RedisBackend{client: client}
}

// Get implements Backend with GET.
func (b *RedisBackend) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, redisError(err)
	}
	v, err := b.client.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, redisError(err)
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
	if err := ctx.Err(); err != nil {
		return redisError(err)
	}
	err := b.client.SetArgs(ctx, key, value, redis.SetArgs{Mode: mode, TTL: redisTTL(ttl)}).Err()
	if errors.Is(err, redis.Nil) {
		return notSet
	}
	if err != nil {
		return redisError(err)
	}
	return nil
}

// Delete implements Backend with DEL; a missing key is not an error.
func (b *RedisBackend) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return redisError(err)
	}
	if err := b.client.Del(ctx, key).Err(); err != nil {
		return redisError(err)
	}
	return nil
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
	return fmt.Errorf("%w: redis: %w", ErrUnavailable, err)
}
