package httpsession

import (
	"crypto/hkdf"
	"crypto/sha256"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/securecookie"
)

// TestEncryptedCookieNotMalleable: securecookie's own decoding of the
// outer base64 is lenient; the store checks that the token is canonical
// before handing it over, so no respelling opens. The inner base64 (the
// ciphertext) is covered by securecookie's MAC as text, so it cannot be
// respelled at all.
func TestEncryptedCookieNotMalleable(t *testing.T) {
	s, err := NewEncryptedCookieStore([]byte("encrypted store test key, 32 b!!"))
	if err != nil {
		t.Fatal(err)
	}
	assertNotMalleable(t, s, []byte("x"), []byte("xy"), []byte("xyz"))
}

// TestEncryptedCookieIsSecureCookieFormat: the store's cookies are
// gorilla/securecookie's under the derived keys, both ways, for every key
// of a rotation, with and without a binding head, and securecookie's
// refusals (a wrong key, a cut token) are the store's.
func TestEncryptedCookieIsSecureCookieFormat(t *testing.T) {
	keys := [][]byte{[]byte("encrypted store test key, 32 b!!"), []byte("an older key of the same store..")}
	store, err := NewEncryptedCookieStore(keys...)
	if err != nil {
		t.Fatal(err)
	}
	sealer := store.sealer.(*secureCookieSealer)
	var codecs []securecookie.Codec
	for _, k := range keys {
		hashKey, _ := hkdf.Key(sha256.New, k, nil, "httpsession securecookie hmac", 32)
		blockKey, _ := hkdf.Key(sha256.New, k, nil, "httpsession securecookie aes", 32)
		codecs = append(codecs, securecookie.New(hashKey, blockKey).
			SetSerializer(securecookie.NopEncoder{}).MaxAge(0).MaxLength(0))
	}
	for _, rec := range []string{`{"created":1700000000,"session":{}}`, "x", strings.Repeat("long record ", 400)} {
		for _, head := range []string{"", `{"bind":"AIOHTTP_SESSION;/",`} {
			tok, err := sealer.seal(head, []byte(rec))
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			if err := securecookie.DecodeMulti(secureCookieName, tok, &got, codecs...); err != nil || string(got) != head+rec {
				t.Fatalf("securecookie opens the store's token to %q, %v; want %q", got, err, head+rec)
			}
			if data, ok := sealer.open(tok); !ok || string(data) != head+rec {
				t.Fatalf("store opens its own token to %q, %v", data, ok)
			}
			if _, ok := sealer.open(tok[:len(tok)-4]); ok {
				t.Fatal("a cut token opens")
			}
		}
		for i, c := range codecs {
			tok, err := securecookie.EncodeMulti(secureCookieName, []byte(rec), c)
			if err != nil {
				t.Fatal(err)
			}
			if data, ok := sealer.open(tok); !ok || string(data) != rec {
				t.Fatalf("key %d: store opens securecookie's token to %q, %v; want %q", i, data, ok, rec)
			}
		}
	}
	other, _ := hkdf.Key(sha256.New, []byte("a third key, never given to it.."), nil, "httpsession securecookie hmac", 32)
	tok, err := securecookie.EncodeMulti(secureCookieName, []byte("x"), securecookie.New(other, nil).SetSerializer(securecookie.NopEncoder{}))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sealer.open(tok); ok {
		t.Fatal("a token under another key opens")
	}
}

// TestValidTimestamp: securecookie's timestamp check is strconv.ParseInt's.
func TestValidTimestamp(t *testing.T) {
	for _, s := range []string{"", "0", "1700000000", "+1", "-1", "-", "+", "1a", " 1", "9223372036854775807",
		"9223372036854775808", "-9223372036854775808", "-9223372036854775809", "99999999999999999999", "00000000000000000000001"} {
		_, err := strconv.ParseInt(s, 10, 64)
		if got := validTimestamp([]byte(s)); got != (err == nil) {
			t.Errorf("validTimestamp(%q) = %v, ParseInt's error %v", s, got, err)
		}
	}
}
