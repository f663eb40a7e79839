package httpsession

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"

	"github.com/gorilla/securecookie"
)

// NewEncryptedCookieStore returns a cookie store that encrypts (AES-256-CTR)
// and authenticates (HMAC-SHA256) the record with gorilla/securecookie.
// Each key is 32 to 64 bytes of secret from which the AES and HMAC keys are
// derived with HKDF-SHA256 (under different labels, so they always
// differ). Keys must be distinct and not one byte repeated (such as all
// zero); any other key is an error wrapping ErrInvalidKey. The first
// seals, all open.
//
// The record goes through securecookie as raw bytes (never gob), its
// timestamp check is off because the middleware enforces the sealed
// lifetime itself, and its length limit is replaced by MaxCookieSize. Note
// that securecookie base64-encodes twice, so this store's cookies are about
// a third larger than NewNaClCookieStore's.
func NewEncryptedCookieStore(keys ...[]byte) (*CookieStore, error) {
	if err := checkKeys(keys, 32, 64); err != nil {
		return nil, err
	}
	s := &secureCookieSealer{}
	for _, k := range keys {
		hashKey, err := hkdf.Key(sha256.New, k, nil, "httpsession securecookie hmac", 32)
		if err != nil {
			return nil, err
		}
		blockKey, err := hkdf.Key(sha256.New, k, nil, "httpsession securecookie aes", 32)
		if err != nil {
			return nil, err
		}
		sc := securecookie.New(hashKey, blockKey).
			SetSerializer(securecookie.NopEncoder{}).
			MaxAge(0).
			MaxLength(0)
		s.codecs = append(s.codecs, sc)
	}
	return &CookieStore{sealer: s}, nil
}

type secureCookieSealer struct{ codecs []securecookie.Codec }

// secureCookieName is bound into every MAC. A fixed name, not the cookie's,
// keeps the store independent of the middleware's cookie name.
const secureCookieName = "httpsession"

func (s *secureCookieSealer) seal(head string, body []byte) (string, error) {
	// securecookie encrypts the serialized bytes in place, and NopEncoder
	// hands it the caller's slice: give it a copy.
	data := append(append(make([]byte, 0, len(head)+len(body)), head...), body...)
	return securecookie.EncodeMulti(secureCookieName, data, s.codecs[0])
}

// secureCookieEncoding is the outer encoding of securecookie's tokens, made
// strict (see canonicalBase64).
var secureCookieEncoding = base64.URLEncoding.Strict()

func (s *secureCookieSealer) open(token string) ([]byte, bool) {
	// securecookie decodes its outer base64 leniently and offers no way to
	// change that, so the token is checked to be canonical first. The inner
	// base64, the ciphertext, is under securecookie's MAC as text: it has
	// one spelling already.
	if !canonicalBase64(secureCookieEncoding, token) {
		return nil, false
	}
	var data []byte
	err := securecookie.DecodeMulti(secureCookieName, token, &data, s.codecs...)
	return data, err == nil
}
