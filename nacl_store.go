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

func (s *naclSealer) seal(head string, body []byte) (string, error) {
	data := body
	var plain [512]byte
	if head != "" {
		data = append(append(plain[:0], head...), body...)
	}
	var nonce [naclNonceSize]byte
	_, _ = rand.Read(nonce[:]) // crypto/rand.Read never fails on supported platforms
	box := make([]byte, naclNonceSize, naclNonceSize+len(data)+secretbox.Overhead)
	copy(box, nonce[:])
	box = secretbox.Seal(box, data, &nonce, &s.keys[0])
	return naclEncoding.EncodeToString(box), nil
}

func (s *naclSealer) open(token string) ([]byte, bool) {
	// One buffer: the decoded box, then room for the plaintext after it
	// (secretbox refuses to decrypt in place).
	maxRaw := naclEncoding.DecodedLen(len(token))
	buf := make([]byte, maxRaw+maxRaw)
	n, err := naclEncoding.Decode(buf, []byte(token))
	if err != nil || n < naclNonceSize+secretbox.Overhead || !decodedAll(naclEncoding, n, len(token)) {
		return nil, false
	}
	raw, out := buf[:n], buf[maxRaw:maxRaw]
	var nonce [naclNonceSize]byte
	copy(nonce[:], raw)
	for i := range s.keys {
		if data, ok := secretbox.Open(out, raw[naclNonceSize:], &nonce, &s.keys[i]); ok {
			return data, true
		}
	}
	return nil, false
}
