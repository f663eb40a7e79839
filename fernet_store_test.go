package httpsession

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// The vectors are aiohttp_session-wire.md §6.3: made by Python's
// cryptography with aiohttpKey, a fixed timestamp and IV, from aiohttpPlain
// and a padded record.
const (
	fernetVectorToken  = "gAAAAABlU_EAAAECAwQFBgcICQoLDA0ODx7QhgcEzEUi-EcQBzQ68eQA6F1RrvetCR6QgTKSYwHjvtdpQGi_vQtBbxZgESJ9bhQFOCmjyRljyfvcb215OLjKF2G1Rr3j5x3AEN-XIFN0"
	fernetPaddedPlain  = `{"created": 1700000000, "session": {"a": "xxxxxxx"}}`
	fernetPaddedVector = "gAAAAABlU_EAAAECAwQFBgcICQoLDA0ODx7QhgcEzEUi-EcQBzQ68eQA6F1RrvetCR6QgTKSYwHj7_SbJ8iIR6KboO_ba1EtNvGDDzJO6bI9UYgG_hbTyMtYMHezvN7-e6R1_aUFNINx8o4mHOETGhRYgi0Hy-nO6w=="
)

func fernetVectorStore(t *testing.T) (*CookieStore, *fernetSealer) {
	t.Helper()
	store, err := NewFernetCookieStore([]byte(aiohttpKey))
	if err != nil {
		t.Fatal(err)
	}
	s := store.sealer.(*fernetSealer)
	s.now = func() time.Time { return time.Unix(1700000000, 0) }
	s.rand = bytes.NewReader([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	return store, s
}

func TestFernetProducesSpecVectors(t *testing.T) {
	for _, v := range []struct{ plain, token string }{
		{aiohttpPlain, fernetVectorToken},
		{fernetPaddedPlain, fernetPaddedVector},
	} {
		store, _ := fernetVectorStore(t)
		got, err := store.Save(context.Background(), "", []byte(v.plain), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if got != v.token {
			t.Errorf("seal(%s) =\n%s\nwant\n%s", v.plain, got, v.token)
		}
		data, err := store.Load(context.Background(), v.token)
		if err != nil || string(data) != v.plain {
			t.Errorf("open(vector) = %q, %v; want %q", data, err, v.plain)
		}
	}
}

func TestFernetRejectsDamagedTokens(t *testing.T) {
	store, _ := fernetVectorStore(t)
	other, err := NewFernetCookieStore([]byte("kT7wQ2mZ9rX4vB1nL8sD5fH0jG3cP6yA"))
	if err != nil {
		t.Fatal(err)
	}
	bad := []string{
		"", "gAAAAA", strings.TrimRight(fernetPaddedVector, "="), // Python requires the padding too
		fernetVectorToken[:len(fernetVectorToken)-4],
		"h" + fernetVectorToken[1:], // version byte
	}
	for i := range fernetVectorToken {
		b := []byte(fernetVectorToken)
		b[i] ^= 0x01
		bad = append(bad, string(b))
	}
	for _, tok := range bad {
		if data, err := store.Load(context.Background(), tok); err == nil {
			t.Errorf("Load(%q) opened to %q", tok, data)
		}
	}
	if _, err := other.Load(context.Background(), fernetVectorToken); err == nil {
		t.Error("a token opened under another key")
	}
}

func TestFernetKeyRotation(t *testing.T) {
	oldKey, newKey := []byte(aiohttpKey), []byte("F7n3Qx8Wm2Kz5Rb9Tc1Vh6Yp0Ld4Gs7J")
	rotated, err := NewFernetCookieStore(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := rotated.Load(context.Background(), fernetVectorToken); err != nil || string(data) != aiohttpPlain {
		t.Fatalf("old token under rotated keys: %q, %v", data, err)
	}
	tok, err := rotated.Save(context.Background(), "", []byte("x"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	onlyNew, _ := NewFernetCookieStore(newKey)
	if _, err := onlyNew.Load(context.Background(), tok); err != nil {
		t.Errorf("new token not sealed with the first key: %v", err)
	}
	if _, err := NewFernetCookieStore(oldKey, oldKey); err == nil {
		t.Error("duplicate keys accepted")
	}
	if _, err := NewFernetCookieStore(oldKey[:31]); err == nil {
		t.Error("31-byte key accepted")
	}
}

func FuzzFernetOpen(f *testing.F) {
	f.Add(fernetVectorToken)
	f.Add(fernetPaddedVector)
	f.Add("gAAAAABlU_EA")
	store, err := NewFernetCookieStore([]byte(aiohttpKey))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		data, err := store.Load(context.Background(), token)
		// Only a key holder can make a token that opens, and the strict
		// decoding leaves each token one spelling: only the seeds open.
		if err == nil && token != fernetVectorToken && token != fernetPaddedVector {
			t.Fatalf("token %q, not one that was sealed, opened to %q", token, data)
		}
	})
}

// TestFernetCookieNotMalleable: the token is decoded strictly, so no
// respelling of a Fernet cookie opens, and neither does one of the spec's
// vectors (which Python's cryptography made).
func TestFernetCookieNotMalleable(t *testing.T) {
	s, err := NewFernetCookieStore([]byte("Fernet store test key: 32 bytes!"))
	if err != nil {
		t.Fatal(err)
	}
	// Tokens of 73, 89 and 105 bytes: 4, 2 and no spare bits.
	assertNotMalleable(t, s, []byte("x"), bytes.Repeat([]byte("x"), 17), bytes.Repeat([]byte("x"), 33))

	vector, _ := fernetVectorStore(t)
	i := len(strings.TrimRight(fernetPaddedVector, "=")) - 1
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		if c == fernetPaddedVector[i] {
			continue
		}
		v := fernetPaddedVector[:i] + string(c) + fernetPaddedVector[i+1:]
		if _, err := vector.Load(context.Background(), v); !errors.Is(err, ErrNotFound) {
			t.Errorf("respelled vector %q: err %v, want ErrNotFound", v, err)
		}
	}
}

// TestFernetWeakKeyHalves: a Fernet key is two keys, the signing half and
// the encryption half. Equal halves, or a half whose bytes are all equal,
// are refused with ErrInvalidKey: with a guessable signing half anyone
// could forge a token.
func TestFernetWeakKeyHalves(t *testing.T) {
	half := "Jq4vR8zLw2XnT6bY"
	for name, key := range map[string]string{
		"equal halves":         half + half,
		"zero signing half":    strings.Repeat("\x00", 16) + half,
		"zero encrypting half": half + strings.Repeat("\x00", 16),
		"filled signing half":  strings.Repeat("k", 16) + half,
	} {
		s, err := NewFernetCookieStore([]byte(key))
		if !errors.Is(err, ErrInvalidKey) || s != nil {
			t.Errorf("%s: store %v, err %v; want ErrInvalidKey", name, s, err)
		}
	}
	if _, err := NewFernetCookieStore([]byte(half + "c0HsP9mKd3FgA7eU")); err != nil {
		t.Errorf("distinct halves: %v", err)
	}
}
