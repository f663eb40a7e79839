package httpsession

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// CookieStore keeps the whole session record in the cookie, sealed by one of
// its sealers (signed, encrypted, NaCl or, for tests, plain). Nothing is kept
// on the server, so a cookie store scales for free but cannot revoke a
// session: a copied cookie stays valid until the expiry sealed inside it.
type CookieStore struct {
	sealer   sealer
	rejected atomic.Uint64
}

// Rejected returns how many cookies Load has refused since the store was
// made: tampered with, forged, truncated, or sealed with a key that is no
// longer configured. A cookie a store refuses is "no session" for the
// request, so this count (and the warning the middleware logs for each,
// without the token) is how an operator sees tampering: export it as a
// metric. A rise right after a key rotation is old cookies; a steady
// stream is someone trying.
func (c *CookieStore) Rejected() uint64 { return c.rejected.Load() }

// errRejected is Load's answer for a cookie that does not open: no session
// (it wraps ErrNotFound), and a sign of tampering the middleware reports.
var errRejected = fmt.Errorf("%w: cookie does not open with any key", ErrNotFound)

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
		c.rejected.Add(1)
		return nil, errRejected
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
// accepted length and not obviously non-secret (see uniform), no two alike
// (a repeated key usually means a rotation went wrong).
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
		if uniform(k) {
			return fmt.Errorf("%w: key %d is one byte repeated, not a secret", ErrInvalidKey, i)
		}
		for j := range i {
			if bytes.Equal(k, keys[j]) {
				return fmt.Errorf("%w: keys %d and %d are the same", ErrInvalidKey, j, i)
			}
		}
	}
	return nil
}

// uniform reports whether every byte of k is the same: an all-zero buffer
// that was never filled, or a key "filled" with one character. Such a key
// is guessed first, and it is a mistake rather than a choice, so it is
// refused instead of silently protecting nothing.
func uniform(k []byte) bool {
	for _, c := range k {
		if c != k[0] {
			return false
		}
	}
	return true
}

// Cookie tokens are decoded strictly: a lenient base64 decoder ignores the
// spare low bits of the last character and skips line breaks, so one
// sealed token would have many spellings that all open, and anything keyed
// by the cookie's text (a list of revoked cookies, a replay cache) could
// be sidestepped. So every store's encoding (signedEncoding, naclEncoding,
// fernetEncoding, secureCookieEncoding) is Strict, which refuses spare bits
// that are not zero, and decodedAll or canonicalBase64 refuses the line
// breaks that even a strict decoder skips. Python's base64 writes the one
// canonical spelling, so aiohttp_session's cookies still open.

// decodedAll reports whether a strict decode of src that produced n bytes
// read every byte of src as base64: src is then the one spelling of them.
func decodedAll(enc *base64.Encoding, n, srcLen int) bool {
	return enc.EncodedLen(n) == srcLen
}

// canonicalBase64 reports whether s is the one spelling, under the strict
// encoding enc, of whatever bytes a lenient decoder reads from it. It is
// for tokens that another package (securecookie) decodes leniently: only
// the last quantum of four characters can hold padding or spare bits, so
// it alone is decoded again, with no allocation; line breaks anywhere are
// refused.
func canonicalBase64(enc *base64.Encoding, s string) bool {
	if strings.IndexByte(s, '\r') >= 0 || strings.IndexByte(s, '\n') >= 0 { // vectorised, unlike ContainsAny
		return false
	}
	q := len(s) % 4
	if q == 0 {
		q = 4
	}
	if q > len(s) {
		return false
	}
	var buf [3]byte
	_, err := enc.Decode(buf[:], []byte(s[len(s)-q:]))
	return err == nil
}
