// Package httpsessiontest is a conformance kit for httpsession.Backend
// implementations, in the manner of testing/fstest: a Backend's own tests
// call TestBackend, which runs the contract every server-side store of
// httpsession passes.
//
//	func TestMyBackend(t *testing.T) {
//		db := openTestDB(t)
//		httpsessiontest.TestBackend(t, func(t *testing.T) httpsession.Backend {
//			return mybackend.New(db)
//		})
//	}
//
// The suite covers the Backend contract (create-if-absent, update-if-present,
// delete, expiry, context cancellation and the error sentinels), the
// ConditionalBackend contract when the backend implements it (versions,
// compare-and-set, conditional delete, a race of two writers), the backend
// behind httpsession.NewServerStore and the middleware over real HTTP (hashed
// keys, round trips per request, anonymous requests that write nothing),
// and deterministic interleavings: a logout that lands at any point of
// another request of the same session, or that is held at any of its own
// points while that request completes, wins over its changes (and, on a
// ConditionalBackend, over NewIdentity and NewSession too); and, on a
// ConditionalBackend, two overlapping writers of different keys both
// survive and concurrent increments with a merge function lose none.
//
// newBackend is called once per subtest. The backends it returns may share
// one database: the suite writes only under key prefixes of its own, fresh
// for every subtest, and deletes the keys it created when the subtest ends.
// The subtests run in parallel; run the suite with -race.
//
// The package depends only on httpsession and the standard library.
package httpsessiontest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-httpsession/httpsession"
)

// An Option adapts the suite to a backend.
type Option func(*config)

type config struct {
	ttl        func(t *testing.T, b httpsession.Backend, key string) time.Duration
	noCurrent  bool
	expiryWait time.Duration
}

// WithTTL gives the suite a way to read the time a key has left to live,
// as the backend's database reports it. With it the suite also checks that
// every write sets the TTL it was given and that a refused write leaves the
// TTL alone; without it only expiry itself is checked. b is the backend
// newBackend returned.
func WithTTL(ttl func(t *testing.T, b httpsession.Backend, key string) time.Duration) Option {
	return func(c *config) { c.ttl = ttl }
}

// WithConflictWithoutCurrent declares that ReplaceIf may answer ErrConflict
// without the current value and version (nil and 0), as Memcached's cas
// does. Without it the suite requires them.
func WithConflictWithoutCurrent() Option { return func(c *config) { c.noCurrent = true } }

// WithExpiryWait sets how long after its TTL of 1.5 s a key may still be
// readable (default 2.5 s, which covers Memcached's whole-second clock).
func WithExpiryWait(d time.Duration) Option { return func(c *config) { c.expiryWait = d } }

// TestBackend runs the conformance suite on the backends newBackend makes,
// as subtests of t: "Backend", "Conditional" (only for a
// httpsession.ConditionalBackend), "Store", "Interleaving" and "Owners"
// (sessions of a user, only for a ConditionalBackend).
func TestBackend(t *testing.T, newBackend func(t *testing.T) httpsession.Backend, opts ...Option) {
	t.Helper()
	c := &config{expiryWait: 2500 * time.Millisecond}
	for _, o := range opts {
		o(c)
	}
	k := &kit{cfg: c, newBackend: newBackend}
	probe := newBackend(t)
	if probe == nil {
		t.Fatal("httpsessiontest: newBackend returned nil")
	}
	_, conditional := probe.(httpsession.ConditionalBackend)
	t.Run("Backend", k.testBackend)
	if conditional {
		t.Run("Conditional", k.testConditional)
	} else {
		t.Logf("%T is not a ConditionalBackend: its updates are last-writer-wins; Conditional skipped", probe)
	}
	t.Run("Store", k.testStore)
	t.Run("Interleaving", func(t *testing.T) { k.testInterleaving(t, conditional) })
	if conditional {
		t.Run("Owners", k.testOwners)
	}
}

type kit struct {
	cfg        *config
	newBackend func(t *testing.T) httpsession.Backend
}

// fixture is one subtest's backend, recorded, under a fresh key prefix.
type fixture struct {
	t      *testing.T
	cfg    *config
	inner  httpsession.Backend
	rec    *recorder
	prefix string
}

// newFixture makes a fresh backend under a fresh prefix whose keys are
// deleted when t ends.
func (k *kit) newFixture(t *testing.T) *fixture {
	t.Helper()
	b := k.newBackend(t)
	if b == nil {
		t.Fatal("httpsessiontest: newBackend returned nil")
	}
	f := &fixture{t: t, cfg: k.cfg, inner: b, rec: &recorder{inner: b}, prefix: newPrefix()}
	t.Cleanup(f.rec.deleteAdded)
	return f
}

// backend returns the recorded backend, a ConditionalBackend exactly when
// the inner one is.
func (f *fixture) backend() httpsession.Backend { return f.rec.wrapped() }

// conditional returns the recorded backend as a ConditionalBackend.
func (f *fixture) conditional() httpsession.ConditionalBackend {
	return f.rec.wrapped().(httpsession.ConditionalBackend)
}

// store returns a ServerStore over the recorded backend under f's prefix.
func (f *fixture) store() *httpsession.ServerStore {
	return httpsession.NewServerStore(f.backend(), httpsession.WithKeyPrefix(f.prefix))
}

// key is a key under f's prefix that deleteAdded removes too.
func (f *fixture) key(name string) string {
	k := f.prefix + name
	f.rec.remember(k)
	return k
}

// ttl reads key's remaining TTL; ok is false without WithTTL.
func (f *fixture) ttl(key string) (time.Duration, bool) {
	if f.cfg.ttl == nil {
		return 0, false
	}
	return f.cfg.ttl(f.t, f.inner, key), true
}

// wantTTL asserts, when the suite can read TTLs, that key has at most want
// and no less than 5 seconds short of it left to live.
func (f *fixture) wantTTL(key string, want time.Duration) {
	f.t.Helper()
	if got, ok := f.ttl(key); ok && (got > want || got < want-5*time.Second) {
		f.t.Fatalf("ttl of %q = %v, want %v (at most 5s less)", key, got, want)
	}
}

func newPrefix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "httpsessiontest:" + hex.EncodeToString(b[:]) + ":"
}

// recorder counts the calls that reach a backend, remembers the keys
// written through it (to count the live ones and delete them afterwards),
// and holds requests at planned points (see pauser).
type recorder struct {
	inner                         httpsession.Backend
	gets, adds, replaces, deletes atomic.Int64

	mu     sync.Mutex
	keys   []string
	seen   map[string]bool
	pauses []*pauser // set before the first request
}

type counts struct{ gets, adds, replaces, deletes int64 }

func (c counts) total() int64  { return c.gets + c.writes() }
func (c counts) writes() int64 { return c.adds + c.replaces + c.deletes }

func (r *recorder) snapshot() counts {
	return counts{r.gets.Load(), r.adds.Load(), r.replaces.Load(), r.deletes.Load()}
}

func (r *recorder) since(before counts) counts {
	n := r.snapshot()
	return counts{n.gets - before.gets, n.adds - before.adds, n.replaces - before.replaces, n.deletes - before.deletes}
}

func (r *recorder) remember(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	if !r.seen[key] {
		r.seen[key] = true
		r.keys = append(r.keys, key)
	}
}

func (r *recorder) added() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.keys)
}

// liveKeys counts the keys written through r that still hold a value.
func (r *recorder) liveKeys(t *testing.T) int {
	t.Helper()
	n := 0
	for _, k := range r.added() {
		_, err := r.inner.Get(t.Context(), k)
		switch {
		case err == nil:
			n++
		case !errors.Is(err, httpsession.ErrNotFound):
			t.Fatalf("Get %q: %v", k, err)
		}
	}
	return n
}

func (r *recorder) deleteAdded() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, k := range r.added() {
		_ = r.inner.Delete(ctx, k)
	}
}

// wrapped returns r as a Backend, and as a ConditionalBackend when the
// inner backend is one.
func (r *recorder) wrapped() httpsession.Backend {
	if _, ok := r.inner.(httpsession.ConditionalBackend); ok {
		return conditionalRecorder{r}
	}
	return r
}

func (r *recorder) point(ctx context.Context, op string, after bool) {
	for _, p := range r.pauses {
		p.point(ctx, op, after)
	}
}

func (r *recorder) Get(ctx context.Context, key string) ([]byte, error) {
	r.gets.Add(1)
	r.point(ctx, "Get", false)
	defer r.point(ctx, "Get", true)
	return r.inner.Get(ctx, key)
}

func (r *recorder) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	r.adds.Add(1)
	r.remember(key)
	r.point(ctx, "Add", false)
	defer r.point(ctx, "Add", true)
	return r.inner.Add(ctx, key, value, ttl)
}

func (r *recorder) Replace(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	r.replaces.Add(1)
	r.remember(key)
	r.point(ctx, "Replace", false)
	defer r.point(ctx, "Replace", true)
	return r.inner.Replace(ctx, key, value, ttl)
}

func (r *recorder) Delete(ctx context.Context, key string) error {
	r.deletes.Add(1)
	r.point(ctx, "Delete", false)
	defer r.point(ctx, "Delete", true)
	return r.inner.Delete(ctx, key)
}

// conditionalRecorder is a recorder over a ConditionalBackend. GetVersion
// counts as a get and ReplaceIf as a replace, so writes() counts round
// trips that write.
type conditionalRecorder struct{ *recorder }

func (r conditionalRecorder) GetVersion(ctx context.Context, key string) ([]byte, uint64, error) {
	r.gets.Add(1)
	r.point(ctx, "GetVersion", false)
	defer r.point(ctx, "GetVersion", true)
	return r.inner.(httpsession.ConditionalBackend).GetVersion(ctx, key)
}

func (r conditionalRecorder) ReplaceIf(ctx context.Context, key string, version uint64, value []byte, ttl time.Duration) ([]byte, uint64, error) {
	r.replaces.Add(1)
	r.point(ctx, "ReplaceIf", false)
	defer r.point(ctx, "ReplaceIf", true)
	return r.inner.(httpsession.ConditionalBackend).ReplaceIf(ctx, key, version, value, ttl)
}

// GetVersions counts one get when the backend reads several keys in one
// round trip (httpsession.BatchBackend), else one per key.
func (r conditionalRecorder) GetVersions(ctx context.Context, keys []string, values [][]byte, versions []uint64) error {
	b, ok := r.inner.(httpsession.BatchBackend)
	if !ok {
		for i, k := range keys {
			v, ver, err := r.GetVersion(ctx, k)
			if err != nil && !errors.Is(err, httpsession.ErrNotFound) {
				return err
			}
			values[i], versions[i] = v, ver
		}
		return nil
	}
	r.gets.Add(1)
	r.point(ctx, "GetVersions", false)
	defer r.point(ctx, "GetVersions", true)
	return b.GetVersions(ctx, keys, values, versions)
}

// clone returns a copy of b, to check that a backend keeps no reference to
// a caller's slice.
func clone(b []byte) []byte { return bytes.Clone(b) }
