package httpsession

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"
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

// NewInsecureCookieStore returns a cookie store that keeps the record in the
// cookie as readable JSON, unsigned: anyone can read and forge it. For tests
// and debugging only. Go's own cookie parsers (net/http/cookiejar,
// http.Response.Cookies) drop its values; browsers and Python keep them. Its cookie is byte-compatible with aiohttp_session's
// SimpleCookieStorage: Python-quoted JSON such as
// "{\"created\": 1700000000\054 \"session\": {}}", which net/http's own
// cookie reader would drop.
func NewInsecureCookieStore() *CookieStore { return &CookieStore{sealer: plainSealer{}} }

type plainSealer struct{}

func (plainSealer) seal(data []byte) (string, error) { return pythonQuote(asciiJSON(data)), nil }

func (plainSealer) open(token string) ([]byte, bool) {
	if len(token) >= 2 && token[0] == '"' && token[len(token)-1] == '"' {
		token = token[1 : len(token)-1] // Load called directly, not through the middleware
	}
	return pythonUnquote(token)
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
	s := &signedSealer{macs: make([]*sync.Pool, len(keys))}
	for i, k := range keys {
		k := bytes.Clone(k)
		// hmac.New costs several allocations; keyed states are reused.
		s.macs[i] = &sync.Pool{New: func() any { return hmac.New(sha256.New, k) }}
	}
	return &CookieStore{sealer: s}, nil
}

type signedSealer struct{ macs []*sync.Pool }

// signedContext separates these MACs from any other use of the same key.
const signedContext = "httpsession signed cookie v1\x00"

var signedEncoding = base64.RawURLEncoding

// mac appends the MAC of payload under key i to dst.
func (s *signedSealer) mac(dst []byte, i int, payload []byte) []byte {
	h := s.macs[i].Get().(hash.Hash)
	h.Reset()
	h.Write([]byte(signedContext))
	h.Write(payload)
	dst = h.Sum(dst)
	s.macs[i].Put(h)
	return dst
}

func (s *signedSealer) seal(data []byte) (string, error) {
	n := signedEncoding.EncodedLen(len(data))
	var b strings.Builder
	b.Grow(n + 1 + signedEncoding.EncodedLen(sha256.Size))
	var scratch [512]byte
	payload := signedEncoding.AppendEncode(scratch[:0], data)
	var sum [sha256.Size]byte
	b.Write(payload)
	b.WriteByte('.')
	b.Write(signedEncoding.AppendEncode(scratch[:0], s.mac(sum[:0], 0, payload)))
	return b.String(), nil
}

func (s *signedSealer) open(token string) ([]byte, bool) {
	payload, sig, ok := strings.Cut(token, ".")
	if !ok || len(sig) != signedEncoding.EncodedLen(sha256.Size) {
		return nil, false
	}
	var want, got [sha256.Size]byte
	if n, err := signedEncoding.Decode(want[:], []byte(sig)); err != nil || n != sha256.Size {
		return nil, false
	}
	p := []byte(payload)
	for i := range s.macs {
		if hmac.Equal(s.mac(got[:0], i, p), want[:]) {
			data, err := signedEncoding.DecodeString(payload)
			return data, err == nil
		}
	}
	return nil, false
}

// asciiJSON escapes every non-ASCII character of JSON text as \uXXXX, as
// Python's json.dumps does by default, so the cookie stays ASCII. Non-ASCII
// bytes only occur inside JSON strings, where the escape means the same.
func asciiJSON(data []byte) []byte {
	const hex = "0123456789abcdef"
	var b []byte
	for i := 0; i < len(data); {
		if data[i] < utf8.RuneSelf {
			b = append(b, data[i])
			i++
			continue
		}
		r, size := utf8.DecodeRune(data[i:])
		i += size
		units := []rune{r}
		if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
			units = []rune{r1, r2}
		}
		for _, u := range units {
			b = append(b, '\\', 'u', hex[u>>12&0xf], hex[u>>8&0xf], hex[u>>4&0xf], hex[u&0xf])
		}
	}
	return b
}

// pythonQuote is http.cookies._quote: a value of only "legal" characters
// goes bare; anything else is double-quoted with '"' and '\\' backslashed
// and other characters outside the unescaped set written as \ooo octal.
func pythonQuote(v []byte) string {
	bare := len(v) > 0
	for _, c := range v {
		if !pythonLegal(c) {
			bare = false
			break
		}
	}
	if bare {
		return string(v)
	}
	b := make([]byte, 0, len(v)+len(v)/8+2)
	b = append(b, '"')
	for _, c := range v {
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case pythonLegal(c) || strings.IndexByte(" ()/<=>?@[]{}", c) >= 0:
			b = append(b, c)
		default:
			b = append(b, '\\', '0'+c>>6, '0'+c>>3&7, '0'+c&7)
		}
	}
	return string(append(b, '"'))
}

func pythonLegal(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~:", c) >= 0
}

// pythonUnquote is http.cookies._unquote for a value whose outer quotes are
// already removed: \ooo (first digit 0-3) is that code point, \X is X.
func pythonUnquote(v string) ([]byte, bool) {
	if strings.IndexByte(v, '\\') < 0 {
		return []byte(v), true
	}
	b := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '\\' {
			b = append(b, c)
			continue
		}
		if i+1 >= len(v) {
			return nil, false
		}
		if i+3 < len(v) && '0' <= v[i+1] && v[i+1] <= '3' && isOctal(v[i+2]) && isOctal(v[i+3]) {
			b = utf8.AppendRune(b, rune(v[i+1]-'0')<<6|rune(v[i+2]-'0')<<3|rune(v[i+3]-'0'))
			i += 3
			continue
		}
		b = append(b, v[i+1])
		i++
	}
	return b, true
}

func isOctal(c byte) bool { return '0' <= c && c <= '7' }
