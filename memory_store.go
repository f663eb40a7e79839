package httpsession

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"
)

// DefaultMaxSessions bounds NewMemoryStore.
const DefaultMaxSessions = 100_000

// NewMemoryStore returns a ServerStore that keeps sessions in this process's
// memory, at most DefaultMaxSessions of them. It suits a single process; use
// Redis or Memcached to share sessions between processes.
func NewMemoryStore(opts ...ServerOption) *ServerStore {
	return NewServerStore(NewMemoryBackend(DefaultMaxSessions, nil), opts...)
}

// MemoryBackend is a bounded, expiring ConditionalBackend in process memory,
// safe for concurrent use. It needs no background goroutine: expired entries
// are skipped on read and swept when space runs out.
//
// Every Add, Replace and ReplaceIf that stores a value stamps the item with
// the next value of the backend's own counter, starting at 1: that is the
// version GetVersion returns and ReplaceIf compares, under the write lock.
// Two writes never share a version, even when they store the same bytes,
// and no item has version 0.
type MemoryBackend struct {
	mu      sync.RWMutex
	items   map[string]memoryItem
	max     int
	now     func() time.Time
	nextGC  time.Time
	gcEvery time.Duration
	seq     uint64 // the last version handed out; guarded by mu
}

type memoryItem struct {
	value   []byte
	expires time.Time // zero: never
	version uint64
}

var _ ConditionalBackend = (*MemoryBackend)(nil)

// NewMemoryBackend returns a MemoryBackend holding at most maxSessions live
// sessions (0 means DefaultMaxSessions). When it is full, creating a session
// fails with ErrUnavailable rather than evicting a live one, so a flood of new
// sessions cannot log existing users out. now replaces time.Now (nil for
// time.Now).
func NewMemoryBackend(maxSessions int, now func() time.Time) *MemoryBackend {
	if maxSessions <= 0 {
		maxSessions = DefaultMaxSessions
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryBackend{items: make(map[string]memoryItem), max: maxSessions, now: now, gcEvery: time.Minute}
}

func (b *MemoryBackend) expiry(ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return b.now().Add(ttl)
}

func (it memoryItem) live(now time.Time) bool {
	return it.expires.IsZero() || now.Before(it.expires)
}

// Get implements Backend. The returned slice is a copy.
func (b *MemoryBackend) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, errorf("%w: %w", ErrUnavailable, err)
	}
	b.mu.RLock()
	it, ok := b.items[key]
	b.mu.RUnlock()
	if !ok || !it.live(b.now()) {
		return nil, ErrNotFound
	}
	return bytes.Clone(it.value), nil
}

// Add implements Backend.
func (b *MemoryBackend) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return errorf("%w: %w", ErrUnavailable, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if it, ok := b.items[key]; ok && it.live(now) {
		return ErrExists
	}
	if len(b.items) >= b.max || !now.Before(b.nextGC) {
		b.sweep(now)
	}
	if len(b.items) >= b.max {
		return fmt.Errorf("%w: memory store full (%d sessions)", ErrUnavailable, b.max)
	}
	b.put(key, value, ttl)
	return nil
}

// Replace implements Backend.
func (b *MemoryBackend) Replace(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return errorf("%w: %w", ErrUnavailable, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if it, ok := b.items[key]; !ok || !it.live(b.now()) {
		return ErrNotFound
	}
	b.put(key, value, ttl)
	return nil
}

// put stores a copy of value under a new version; the caller holds the
// write lock.
func (b *MemoryBackend) put(key string, value []byte, ttl time.Duration) {
	b.seq++
	b.items[key] = memoryItem{value: bytes.Clone(value), expires: b.expiry(ttl), version: b.seq}
}

// GetVersion implements ConditionalBackend. The returned slice is a copy.
func (b *MemoryBackend) GetVersion(ctx context.Context, key string) ([]byte, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, errorf("%w: %w", ErrUnavailable, err)
	}
	b.mu.RLock()
	it, ok := b.items[key]
	b.mu.RUnlock()
	if !ok || !it.live(b.now()) {
		return nil, 0, ErrNotFound
	}
	return bytes.Clone(it.value), it.version, nil
}

// ReplaceIf implements ConditionalBackend. On ErrConflict it returns a copy
// of the current value and its version.
func (b *MemoryBackend) ReplaceIf(ctx context.Context, key string, version uint64, value []byte, ttl time.Duration) ([]byte, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, errorf("%w: %w", ErrUnavailable, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	it, ok := b.items[key]
	if !ok || !it.live(b.now()) {
		return nil, 0, ErrNotFound
	}
	if it.version != version {
		return bytes.Clone(it.value), it.version, ErrConflict
	}
	if value == nil {
		delete(b.items, key)
		return nil, 0, nil
	}
	b.put(key, value, ttl)
	return nil, 0, nil
}

// Delete implements Backend.
func (b *MemoryBackend) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return errorf("%w: %w", ErrUnavailable, err)
	}
	b.mu.Lock()
	delete(b.items, key)
	b.mu.Unlock()
	return nil
}

// Len returns the number of live sessions.
func (b *MemoryBackend) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	now, n := b.now(), 0
	for _, it := range b.items {
		if it.live(now) {
			n++
		}
	}
	return n
}

// sweep drops expired entries; the caller holds the write lock. It runs at
// most once a minute unless the store is full.
func (b *MemoryBackend) sweep(now time.Time) {
	for k, it := range b.items {
		if !it.live(now) {
			delete(b.items, k)
		}
	}
	b.nextGC = now.Add(b.gcEvery)
}

var _ BatchBackend = (*MemoryBackend)(nil)

// GetVersions implements BatchBackend: every key under one read lock, so
// the values are of one moment. The returned slices are copies.
func (b *MemoryBackend) GetVersions(ctx context.Context, keys []string, values [][]byte, versions []uint64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	now := b.now()
	b.mu.RLock()
	defer b.mu.RUnlock()
	for i, k := range keys {
		values[i], versions[i] = nil, 0
		if it, ok := b.items[k]; ok && it.live(now) {
			values[i], versions[i] = bytes.Clone(it.value), it.version
		}
	}
	return nil
}
