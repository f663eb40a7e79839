package httpsession

import (
	"crypto/rand"
	"encoding/base64"

	"golang.org/x/crypto/nacl/secretbox"
)

// NewNaClCookieStore returns a cookie store that encrypts and authenticates
// the record with NaCl secretbox (XSalsa20-Poly1305), in aiohttp_session's
// NaClCookieStorage format: standard base64, with padding, of the 24-byte
// nonce followed by the box. Given the same 32-byte key, Go and Python
// services read each other's cookies. Keys must be 32 bytes, distinct, and
// not one byte repeated (such as all zero); any other key is an error
// wrapping ErrInvalidKey. The first seals, all open.
func NewNaClCookieStore(keys ...[]byte) (*CookieStore, error) {
	if err := checkKeys(keys, 32, 32); err != nil {
		return nil, err
	}
	s := &naclSealer{keys: make([][32]byte, len(keys))}
	for i, k := range keys {
		copy(s.keys[i][:], k)
	}
	return &CookieStore{sealer: s}, nil
}

type naclSealer struct{ keys [][32]byte }

const naclNonceSize = 24

// naclEncoding is strict: see decodedAll.
var naclEncoding = base64.StdEncoding.Strict()

// seal works in one pooled buffer (see scratch): the plaintext, the box
// after it (secretbox refuses to seal in place), then the token's bytes.
// The token's string is the one allocation.
func (s *naclSealer) seal(head string, body []byte) (string, error) {
	n := len(head) + len(body)
	boxLen := naclNonceSize + secretbox.Overhead + n
	p := scratch(n + boxLen + naclEncoding.EncodedLen(boxLen))
	defer putScratch(p)
	buf := *p
	data := append(append(buf[:0], head...), body...)
	var nonce [naclNonceSize]byte
	_, _ = rand.Read(nonce[:]) // crypto/rand.Read never fails on supported platforms
	box := secretbox.Seal(append(buf[n:n], nonce[:]...), data, &nonce, &s.keys[0])
	end := n + len(box)
	return string(naclEncoding.AppendEncode(buf[end:end], box)), nil
}

// open decodes the box into a pooled buffer and opens it into one of the
// plaintext's size (secretbox refuses to open in place), which is returned.
func (s *naclSealer) open(token string) ([]byte, bool) {
	maxRaw := naclEncoding.DecodedLen(len(token))
	p := scratch(maxRaw)
	defer putScratch(p)
	raw, err := naclEncoding.AppendDecode((*p)[:0], []byte(token))
	n := len(raw)
	if err != nil || n < naclNonceSize+secretbox.Overhead || !decodedAll(naclEncoding, n, len(token)) {
		return nil, false
	}
	var nonce [naclNonceSize]byte
	copy(nonce[:], raw)
	out := make([]byte, 0, n-naclNonceSize-secretbox.Overhead)
	for i := range s.keys {
		if data, ok := secretbox.Open(out, raw[naclNonceSize:], &nonce, &s.keys[i]); ok {
			return data, true
		}
	}
	return nil, false
}
