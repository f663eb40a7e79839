package httpsession

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// memoryTTL reports the time key has left to live in b, by b's clock.
func memoryTTL(t *testing.T, b *MemoryBackend, key string) time.Duration {
	t.Helper()
	b.mu.RLock()
	it, ok := b.items[key]
	b.mu.RUnlock()
	if !ok {
		t.Fatalf("key %q not in the memory backend", key)
	}
	if it.expires.IsZero() {
		return -1 // no expiry: never what a test wants
	}
	return it.expires.Sub(b.now())
}

// TestMemoryBackendVersions checks what is particular to MemoryBackend's
// counter: every write is a new version, even of the same bytes, expiry
// follows the backend's clock, and no caller shares the stored bytes.
func TestMemoryBackendVersions(t *testing.T) {
	t.Parallel()
	clock := testClockAt(time.Unix(1_800_000_000, 0))
	b := NewMemoryBackend(0, clock.Now)
	ctx := t.Context()

	if err := b.Add(ctx, "a", []byte("same"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(ctx, "b", []byte("same"), time.Minute); err != nil {
		t.Fatal(err)
	}
	va, vb := wantVersion(t, b, "a", "same"), wantVersion(t, b, "b", "same")
	if va == 0 || vb <= va {
		t.Fatalf("versions %d then %d: want a counter from 1 on", va, vb)
	}
	// The same bytes written again are a new version.
	if err := b.Replace(ctx, "a", []byte("same"), time.Minute); err != nil {
		t.Fatal(err)
	}
	va2 := wantVersion(t, b, "a", "same")
	if va2 <= vb {
		t.Fatalf("version after Replace %d, want above %d", va2, vb)
	}
	if _, _, err := b.ReplaceIf(ctx, "a", va, []byte("same"), time.Minute); !errors.Is(err, ErrConflict) {
		t.Fatalf("ReplaceIf at the version before a same-bytes Replace = %v, want ErrConflict", err)
	}
	if _, _, err := b.ReplaceIf(ctx, "a", va2, []byte("same"), time.Minute); err != nil {
		t.Fatal(err)
	}
	va3 := wantVersion(t, b, "a", "same")
	if va3 <= va2 {
		t.Fatalf("version after ReplaceIf %d, want above %d", va3, va2)
	}

	// Copies in and out: changing a slice passed in or handed out does not
	// change the store.
	in := []byte("mine")
	if _, _, err := b.ReplaceIf(ctx, "a", va3, in, time.Minute); err != nil {
		t.Fatal(err)
	}
	copy(in, "XXXX")
	got, v, err := b.GetVersion(ctx, "a")
	if err != nil || string(got) != "mine" {
		t.Fatalf("GetVersion = %q, %v; want mine", got, err)
	}
	copy(got, "XXXX")
	cur, _, err := b.ReplaceIf(ctx, "a", va3, []byte("stale"), time.Minute)
	if !errors.Is(err, ErrConflict) || !bytes.Equal(cur, []byte("mine")) {
		t.Fatalf("stale ReplaceIf = %q, %v; want mine, ErrConflict", cur, err)
	}
	copy(cur, "XXXX")
	wantVersion(t, b, "a", "mine")

	// Expiry by the backend's clock: ReplaceIf sets it, and an expired
	// key is absent for GetVersion and ReplaceIf.
	if _, _, err := b.ReplaceIf(ctx, "a", v, []byte("short"), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := memoryTTL(t, b, "a"); d != 10*time.Second {
		t.Fatalf("ttl after ReplaceIf(10s) = %v", d)
	}
	v = wantVersion(t, b, "a", "short")
	clock.Advance(10 * time.Second)
	wantAbsent(t, b, "a")
	if _, _, err := b.ReplaceIf(ctx, "a", v, []byte("late"), time.Minute); err != ErrNotFound {
		t.Fatalf("ReplaceIf of an expired key = %v, want ErrNotFound", err)
	}
	if _, _, err := b.ReplaceIf(ctx, "a", v, nil, time.Minute); err != ErrNotFound {
		t.Fatalf("conditional delete of an expired key = %v, want ErrNotFound", err)
	}
	if n := b.Len(); n != 1 {
		t.Fatalf("Len = %d, want 1 (b)", n)
	}
}
