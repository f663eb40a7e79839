package httpsession

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"strings"
	"sync"
)

// NewSignedCookieStore returns a cookie store whose cookie the client can
// read but not forge: base64url(record) "." base64url(HMAC-SHA256), the
// Flask and asgi-sessions model. Keys must be 32 to 64 bytes, distinct,
// and not one byte repeated (such as all zero); any other key is an error
// wrapping ErrInvalidKey. The first signs, all verify, so keys rotate by
// prepending a new one.
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

// signedContextBytes is signedContext for Write: a []byte conversion of a
// constant handed to an interface's method is a new allocation every call.
var signedContextBytes = []byte(signedContext)

// signedEncoding is strict: see decodedAll.
var signedEncoding = base64.RawURLEncoding.Strict()

// mac appends the MAC of payload under key i to dst.
func (s *signedSealer) mac(dst []byte, i int, payload []byte) []byte {
	h := s.macs[i].Get().(hash.Hash)
	h.Reset()
	h.Write(signedContextBytes)
	h.Write(payload)
	dst = h.Sum(dst)
	s.macs[i].Put(h)
	return dst
}

// seal works in one pooled buffer (see scratch): the record, the token's
// bytes, the MAC. The token's string is the one allocation.
func (s *signedSealer) seal(head string, body []byte) (string, error) {
	n := len(head) + len(body)
	tokLen := signedEncoding.EncodedLen(n) + 1 + signedEncoding.EncodedLen(sha256.Size)
	p := scratch(n + tokLen + sha256.Size)
	defer putScratch(p)
	buf := *p
	data := append(append(buf[:0], head...), body...)
	tok := signedEncoding.AppendEncode(buf[n:n:n+tokLen], data)
	sum := s.mac(buf[n+tokLen:n+tokLen], 0, tok)
	tok = signedEncoding.AppendEncode(append(tok, '.'), sum)
	return string(tok), nil
}

func (s *signedSealer) open(token string) ([]byte, bool) {
	payload, sig, ok := strings.Cut(token, ".")
	if !ok || len(sig) != signedEncoding.EncodedLen(sha256.Size) {
		return nil, false
	}
	var want [sha256.Size]byte
	if n, err := signedEncoding.Decode(want[:], []byte(sig)); err != nil || n != sha256.Size || !decodedAll(signedEncoding, n, len(sig)) {
		return nil, false
	}
	// The payload's bytes and the MAC in a pooled buffer (see scratch).
	p := scratch(len(payload) + sha256.Size)
	defer putScratch(p)
	buf := append((*p)[:0], payload...)
	for i := range s.macs {
		if hmac.Equal(s.mac(buf[len(buf):], i, buf), want[:]) {
			data, err := signedEncoding.DecodeString(payload)
			return data, err == nil
		}
	}
	return nil, false
}
