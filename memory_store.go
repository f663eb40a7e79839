package httpsession

import (
	"bytes"
	"container/heap"
	"context"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxSessions bounds NewMemoryStore.
const DefaultMaxSessions = 100_000

// NewMemoryStore returns a ServerStore that keeps sessions in this process's
// memory, at most DefaultMaxSessions of them (see NewMemoryBackend for what
// happens when it is full). It suits a single process; use Redis or
// Memcached to share sessions between processes.
func NewMemoryStore(opts ...ServerOption) *ServerStore {
	return NewServerStore(NewMemoryBackend(DefaultMaxSessions, nil), opts...)
}

// MemoryBackend is a bounded, expiring ConditionalBackend in process memory,
// safe for concurrent use. It needs no background goroutine: expired entries
// are skipped on read and reclaimed a few at a time by later writes, soonest
// expiry first.
//
// A key that contains '{' is owned (it belongs to a logged-in user's
// session: owned keys carry a hash tag); any other key is anonymous. When
// the backend is full, Add makes room by dropping an expired entry if there
// is one, else the least recently used anonymous entry (read or written
// least recently, approximately: see Add). Owned entries are never evicted,
// so a flood of anonymous sessions can neither log a user out nor keep one
// from logging in; it only churns anonymous sessions.
//
// Every Add, Replace and ReplaceIf that stores a value stamps the item with
// the next value of the backend's own counter, starting at 1: that is the
// version GetVersion returns and ReplaceIf compares, under the write lock.
// Two writes never share a version, even when they store the same bytes,
// and no item has version 0.
//
// Every operation costs the same on a full backend as on an empty one:
// reads lock one shard of the index for a map lookup, and a write takes
// O(log n) steps to keep the expiry order plus a bounded number to pick an
// entry to evict.
type MemoryBackend struct {
	// Reads (Get, GetVersion) never take mu: they find the item in one of
	// memoryShards shards of a read index, under that shard's read lock
	// only, and record their use in the item's atomic lastUse. A write
	// locks one shard at a time, for a map insert or delete or to change
	// an item's value, so a stream of writes (a flood of new sessions,
	// each evicting one) makes a read wait only when both hit the same
	// shard, and then for a few map operations. With reads under the read
	// lock of mu itself, every pending writer blocked new readers: a
	// goroutine adding sessions in a tight loop kept readers parked for
	// about 30% of their time (BenchmarkMemoryFlood's block profile). A
	// sync.Map index took no lock at all but cost reads up to about twice
	// as much on a full store (its trie is deeper than a map's buckets).
	//
	// Writes (Add, Replace, ReplaceIf, Delete) are serialised by mu, held
	// exclusively for O(log n) steps: it guards items (the writers' map of
	// every entry, which the shards partition), seq, the expiry heap, the
	// LRU queue and the items' fields other than lastUse (which writers
	// change under their shard's lock too), and makes a compare-and-set
	// atomic. Only tests take it shared, to inspect items. An exact LRU
	// would have every read move its item in a list under mu; an
	// approximate one only stamps it (see Add).
	mu     sync.RWMutex
	items  map[string]*memoryItem
	shards [memoryShards]memoryShard
	seed   maphash.Seed
	max    int
	now    func() time.Time
	seq    uint64        // the last version handed out
	tick   atomic.Uint64 // the LRU clock: advanced by every write and requeue, under mu
	expiry expiryHeap    // the items that expire, soonest first
	lru    memoryQueue   // the anonymous items, least recently queued first
}

// memoryShards is the number of shards of the read index: enough that a
// reader and a writer rarely meet on one.
const memoryShards = 64

// memoryShard is one part of the read index, padded to its own cache line
// (or two) so that shards' locks do not share one.
type memoryShard struct {
	mu sync.RWMutex
	m  map[string]*memoryItem
	_  [64]byte
}

type memoryItem struct {
	key     string
	value   []byte    // never changed in place: a write stores a new slice
	expires time.Time // zero: never
	version uint64
	owned   bool // the key contains '{': never evicted, not in lru
	// written is the tick of the last write and queued the tick of the
	// item's last move to the back of lru; lastUse is the tick when it
	// was last read (0: never), stored by reads under their shard's read
	// lock only.
	written, queued uint64
	lastUse         atomic.Uint64
	heapIndex       int         // in expiry; -1 when not there
	prev, next      *memoryItem // in lru (anonymous items only)
}

// recency orders the items' last reads and writes: a write at tick t is
// 2t, a read at tick t (after the write that made it t, before the next
// one) is 2t+1, and an item never read has lastUse 0, hence 1 < 2*written.
func (it *memoryItem) recency() uint64 { return max(2*it.written, 2*it.lastUse.Load()+1) }

var _ ConditionalBackend = (*MemoryBackend)(nil)

// evictScan bounds the entries one eviction looks at in the LRU queue.
const evictScan = 8

// reclaimPerWrite bounds the expired entries one Add drops besides the one
// it may need to make room: enough to keep up with expiry, which frees at
// most one entry per entry added.
const reclaimPerWrite = 2

// NewMemoryBackend returns a MemoryBackend holding at most maxSessions
// sessions (0 means DefaultMaxSessions). When it is full, Add drops an
// expired entry, else evicts the least recently used anonymous entry; when
// every entry is a live owned one, Add fails with ErrUnavailable rather than
// evict a logged-in user's session. now replaces time.Now (nil for
// time.Now).
func NewMemoryBackend(maxSessions int, now func() time.Time) *MemoryBackend {
	if maxSessions <= 0 {
		maxSessions = DefaultMaxSessions
	}
	if now == nil {
		now = time.Now
	}
	b := &MemoryBackend{items: make(map[string]*memoryItem), seed: maphash.MakeSeed(), max: maxSessions, now: now}
	for i := range b.shards {
		b.shards[i].m = make(map[string]*memoryItem)
	}
	return b
}

// shard returns the shard of the read index that holds key.
func (b *MemoryBackend) shard(key string) *memoryShard {
	return &b.shards[maphash.String(b.seed, key)%memoryShards]
}

// ownedKey reports whether key belongs to an owned session: whether it
// contains '{' (the opening of a hash tag).
func ownedKey(key string) bool { return strings.IndexByte(key, '{') >= 0 }

func (b *MemoryBackend) expiryOf(ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return b.now().Add(ttl)
}

// live reports whether an entry that expires at expires (zero: never) has
// not expired at now.
func live(expires, now time.Time) bool { return expires.IsZero() || now.Before(expires) }

// live reports whether it has not expired at now; the caller holds mu.
func (it *memoryItem) live(now time.Time) bool { return live(it.expires, now) }

// Get implements Backend. The returned slice is a copy.
func (b *MemoryBackend) Get(ctx context.Context, key string) ([]byte, error) {
	value, _, err := b.GetVersion(ctx, key)
	return value, err
}

// Add implements Backend. On a full backend it first drops an expired
// entry (the one that expired first), else the least recently used
// anonymous entry (read or written least recently). The choice is exact
// among the evictScan anonymous entries queued longest ago: entries are
// queued in the order they were written, and those read since they were
// queued go to the back of the queue when an eviction passes them (CLOCK's
// second chance), so the front holds the entries left alone longest. Use
// is timed by a clock that writes advance, so reads with no write to the
// backend between them count as simultaneous. It never evicts an owned
// entry: when every entry is a live owned one, it fails with
// ErrUnavailable.
func (b *MemoryBackend) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if it, ok := b.items[key]; ok {
		if it.live(now) {
			return ErrExists
		}
		b.remove(it)
	}
	b.reclaim(now, reclaimPerWrite)
	if len(b.items) >= b.max && !b.reclaim(now, 1) && !b.evict() {
		return fmt.Errorf("%w: memory store full (%d sessions, all owned)", ErrUnavailable, b.max)
	}
	it := &memoryItem{key: key, owned: ownedKey(key), heapIndex: -1}
	b.put(it, value, ttl)
	b.items[key] = it
	sh := b.shard(key)
	sh.mu.Lock()
	sh.m[key] = it
	sh.mu.Unlock()
	return nil
}

// Replace implements Backend.
func (b *MemoryBackend) Replace(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	it, ok := b.items[key]
	if !ok || !it.live(b.now()) {
		return ErrNotFound
	}
	b.put(it, value, ttl)
	return nil
}

// put stores a copy of value in it under a new version, and queues an
// anonymous item as the most recently used; the caller holds mu.
func (b *MemoryBackend) put(it *memoryItem, value []byte, ttl time.Duration) {
	b.seq++
	value, expires := bytes.Clone(value), b.expiryOf(ttl)
	sh := b.shard(it.key)
	sh.mu.Lock()
	it.value, it.expires, it.version = value, expires, b.seq
	sh.mu.Unlock()
	it.written = b.tick.Add(1)
	switch {
	case it.expires.IsZero() && it.heapIndex >= 0:
		heap.Remove(&b.expiry, it.heapIndex)
	case it.expires.IsZero():
	case it.heapIndex >= 0:
		heap.Fix(&b.expiry, it.heapIndex)
	default:
		heap.Push(&b.expiry, it)
	}
	if !it.owned {
		b.lru.moveToBack(it, it.written)
	}
}

// remove drops it from the map, the expiry heap and the LRU queue; the
// caller holds mu.
func (b *MemoryBackend) remove(it *memoryItem) {
	delete(b.items, it.key)
	sh := b.shard(it.key)
	sh.mu.Lock()
	delete(sh.m, it.key)
	sh.mu.Unlock()
	if it.heapIndex >= 0 {
		heap.Remove(&b.expiry, it.heapIndex)
	}
	if !it.owned {
		b.lru.remove(it)
	}
}

// reclaim drops up to n expired entries, soonest expiry first, and reports
// whether it dropped any; the caller holds mu.
func (b *MemoryBackend) reclaim(now time.Time, n int) bool {
	dropped := false
	for ; n > 0 && len(b.expiry) > 0 && !b.expiry[0].live(now); n-- {
		b.remove(b.expiry[0])
		dropped = true
	}
	return dropped
}

// evict drops the least recently used anonymous entry, approximately (see
// Add), and reports whether there was one; the caller holds mu. It looks
// at the evictScan entries at the front of the queue, drops the least
// recently used of them and requeues those read since they were queued,
// so that the next eviction looks further.
func (b *MemoryBackend) evict() bool {
	var window [evictScan]*memoryItem
	n, victim := 0, b.lru.head
	if victim == nil {
		return false
	}
	for it := b.lru.head; it != nil && n < evictScan; it = it.next {
		window[n] = it
		n++
		if it.recency() < victim.recency() {
			victim = it
		}
	}
	b.remove(victim)
	t := b.tick.Add(1) // reads before this one count as before the requeue
	for _, it := range window[:n] {
		if it != victim && it.lastUse.Load() >= it.queued {
			b.lru.moveToBack(it, t)
		}
	}
	return true
}

// GetVersion implements ConditionalBackend. The returned slice is a copy.
func (b *MemoryBackend) GetVersion(ctx context.Context, key string) ([]byte, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	sh := b.shard(key)
	sh.mu.RLock()
	it, ok := sh.m[key]
	var (
		value   []byte
		version uint64
		expires time.Time
	)
	if ok {
		value, version, expires = it.value, it.version, it.expires
		// Load before Store: reads of an item between two writes to
		// the backend store once, so concurrent reads of a hot item
		// do not keep bouncing its cache line between cores.
		if t := b.tick.Load(); !it.owned && it.lastUse.Load() < t {
			it.lastUse.Store(t)
		}
	}
	sh.mu.RUnlock()
	if !ok || !live(expires, b.now()) {
		return nil, 0, ErrNotFound
	}
	return bytes.Clone(value), version, nil
}

// GetVersions reads every key of keys into values and versions, which
// have the length of keys, at one moment: under the read locks of every
// shard they are in, taken in shard order, so no write to any of them is
// half seen. A missing key leaves a nil value and version 0. The values
// are copies. It has the signature of BatchBackend's GetVersions, with
// which ServerStore loads an owned session and its owner's list in one

var _ BatchBackend = (*MemoryBackend)(nil)

// call.
func (b *MemoryBackend) GetVersions(ctx context.Context, keys []string, values [][]byte, versions []uint64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var locked [memoryShards]bool
	for _, k := range keys {
		locked[maphash.String(b.seed, k)%memoryShards] = true
	}
	for i := range b.shards { // in shard order: no two readers deadlock with a writer
		if locked[i] {
			b.shards[i].mu.RLock()
		}
	}
	now, t := b.now(), b.tick.Load()
	for i, k := range keys {
		values[i], versions[i] = nil, 0
		it, ok := b.shard(k).m[k]
		if !ok || !live(it.expires, now) {
			continue
		}
		values[i], versions[i] = it.value, it.version
		if !it.owned && it.lastUse.Load() < t {
			it.lastUse.Store(t)
		}
	}
	for i := range b.shards {
		if locked[i] {
			b.shards[i].mu.RUnlock()
		}
	}
	for i, v := range values {
		if v != nil {
			values[i] = bytes.Clone(v)
		}
	}
	return nil
}

// ReplaceIf implements ConditionalBackend. On ErrConflict it returns a copy
// of the current value and its version.
func (b *MemoryBackend) ReplaceIf(ctx context.Context, key string, version uint64, value []byte, ttl time.Duration) ([]byte, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
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
		b.remove(it)
		return nil, 0, nil
	}
	b.put(it, value, ttl)
	return nil, 0, nil
}

// Delete implements Backend.
func (b *MemoryBackend) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	b.mu.Lock()
	if it, ok := b.items[key]; ok {
		b.remove(it)
	}
	b.mu.Unlock()
	return nil
}

// Len returns the number of live sessions. It counts them: it is for tests
// and metrics, not for every request.
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

// expiryHeap is a min-heap of items by expiry, for container/heap; every
// item in it has a non-zero expiry and knows its index.
type expiryHeap []*memoryItem

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex, h[j].heapIndex = i, j
}

func (h *expiryHeap) Push(x any) {
	it := x.(*memoryItem)
	it.heapIndex = len(*h)
	*h = append(*h, it)
}

func (h *expiryHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	it.heapIndex = -1
	return it
}

// memoryQueue is a doubly linked list of anonymous items through their
// prev and next fields, least recently queued at head.
type memoryQueue struct {
	head, tail *memoryItem
}

// remove unlinks it, if it is linked.
func (q *memoryQueue) remove(it *memoryItem) {
	if it.prev != nil {
		it.prev.next = it.next
	} else if q.head == it {
		q.head = it.next
	} else {
		return // not linked
	}
	if it.next != nil {
		it.next.prev = it.prev
	} else {
		q.tail = it.prev
	}
	it.prev, it.next = nil, nil
}

// moveToBack (re)queues it at the tail at tick.
func (q *memoryQueue) moveToBack(it *memoryItem, tick uint64) {
	it.queued = tick
	if q.tail == it {
		return
	}
	q.remove(it)
	it.prev = q.tail
	if q.tail != nil {
		q.tail.next = it
	} else {
		q.head = it
	}
	q.tail = it
}
