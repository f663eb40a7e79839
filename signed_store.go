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

// signedEncoding is strict: see decodedAll.
var signedEncoding = base64.RawURLEncoding.Strict()

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

func (s *signedSealer) seal(head string, body []byte) (string, error) {
	data := body
	var plain [512]byte
	if head != "" {
		data = append(append(plain[:0], head...), body...)
	}
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
	if n, err := signedEncoding.Decode(want[:], []byte(sig)); err != nil || n != sha256.Size || !decodedAll(signedEncoding, n, len(sig)) {
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
