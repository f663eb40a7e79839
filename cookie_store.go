package httpsession

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// CookieStore keeps the whole session record in the cookie, sealed by one of
// its sealers (signed, encrypted, NaCl or, for tests, plain). Nothing is kept
// on the server, so a cookie store scales for free but cannot revoke a
// session: a copied cookie stays valid until the expiry sealed inside it.
type CookieStore struct {
	sealer sealer
}

// sealer turns record bytes into a cookie value and back. open reports ok
// false for anything it did not seal itself with one of its keys.
type sealer interface {
	seal(data []byte) (string, error)
	open(token string) (data []byte, ok bool)
}

// Load implements Store: a cookie that does not open is ErrNotFound.
func (c *CookieStore) Load(_ context.Context, token string) ([]byte, error) {
	if token == "" || len(token) > MaxCookieSize {
		return nil, ErrNotFound
	}
	data, ok := c.sealer.open(token)
	if !ok {
		return nil, ErrNotFound
	}
	return data, nil
}

// Save implements Store by sealing data; the old token is not needed.
func (c *CookieStore) Save(_ context.Context, _ string, data []byte, _ time.Duration) (string, error) {
	return c.sealer.seal(data)
}

// Delete implements Store. There is nothing to delete on the server: the
// middleware expires the cookie.
func (c *CookieStore) Delete(context.Context, string) error { return nil }

// checkKeys validates secret keys at construction: at least one, each of an
// accepted length, no two alike (a repeated key usually means a rotation
// went wrong).
func checkKeys(keys [][]byte, minLen, maxLen int) error {
	if len(keys) == 0 {
		return fmt.Errorf("%w: no key given", ErrInvalidKey)
	}
	for i, k := range keys {
		if len(k) < minLen || len(k) > maxLen {
			if minLen == maxLen {
				return fmt.Errorf("%w: key %d has %d bytes, want %d", ErrInvalidKey, i, len(k), minLen)
			}
			return fmt.Errorf("%w: key %d has %d bytes, want %d to %d", ErrInvalidKey, i, len(k), minLen, maxLen)
		}
		for j := range i {
			if bytes.Equal(k, keys[j]) {
				return fmt.Errorf("%w: keys %d and %d are the same", ErrInvalidKey, j, i)
			}
		}
	}
	return nil
}

// NewInsecureCookieStore returns a cookie store that keeps the record in the
// cookie as unsigned base64: anyone can read and forge it. For tests and
// debugging only.
func NewInsecureCookieStore() *CookieStore { return &CookieStore{sealer: plainSealer{}} }

type plainSealer struct{}

func (plainSealer) seal(data []byte) (string, error) {
	return base64.RawURLEncoding.EncodeToString(data), nil
}

func (plainSealer) open(token string) ([]byte, bool) {
	data, err := base64.RawURLEncoding.DecodeString(token)
	return data, err == nil
}

// NewSignedCookieStore returns a cookie store whose cookie the client can
// read but not forge: base64url(record) "." base64url(HMAC-SHA256), the
// Flask and asgi-sessions model. Keys must be 32 to 64 bytes and distinct;
// the first signs, all verify, so keys rotate by prepending a new one.
// Keep secrets out of a signed session: use NewNaClCookieStore or
// NewEncryptedCookieStore for confidentiality.
func NewSignedCookieStore(keys ...[]byte) (*CookieStore, error) {
	if err := checkKeys(keys, 32, 64); err != nil {
		return nil, err
	}
	s := &signedSealer{}
	for _, k := range keys {
		s.keys = append(s.keys, bytes.Clone(k))
	}
	return &CookieStore{sealer: s}, nil
}

type signedSealer struct{ keys [][]byte }

// signedContext separates these MACs from any other use of the same key.
const signedContext = "httpsession signed cookie v1\x00"

func (s *signedSealer) mac(key []byte, payload string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(signedContext))
	h.Write([]byte(payload))
	return h.Sum(nil)
}

func (s *signedSealer) seal(data []byte) (string, error) {
	payload := base64.RawURLEncoding.EncodeToString(data)
	return payload + "." + base64.RawURLEncoding.EncodeToString(s.mac(s.keys[0], payload)), nil
}

func (s *signedSealer) open(token string) ([]byte, bool) {
	payload, sig, ok := strings.Cut(token, ".")
	if !ok || len(sig) != base64.RawURLEncoding.EncodedLen(sha256.Size) {
		return nil, false
	}
	want, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return nil, false
	}
	for _, k := range s.keys {
		if hmac.Equal(s.mac(k, payload), want) {
			data, err := base64.RawURLEncoding.DecodeString(payload)
			return data, err == nil
		}
	}
	return nil, false
}
