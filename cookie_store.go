package httpsession

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// CookieStore keeps the whole session record in the cookie, sealed by one of
// its sealers (signed, encrypted, NaCl, Fernet or, for tests, plain).
// Nothing is kept on the server, so a cookie store scales for free but
// cannot revoke a session: a copied cookie stays valid until the expiry
// sealed inside it.
//
// Every seal is bound to the cookie it was made for: through the context
// of the requests it serves, the middleware tells the store its cookie's
// name and path, and Save seals them into the record as its first member,
// "bind":"<name>;<path>" (len(name)+len(path)+11 bytes of record; about 4/3
// of that in the cookie, after base64). Load refuses a record bound to
// another name or path as it refuses a tampered one: so a cookie made for
// one middleware ("sess", or Path /app) does not open in another that
// shares the key ("sess2", or Path /admin). The field is inside the seal,
// so nobody without the key can remove or change it. A record without it
// opens under any name and path: aiohttp_session's cookies, which Python
// seals without one (and Python ignores the field in Go's), and records
// saved outside the middleware. Load and Save called with a context that
// does not come from the middleware's request bind nothing and check
// nothing. The insecure store has no seal, so it binds nothing either.
type CookieStore struct {
	sealer   sealer
	plain    bool // NewInsecureCookieStore: nothing sealed, nothing to bind
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

// errRejected is Load's answer for a cookie that does not open, or that
// was sealed for another cookie name or path: no session (it wraps
// ErrNotFound), and a sign of tampering the middleware reports.
var errRejected = fmt.Errorf("%w: cookie does not open with any key, or was sealed for another cookie", ErrNotFound)

// sealer turns record bytes into a cookie value and back. seal seals head
// followed by body (head may be empty); open returns what was sealed, in a
// buffer of its own that the caller may change, and reports ok false for
// anything it did not seal itself with one of its keys.
type sealer interface {
	seal(head string, body []byte) (string, error)
	open(token string) (data []byte, ok bool)
}

// Load implements Store: a cookie that does not open, or that was sealed
// for another cookie name or path, is ErrNotFound.
func (c *CookieStore) Load(ctx context.Context, token string) ([]byte, error) {
	if token == "" || len(token) > MaxCookieSize {
		return nil, ErrNotFound
	}
	data, ok := c.sealer.open(token)
	if ok && !c.plain {
		data, ok = unbind(data, bindingOf(ctx))
	}
	if !ok || len(data) == 0 { // no record is empty
		c.rejected.Add(1)
		return nil, errRejected
	}
	return data, nil
}

// Save implements Store by sealing data, bound to the cookie's name and
// path when ctx is a request the middleware serves; the old token is not
// needed.
func (c *CookieStore) Save(ctx context.Context, _ string, data []byte, _ time.Duration) (string, error) {
	if b := bindingOf(ctx); b != nil && !c.plain {
		if len(data) >= 2 && data[0] == '{' && data[1] == '"' {
			// A JSON object with members (every JSONCodec record): the
			// binding becomes its first member, which aiohttp_session
			// ignores.
			return c.sealer.seal(b.member, data[1:])
		}
		return c.sealer.seal(b.frame, data) // another codec's record
	}
	return c.sealer.seal("", data)
}

// The binding of a seal to its cookie. A record sealed by the middleware
// starts with {"bind":"<name>;<path>" (the JSON string escaped as
// appendJSONString escapes; a cookie name has no ';', so the pair reads
// one way only), and then either a comma, when the binding is the first
// member of the record's JSON object, or a '}' followed by the record,
// when the record is not a JSON object (a Codec other than JSONCodec).
// The name and path are written as they are rather than as a hash: they
// are no secret (the browser sends the cookie with its name to its path),
// they are shorter than a hash that would be safe from collisions for
// typical names, and a signed cookie stays readable.
type sealBinding struct {
	member string // `{"bind":"<name>;<path>",`
	frame  string // `{"bind":"<name>;<path>"}`
}

// bindPrefix starts every bound record.
const bindPrefix = `{"bind":`

// newSealBinding returns the binding for a cookie's name and path, built
// once per middleware so that sealing and opening allocate nothing for it.
func newSealBinding(name, path string) *sealBinding {
	b := appendJSONString([]byte(bindPrefix), name+";"+path)
	return &sealBinding{member: string(b) + ",", frame: string(b) + "}"}
}

// bindingOf returns the binding of the middleware serving the request ctx
// belongs to, or nil outside one.
func bindingOf(ctx context.Context) *sealBinding {
	if ctx == nil {
		return nil
	}
	if st, ok := ctx.Value(stateKey{}).(*requestState); ok {
		return st.m.seal
	}
	return nil
}

// unbind checks an opened record's binding against want and returns the
// record without it, as it was given to Save: data's own buffer, the
// binding cut off. A record without a binding is returned as it is. ok is
// false for a record bound to another cookie than want; with want nil,
// any binding is cut off unchecked.
func unbind(data []byte, want *sealBinding) (record []byte, ok bool) {
	if !hasPrefix(data, bindPrefix) {
		return data, true // unbound: aiohttp_session's, or saved outside the middleware
	}
	if want != nil {
		switch {
		case hasPrefix(data, want.member):
			i := len(want.member) - 1
			data[i] = '{' // the comma becomes the record's opening brace
			return data[i:], true
		case hasPrefix(data, want.frame):
			return data[len(want.frame):], true
		}
		return nil, false // sealed for another cookie
	}
	sc := jsonScanner{b: data, i: len(bindPrefix)}
	if _, err := sc.str(); err != nil || sc.i >= len(data) {
		return nil, false
	}
	switch i := sc.i; data[i] {
	case ',':
		data[i] = '{'
		return data[i:], true
	case '}':
		return data[i+1:], true
	}
	return nil, false
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

// sealScratch holds the sealers' working buffers. Every slice handed to a
// hash or a cipher behind an interface escapes, so a stack array there is
// a heap allocation on every call; a pooled buffer is not.
var sealScratch = sync.Pool{New: func() any { return new([]byte) }}

// scratch returns a pooled buffer with room for n bytes, to be given back
// with putScratch once nothing refers to it.
func scratch(n int) *[]byte {
	p := sealScratch.Get().(*[]byte)
	if cap(*p) < n {
		*p = make([]byte, 0, n)
	}
	return p
}

func putScratch(p *[]byte) {
	if cap(*p) <= 4*MaxCookieSize { // a rare huge record is not kept
		sealScratch.Put(p)
	}
}

// hasPrefix is bytes.HasPrefix for a string prefix, without converting it.
func hasPrefix(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix
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
