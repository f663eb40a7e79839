package httpsessiontest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-httpsession/httpsession"
)

var (
	errNotFound    = httpsession.ErrNotFound
	errExists      = httpsession.ErrExists
	errConflict    = httpsession.ErrConflict
	errUnavailable = httpsession.ErrUnavailable
)

// testBackend checks the plain Backend contract.
func (k *kit) testBackend(t *testing.T) {
	t.Run("AddIfAbsentReplaceIfPresent", func(t *testing.T) {
		t.Parallel()
		f := k.newFixture(t)
		b, key, ctx := f.inner, f.key("k"), t.Context()
		if v, err := b.Get(ctx, key); err != errNotFound {
			t.Fatalf("Get of a missing key = %q, %v; want ErrNotFound", v, err)
		}
		if err := b.Replace(ctx, key, []byte("v"), time.Hour); err != errNotFound {
			t.Fatalf("Replace of a missing key = %v, want ErrNotFound", err)
		}
		if _, err := b.Get(ctx, key); err != errNotFound {
			t.Fatalf("Replace of a missing key created it (Get: %v)", err)
		}
		value := []byte("v1")
		if err := b.Add(ctx, key, value, time.Hour); err != nil {
			t.Fatalf("Add: %v", err)
		}
		value[0] = 'X' // the backend must not keep the caller's slice
		f.wantTTL(key, time.Hour)
		if err := b.Add(ctx, key, []byte("v2"), time.Hour); err != errExists {
			t.Fatalf("Add of a present key = %v, want ErrExists", err)
		}
		wantGet(t, b, key, "v1") // Add never overwrites
		if err := b.Replace(ctx, key, []byte("v3"), 90*time.Minute); err != nil {
			t.Fatalf("Replace: %v", err)
		}
		wantGet(t, b, key, "v3")
		f.wantTTL(key, 90*time.Minute) // Replace sets its own TTL
		if err := b.Replace(ctx, key, []byte{}, time.Hour); err != nil {
			t.Fatalf("Replace with an empty value: %v", err)
		}
		wantGet(t, b, key, "")
		if err := b.Delete(ctx, key); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := b.Get(ctx, key); err != errNotFound {
			t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
		}
		if err := b.Delete(ctx, key); err != nil {
			t.Fatalf("Delete of a missing key = %v, want nil", err)
		}
		if err := b.Replace(ctx, key, []byte("back"), time.Hour); err != errNotFound {
			t.Fatalf("Replace after Delete = %v, want ErrNotFound", err)
		}
		if err := b.Add(ctx, key, []byte("again"), time.Hour); err != nil {
			t.Fatalf("Add after Delete: %v", err)
		}
		wantGet(t, b, key, "again")
		other := f.key("other")
		if err := b.Add(ctx, other, clone([]byte("o")), time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := b.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		wantGet(t, b, other, "o") // deleting one key leaves the others
	})

	t.Run("BinaryValues", func(t *testing.T) {
		t.Parallel()
		f := k.newFixture(t)
		b, key := f.inner, f.key("bin")
		v := make([]byte, 0, 256*3)
		for range 3 {
			for i := range 256 {
				v = append(v, byte(i))
			}
		}
		if err := b.Add(t.Context(), key, v, time.Hour); err != nil {
			t.Fatal(err)
		}
		wantGet(t, b, key, string(v))
	})

	t.Run("Expiry", func(t *testing.T) {
		t.Parallel()
		f := k.newFixture(t)
		b, key, ctx := f.inner, f.key("k"), t.Context()
		if err := b.Add(ctx, key, []byte("short"), 1500*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		wantGet(t, b, key, "short")
		f.waitNotFound(start, "value added with a 1.5s ttl", func() error {
			_, err := b.Get(ctx, key)
			return err
		})
		if err := b.Replace(ctx, key, []byte("late"), time.Hour); err != errNotFound {
			t.Fatalf("Replace of an expired key = %v, want ErrNotFound", err)
		}
		if err := b.Add(ctx, key, []byte("new"), time.Hour); err != nil {
			t.Fatalf("Add over an expired key: %v", err)
		}
		wantGet(t, b, key, "new")
	})

	t.Run("ContextCancellation", func(t *testing.T) {
		t.Parallel()
		f := k.newFixture(t)
		b, key := f.inner, f.key("k")
		if err := b.Add(t.Context(), key, []byte("keep"), time.Hour); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := b.Get(ctx, key)
		wantCancelled(t, "Get", err)
		wantCancelled(t, "Add", b.Add(ctx, f.key("other"), []byte("x"), time.Hour))
		wantCancelled(t, "Replace", b.Replace(ctx, key, []byte("changed"), time.Hour))
		wantCancelled(t, "Delete", b.Delete(ctx, key))
		wantGet(t, b, key, "keep") // nothing reached the database
		if _, err := b.Get(t.Context(), f.prefix+"other"); err != errNotFound {
			t.Fatalf("Add with a cancelled context stored the key (Get: %v)", err)
		}
	})
}

// wantCancelled asserts that err reports a cancelled context as a failure
// (ErrUnavailable wrapping context.Canceled), never as an answer.
func wantCancelled(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, errUnavailable) || !errors.Is(err, context.Canceled) ||
		errors.Is(err, errNotFound) || errors.Is(err, errConflict) || errors.Is(err, errExists) {
		t.Errorf("%s with a cancelled context: %v, want ErrUnavailable and context.Canceled", op, err)
	}
}

func wantGet(t *testing.T, b httpsession.Backend, key, want string) {
	t.Helper()
	v, err := b.Get(t.Context(), key)
	if err != nil || string(v) != want || v == nil {
		t.Fatalf("Get %q = %q (nil: %t), %v; want %q", key, v, v == nil, err, want)
	}
}

// waitNotFound polls load until it answers ErrNotFound, which it must do
// within 1.5s plus the expiry wait of start.
func (f *fixture) waitNotFound(start time.Time, what string, load func() error) {
	f.t.Helper()
	limit := 1500*time.Millisecond + f.cfg.expiryWait
	for {
		err := load()
		if errors.Is(err, errNotFound) {
			if d := time.Since(start); d < time.Second {
				f.t.Fatalf("%s gone after %v, before 1s", what, d)
			}
			return
		}
		if err != nil {
			f.t.Fatal(err)
		}
		if time.Since(start) > limit {
			f.t.Fatalf("%s still there after %v", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testConditional checks the ConditionalBackend contract.
func (k *kit) testConditional(t *testing.T) {
	t.Run("VersionMatches", func(t *testing.T) {
		t.Parallel()
		f := k.newFixture(t)
		b, key, ctx := f.conditional(), f.key("k"), t.Context()
		if err := b.Add(ctx, key, []byte("v1"), time.Hour); err != nil {
			t.Fatal(err)
		}
		v1 := wantVersion(t, b, key, "v1")
		if again := wantVersion(t, b, key, "v1"); again != v1 {
			t.Fatalf("version changed from %#x to %#x without a write", v1, again)
		}
		if _, _, err := b.ReplaceIf(ctx, key, v1, []byte("v2"), 90*time.Minute); err != nil {
			t.Fatalf("ReplaceIf at the current version: %v", err)
		}
		v2 := wantVersion(t, b, key, "v2")
		if v2 == v1 {
			t.Fatalf("ReplaceIf kept the version %#x", v1)
		}
		wantGet(t, b, key, "v2")
		f.wantTTL(key, 90*time.Minute) // ReplaceIf's TTL, not Add's
		if _, _, err := b.ReplaceIf(ctx, key, v2, []byte("v3"), time.Hour); err != nil {
			t.Fatalf("second ReplaceIf: %v", err)
		}
		if v3 := wantVersion(t, b, key, "v3"); v3 == v1 || v3 == v2 {
			t.Fatalf("versions %#x, %#x, %#x: want three different ones", v1, v2, v3)
		}
		f.wantTTL(key, time.Hour)
	})

	t.Run("PlainWritesChangeVersion", func(t *testing.T) {
		t.Parallel()
		f := k.newFixture(t)
		b, key, ctx := f.conditional(), f.key("k"), t.Context()
		if err := b.Add(ctx, key, []byte("a"), time.Hour); err != nil {
			t.Fatal(err)
		}
		va := wantVersion(t, b, key, "a")
		if err := b.Replace(ctx, key, []byte("b"), time.Hour); err != nil {
			t.Fatal(err)
		}
		vb := wantVersion(t, b, key, "b")
		if vb == va {
			t.Fatalf("Replace kept the version %#x", va)
		}
		cur, curV, err := b.ReplaceIf(ctx, key, va, []byte("c"), time.Hour)
		f.wantConflict("ReplaceIf at the version before a Replace", cur, curV, err, "b", vb)
		// A key deleted and created again is another version too.
		if err := b.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		if err := b.Add(ctx, key, []byte("d"), time.Hour); err != nil {
			t.Fatal(err)
		}
		vd := wantVersion(t, b, key, "d")
		cur, curV, err = b.ReplaceIf(ctx, key, vb, []byte("e"), time.Hour)
		f.wantConflict("ReplaceIf at the version before Delete and Add", cur, curV, err, "d", vd)
	})

	t.Run("StaleVersion", func(t *testing.T) {
		t.Parallel()
		f := k.newFixture(t)
		b, key, ctx := f.conditional(), f.key("k"), t.Context()
		v1, v2 := writeTwice(t, b, key)
		cur, curV, err := b.ReplaceIf(ctx, key, v1, []byte("stale"), 90*time.Minute)
		f.wantConflict("ReplaceIf at a stale version", cur, curV, err, "v2", v2)
		cur, curV, err = b.ReplaceIf(ctx, key, v1, nil, time.Hour)
		f.wantConflict("conditional delete at a stale version", cur, curV, err, "v2", v2)
		// Nothing was written: value, version and ttl are v2's.
		if got := wantVersion(t, b, key, "v2"); got != v2 {
			t.Fatalf("version after refused writes = %#x, want %#x", got, v2)
		}
		f.wantTTL(key, time.Hour)
	})

	t.Run("Absent", func(t *testing.T) {
		t.Parallel()
		f := k.newFixture(t)
		b, key, ctx := f.conditional(), f.key("k"), t.Context()
		if v, ver, err := b.GetVersion(ctx, key); err != errNotFound {
			t.Fatalf("GetVersion of a missing key = %q, %#x, %v; want ErrNotFound", v, ver, err)
		}
		for _, value := range [][]byte{[]byte("x"), nil} {
			if cur, _, err := b.ReplaceIf(ctx, key, 1, value, time.Hour); err != errNotFound || cur != nil {
				t.Fatalf("ReplaceIf(%q) of a missing key = %q, %v; want ErrNotFound", value, cur, err)
			}
		}
		wantAbsent(t, b, key)
		// The version of a deleted key does not bring it back.
		if err := b.Add(ctx, key, []byte("v1"), time.Hour); err != nil {
			t.Fatal(err)
		}
		v1 := wantVersion(t, b, key, "v1")
		if err := b.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.ReplaceIf(ctx, key, v1, []byte("back"), time.Hour); err != errNotFound {
			t.Fatalf("ReplaceIf of a deleted key = %v, want ErrNotFound", err)
		}
		wantAbsent(t, b, key)
	})

	t.Run("ConditionalDelete", func(t *testing.T) {
		t.Parallel()
		f := k.newFixture(t)
		b, key, ctx := f.conditional(), f.key("k"), t.Context()
		v1, v2 := writeTwice(t, b, key)
		cur, curV, err := b.ReplaceIf(ctx, key, v1, nil, time.Hour)
		f.wantConflict("conditional delete at a stale version", cur, curV, err, "v2", v2)
		wantVersion(t, b, key, "v2")
		if _, _, err := b.ReplaceIf(ctx, key, v2, nil, time.Hour); err != nil {
			t.Fatalf("conditional delete at the current version: %v", err)
		}
		wantAbsent(t, b, key)
		if _, _, err := b.ReplaceIf(ctx, key, v2, nil, time.Hour); err != errNotFound {
			t.Fatalf("second conditional delete = %v, want ErrNotFound", err)
		}
		if _, _, err := b.ReplaceIf(ctx, key, v2, []byte("back"), time.Hour); err != errNotFound {
			t.Fatalf("ReplaceIf after the conditional delete = %v, want ErrNotFound", err)
		}
		wantAbsent(t, b, key)
		if err := b.Add(ctx, key, []byte("new"), time.Hour); err != nil {
			t.Fatalf("Add after the conditional delete: %v", err)
		}
		wantVersion(t, b, key, "new")
	})

	t.Run("EmptyValue", func(t *testing.T) {
		t.Parallel()
		f := k.newFixture(t)
		b, key, ctx := f.conditional(), f.key("k"), t.Context()
		if err := b.Add(ctx, key, []byte("v1"), time.Hour); err != nil {
			t.Fatal(err)
		}
		v1 := wantVersion(t, b, key, "v1")
		// An empty value is a value; only nil deletes.
		if _, _, err := b.ReplaceIf(ctx, key, v1, []byte{}, time.Hour); err != nil {
			t.Fatal(err)
		}
		v2 := wantVersion(t, b, key, "")
		// The empty current value comes back as an empty, non-nil slice:
		// nil would say that ReplaceIf brought nothing back.
		cur, curV, err := b.ReplaceIf(ctx, key, v1, []byte("x"), time.Hour)
		f.wantConflict("ReplaceIf at the version before the empty value", cur, curV, err, "", v2)
		if _, _, err := b.ReplaceIf(ctx, key, v2, nil, time.Hour); err != nil {
			t.Fatal(err)
		}
		wantAbsent(t, b, key)
	})

	t.Run("Expiry", func(t *testing.T) {
		t.Parallel()
		f := k.newFixture(t)
		b, key, ctx := f.conditional(), f.key("k"), t.Context()
		if err := b.Add(ctx, key, []byte("v1"), time.Hour); err != nil {
			t.Fatal(err)
		}
		v1 := wantVersion(t, b, key, "v1")
		if _, _, err := b.ReplaceIf(ctx, key, v1, []byte("short"), 1500*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		v2 := wantVersion(t, b, key, "short")
		f.waitNotFound(start, "value with a 1.5s ttl from ReplaceIf", func() error {
			_, _, err := b.GetVersion(ctx, key)
			return err
		})
		if _, _, err := b.ReplaceIf(ctx, key, v2, []byte("late"), time.Hour); err != errNotFound {
			t.Fatalf("ReplaceIf of an expired key = %v, want ErrNotFound", err)
		}
		wantAbsent(t, b, key)
	})

	t.Run("ContextCancellation", func(t *testing.T) {
		t.Parallel()
		f := k.newFixture(t)
		b, key := f.conditional(), f.key("k")
		if err := b.Add(t.Context(), key, []byte("keep"), time.Hour); err != nil {
			t.Fatal(err)
		}
		v := wantVersion(t, b, key, "keep")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, _, err := b.GetVersion(ctx, key)
		wantCancelled(t, "GetVersion", err)
		_, _, err = b.ReplaceIf(ctx, key, v, []byte("changed"), time.Hour)
		wantCancelled(t, "ReplaceIf", err)
		_, _, err = b.ReplaceIf(ctx, key, v, nil, time.Hour)
		wantCancelled(t, "conditional delete", err)
		if got := wantVersion(t, b, key, "keep"); got != v { // nothing reached the database
			t.Fatalf("version %#x, want %#x", got, v)
		}
	})

	// Two ReplaceIf calls from the same version, released together: exactly
	// one wins. In odd rounds one of them is a conditional delete: if it
	// wins, the other finds no key; if it loses, it finds another version.
	t.Run("Race", func(t *testing.T) {
		t.Parallel()
		f := k.newFixture(t)
		b, key, ctx := f.conditional(), f.key("k"), t.Context()
		if err := b.Add(ctx, key, []byte("start"), time.Hour); err != nil {
			t.Fatal(err)
		}
		deletes := 0
		for round := range 40 {
			_, v0, err := b.GetVersion(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			type result struct {
				value, cur []byte
				curV       uint64
				err        error
			}
			var res [2]result
			res[0].value = fmt.Appendf(nil, "g0-r%d", round)
			res[1].value = fmt.Appendf(nil, "g1-r%d", round)
			if round%2 == 1 {
				res[0].value = nil
			}
			start := make(chan struct{})
			var wg sync.WaitGroup
			for g := range res {
				wg.Go(func() {
					<-start
					r := &res[g]
					r.cur, r.curV, r.err = b.ReplaceIf(ctx, key, v0, r.value, time.Hour)
				})
			}
			close(start)
			wg.Wait()
			var winners []int
			for g, r := range res {
				if r.err == nil {
					winners = append(winners, g)
				}
			}
			if len(winners) != 1 {
				t.Fatalf("round %d: %d winners (errors %v, %v), want exactly one", round, len(winners), res[0].err, res[1].err)
			}
			w := winners[0]
			win, lose := res[w], res[1-w]
			if win.value == nil {
				deletes++
				if lose.err != errNotFound {
					t.Fatalf("round %d: the conditional delete won, the other ReplaceIf got %v, want ErrNotFound", round, lose.err)
				}
				wantAbsent(t, b, key)
				if err := b.Add(ctx, key, []byte("start"), time.Hour); err != nil {
					t.Fatal(err)
				}
				continue
			}
			curV := wantVersion(t, b, key, string(win.value))
			f.wantConflict(fmt.Sprintf("round %d: the losing ReplaceIf", round), lose.cur, lose.curV, lose.err, string(win.value), curV)
		}
		t.Logf("40 rounds, %d won by the conditional delete", deletes)
	})
}

// wantVersion asserts that key holds want and returns its version.
func wantVersion(t *testing.T, b httpsession.ConditionalBackend, key, want string) uint64 {
	t.Helper()
	v, ver, err := b.GetVersion(t.Context(), key)
	if err != nil || string(v) != want {
		t.Fatalf("GetVersion = %q, %#x, %v; want %q", v, ver, err, want)
	}
	return ver
}

// writeTwice stores v1 under key (Add), then v2 in its place (ReplaceIf at
// v1's version), and returns both versions.
func writeTwice(t *testing.T, b httpsession.ConditionalBackend, key string) (v1, v2 uint64) {
	t.Helper()
	if err := b.Add(t.Context(), key, []byte("v1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	v1 = wantVersion(t, b, key, "v1")
	if _, _, err := b.ReplaceIf(t.Context(), key, v1, []byte("v2"), time.Hour); err != nil {
		t.Fatal(err)
	}
	return v1, wantVersion(t, b, key, "v2")
}

// wantAbsent asserts that key holds nothing, for GetVersion and Get.
func wantAbsent(t *testing.T, b httpsession.ConditionalBackend, key string) {
	t.Helper()
	if v, ver, err := b.GetVersion(t.Context(), key); err != errNotFound {
		t.Fatalf("GetVersion = %q, %#x, %v; want ErrNotFound", v, ver, err)
	}
	if v, err := b.Get(t.Context(), key); err != errNotFound {
		t.Fatalf("Get = %q, %v; want ErrNotFound", v, err)
	}
}

// wantConflict asserts that a ReplaceIf failed with ErrConflict and
// brought back the current value and version, or, with
// WithConflictWithoutCurrent, nothing.
func (f *fixture) wantConflict(op string, cur []byte, curV uint64, err error, want string, wantV uint64) {
	f.t.Helper()
	if err != errConflict {
		f.t.Fatalf("%s: %v, want ErrConflict", op, err)
	}
	if f.cfg.noCurrent && cur == nil && curV == 0 {
		return
	}
	if cur == nil || string(cur) != want || curV != wantV {
		f.t.Fatalf("%s: ErrConflict with %q (nil: %t), %#x; want the current %q, %#x", op, cur, cur == nil, curV, want, wantV)
	}
}
