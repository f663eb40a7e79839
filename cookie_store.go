package httpsession

import (
	"bytes"
	"context"
	"fmt"
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
	if !ok || len(data) == 0 { // no record is empty
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
