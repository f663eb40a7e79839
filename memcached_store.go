package httpsession

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// NewMemcachedStore returns a Store that keeps sessions in Memcached through
// client. Build client with memcache.New(addrs...) to spread sessions over
// several servers; a session lives on the one server its key hashes to.
// When that server is down its sessions fail with ErrUnavailable (503 by
// default) instead of being silently replaced by fresh ones, and sessions
// on the other servers keep working.
//
// gomemcache takes no context: client.Timeout (default 500ms) bounds every
// socket operation. See MemcachedBackend for how the request's context and
// WithTimeout are honoured on top of it. gomemcache keeps only
// client.MaxIdleConns (default 2) idle connections per server; raise it to
// about the number of concurrent requests, or busy servers get a new
// connection for most calls.
//
// client must not be nil: Middleware refuses a store on a nil client with an
// error wrapping ErrInvalidConfig.
func NewMemcachedStore(client *memcache.Client, opts ...ServerOption) *ServerStore {
	return NewServerStore(NewMemcachedBackend(client), opts...)
}

// MemcachedBackend is the ConditionalBackend behind NewMemcachedStore: gets,
// add for new sessions, cas for conditional updates (replace for an
// unconditional one, which never brings back a deleted session) and delete,
// one round trip each. It is safe for concurrent use.
//
// The version of GetVersion and ReplaceIf is Memcached's CAS unique:
// GetVersion is gomemcache's Get, which sends gets, and ReplaceIf is cas.
// When cas finds another version, Memcached answers EXISTS without the
// current value, so ReplaceIf's ErrConflict comes with a nil value and
// version 0 and the caller reads them with GetVersion. The text protocol has
// no conditional delete: ReplaceIf with a nil value sends cas with the
// placeholder value {} and expiration -1, which Memcached stores and expires
// at once, so the next get misses and add can create the key again.
//
// Expiry: a ttl is rounded up to whole seconds; one longer than 30 days is
// sent as an absolute Unix time, as Memcached requires (capped at the
// largest time the protocol's 32-bit field holds, in 2038). A ttl <= 0 (a
// session already past its deadline) is sent as -1, which Memcached
// expires at once: the store never writes an item without expiry.
//
// Keys are checked against Memcached's rules (at most 250 bytes, no spaces
// or control characters) before any call; a bad key, which only a bad
// WithKeyPrefix can produce, fails with ErrInvalidConfig (and, through the
// ServerStore, ErrUnavailable).
//
// Context: gomemcache has no context support. A context that is already
// done fails the call before any I/O. Otherwise the call runs in its own
// goroutine and is abandoned as soon as the context is done, so the request
// gets its error by its deadline; the abandoned operation still completes
// or times out in the background within the client's Timeout, and a write
// it carried may still land (as it may with any network store whose
// deadline fires after the request was sent).
type MemcachedBackend struct {
	client *memcache.Client
	now    func() time.Time
}

var _ ConditionalBackend = (*MemcachedBackend)(nil)

// NewMemcachedBackend returns a MemcachedBackend using client, which must
// not be nil: Middleware refuses a store on a nil client with an error
// wrapping ErrInvalidConfig.
func NewMemcachedBackend(client *memcache.Client) *MemcachedBackend {
	return &MemcachedBackend{client: client, now: time.Now}
}

// valid implements validator: the client must not be nil.
func (b *MemcachedBackend) valid() error {
	if b == nil || b.client == nil {
		return fmt.Errorf("%w: memcached store with a nil client", ErrInvalidConfig)
	}
	return nil
}

// memcachedMaxKey is Memcached's key length limit in bytes.
const memcachedMaxKey = 250

// memcachedMaxRelative is the longest expiration Memcached takes as a number
// of seconds; longer ones must be absolute Unix times.
const memcachedMaxRelative = 30 * 24 * 60 * 60

// memcachedCheckKey applies Memcached's key rules.
func memcachedCheckKey(key string) error {
	if len(key) == 0 || len(key) > memcachedMaxKey {
		return fmt.Errorf("%w: memcached key of %d bytes (1 to %d allowed)", ErrInvalidConfig, len(key), memcachedMaxKey)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("%w: memcached key with space or control character %#x at %d", ErrInvalidConfig, c, i)
		}
	}
	return nil
}

// memcachedExpiration converts ttl to Memcached's expiration field.
func memcachedExpiration(ttl time.Duration, now time.Time) int32 {
	if ttl <= 0 {
		return -1
	}
	secs := int64((ttl + time.Second - 1) / time.Second)
	if secs <= memcachedMaxRelative {
		return int32(secs)
	}
	abs := now.Unix() + secs
	if abs > math.MaxInt32 {
		abs = math.MaxInt32
	}
	return int32(abs)
}

// Get implements Backend with get.
func (b *MemcachedBackend) Get(ctx context.Context, key string) ([]byte, error) {
	if err := memcachedCheckKey(key); err != nil {
		return nil, err
	}
	var it *memcache.Item
	err := b.do(ctx, func() (err error) {
		it, err = b.client.Get(key)
		return err
	})
	if errors.Is(err, memcache.ErrCacheMiss) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return it.Value, nil
}

// GetVersion implements ConditionalBackend with gets: the version is the
// item's CAS unique.
func (b *MemcachedBackend) GetVersion(ctx context.Context, key string) ([]byte, uint64, error) {
	if err := memcachedCheckKey(key); err != nil {
		return nil, 0, err
	}
	var it *memcache.Item
	err := b.do(ctx, func() (err error) {
		it, err = b.client.Get(key)
		return err
	})
	if errors.Is(err, memcache.ErrCacheMiss) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	return it.Value, it.CasID, nil
}

// memcachedDeleted is the value ReplaceIf writes, with expiration -1, to
// delete a key under a CAS condition (see MemcachedBackend).
const memcachedDeleted = "{}"

// ReplaceIf implements ConditionalBackend with cas, and a nil value with
// cas of a placeholder that expires at once (see MemcachedBackend). On
// ErrConflict the current value is nil and its version 0: Memcached's
// EXISTS does not carry them.
func (b *MemcachedBackend) ReplaceIf(ctx context.Context, key string, version uint64, value []byte, ttl time.Duration) ([]byte, uint64, error) {
	if err := memcachedCheckKey(key); err != nil {
		return nil, 0, err
	}
	exp := memcachedExpiration(ttl, b.now())
	if value == nil {
		value, exp = []byte(memcachedDeleted), -1
	}
	it := &memcache.Item{Key: key, Value: value, Expiration: exp, CasID: version}
	err := b.do(ctx, func() error { return b.client.CompareAndSwap(it) })
	switch {
	case errors.Is(err, memcache.ErrCASConflict):
		return nil, 0, ErrConflict
	case errors.Is(err, memcache.ErrCacheMiss) || errors.Is(err, memcache.ErrNotStored):
		return nil, 0, ErrNotFound
	}
	return nil, 0, err
}

// Add implements Backend with add; ErrExists when the key is taken.
func (b *MemcachedBackend) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := memcachedCheckKey(key); err != nil {
		return err
	}
	it := &memcache.Item{Key: key, Value: value, Expiration: memcachedExpiration(ttl, b.now())}
	err := b.do(ctx, func() error { return b.client.Add(it) })
	if errors.Is(err, memcache.ErrNotStored) {
		return ErrExists
	}
	return err
}

// Replace implements Backend with replace; ErrNotFound when the key is
// gone.
func (b *MemcachedBackend) Replace(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := memcachedCheckKey(key); err != nil {
		return err
	}
	it := &memcache.Item{Key: key, Value: value, Expiration: memcachedExpiration(ttl, b.now())}
	err := b.do(ctx, func() error { return b.client.Replace(it) })
	if errors.Is(err, memcache.ErrNotStored) || errors.Is(err, memcache.ErrCacheMiss) {
		return ErrNotFound
	}
	return err
}

// Delete implements Backend with delete; a missing key is not an error.
func (b *MemcachedBackend) Delete(ctx context.Context, key string) error {
	if err := memcachedCheckKey(key); err != nil {
		return err
	}
	err := b.do(ctx, func() error { return b.client.Delete(key) })
	if errors.Is(err, memcache.ErrCacheMiss) {
		return nil
	}
	return err
}

// do runs call under ctx (see MemcachedBackend) and wraps failures other
// than Memcached's protocol answers (miss, not stored, CAS conflict) as
// ErrUnavailable.
func (b *MemcachedBackend) do(ctx context.Context, call func() error) error {
	if err := ctx.Err(); err != nil {
		return memcachedError(err)
	}
	var err error
	if done := ctx.Done(); done == nil {
		err = call()
	} else {
		ch := make(chan error, 1)
		go func() { ch <- call() }()
		select {
		case err = <-ch:
		case <-done:
			return memcachedError(ctx.Err())
		}
	}
	if err == nil || errors.Is(err, memcache.ErrCacheMiss) || errors.Is(err, memcache.ErrNotStored) ||
		errors.Is(err, memcache.ErrCASConflict) {
		return err
	}
	return memcachedError(err)
}

// memcachedError makes err errors.Is-able both as ErrUnavailable and as its
// cause.
func memcachedError(err error) error {
	return errorf("%w: memcached: %w", ErrUnavailable, err)
}

var _ BatchBackend = (*MemcachedBackend)(nil)

// GetVersions implements BatchBackend with gets of every key: one round
// trip to each server the keys live on, which is one server for an owner's
// keys when the client picks servers with NewMemcachedServers.
func (b *MemcachedBackend) GetVersions(ctx context.Context, keys []string, values [][]byte, versions []uint64) error {
	for _, k := range keys {
		if err := memcachedCheckKey(k); err != nil {
			return err
		}
	}
	var items map[string]*memcache.Item
	err := b.do(ctx, func() (err error) {
		items, err = b.client.GetMulti(keys)
		return err
	})
	if err != nil {
		return err
	}
	for i, k := range keys {
		values[i], versions[i] = nil, 0
		if it := items[k]; it != nil {
			values[i], versions[i] = it.Value, it.CasID
		}
	}
	return nil
}

// MemcachedServers is a memcache.ServerSelector that keeps each owner's
// keys on one server: it picks a server by the key's hash tag, the part
// between the first "{" and the next "}", when there is one (an owned
// session's keys, see Session.SetOwner), else by the whole key, as
// gomemcache's own ServerList does. Then loading an owned session, which
// reads its record and its owner's list, is one round trip. Build the
// client with memcache.NewFromSelector.
type MemcachedServers struct {
	list memcache.ServerList
}

// NewMemcachedServers returns a MemcachedServers over the servers at addrs
// (host:port, or a Unix socket path), or an error for an address that does
// not resolve.
func NewMemcachedServers(addrs ...string) (*MemcachedServers, error) {
	s := &MemcachedServers{}
	if err := s.list.SetServers(addrs...); err != nil {
		return nil, fmt.Errorf("httpsession: memcached servers: %w", err)
	}
	return s, nil
}

// PickServer implements memcache.ServerSelector.
func (s *MemcachedServers) PickServer(key string) (net.Addr, error) {
	return s.list.PickServer(hashTag(key))
}

// Each implements memcache.ServerSelector.
func (s *MemcachedServers) Each(f func(net.Addr) error) error { return s.list.Each(f) }

// hashTag returns the part of key that picks its server or slot: what lies
// between the first "{" and the next "}" when that is not empty (Redis
// Cluster's rule), else key.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}
