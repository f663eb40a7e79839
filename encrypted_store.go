package httpsession

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"strconv"
	"sync"
	"time"
)

// NewEncryptedCookieStore returns a cookie store that encrypts (AES-256-CTR)
// and authenticates (HMAC-SHA256) the record in gorilla/securecookie's
// format. Each key is 32 to 64 bytes of secret from which the AES and HMAC
// keys are derived with HKDF-SHA256 (under different labels, so they always
// differ). Keys must be distinct and not one byte repeated (such as all
// zero); any other key is an error wrapping ErrInvalidKey. The first
// seals, all open.
//
// The cookie is exactly what securecookie.New(hashKey, blockKey) with
// SetSerializer(securecookie.NopEncoder{}), MaxAge(0) and MaxLength(0)
// writes and reads (the record as raw bytes, never gob; no timestamp check,
// because the middleware enforces the sealed lifetime itself; the length
// limit is MaxCookieSize), so cookies move freely between this store and
// securecookie under the derived keys. The format is implemented here
// rather than by calling securecookie, which on every cookie builds its
// HMAC anew, formats with fmt and copies the value five times: that was
// most of this store's cost per request. Note that the format
// base64-encodes twice, so this store's cookies are about a third larger
// than NewNaClCookieStore's.
func NewEncryptedCookieStore(keys ...[]byte) (*CookieStore, error) {
	if err := checkKeys(keys, 32, 64); err != nil {
		return nil, err
	}
	s := &secureCookieSealer{keys: make([]secureCookieKey, len(keys))}
	for i, k := range keys {
		hashKey, err := hkdf.Key(sha256.New, k, nil, "httpsession securecookie hmac", 32)
		if err != nil {
			return nil, err
		}
		blockKey, err := hkdf.Key(sha256.New, k, nil, "httpsession securecookie aes", 32)
		if err != nil {
			return nil, err
		}
		block, err := aes.NewCipher(blockKey)
		if err != nil {
			return nil, err
		}
		// hmac.New costs several allocations and two hash blocks; keyed
		// states are reused.
		s.keys[i] = secureCookieKey{block: block, macs: &sync.Pool{New: func() any { return hmac.New(sha256.New, hashKey) }}}
	}
	return &CookieStore{sealer: s}, nil
}

type secureCookieSealer struct{ keys []secureCookieKey }

// secureCookieKey is one key's AES cipher and HMAC states.
type secureCookieKey struct {
	block cipher.Block
	macs  *sync.Pool // of hash.Hash: HMAC-SHA256 under the derived hash key
}

// secureCookieName is bound into every MAC. A fixed name, not the cookie's,
// keeps the store independent of the middleware's cookie name.
const secureCookieName = "httpsession"

// secureCookieEncoding is securecookie's encoding, inner and outer, made
// strict for the outer one (see canonicalBase64). The inner base64, the
// ciphertext, is under the MAC as text: it has one spelling already, and
// it is decoded as securecookie decodes it, leniently.
var secureCookieEncoding = base64.URLEncoding.Strict()

// secureCookieMACPrefix starts every MAC'd message: a variable, because a
// []byte conversion of a constant handed to an interface's method is a new
// allocation on every call.
var secureCookieMACPrefix = []byte(secureCookieName + "|")

// mac appends to dst the HMAC of secureCookieName "|" payload under the key.
func (k *secureCookieKey) mac(dst, payload []byte) []byte {
	h := k.macs.Get().(hash.Hash)
	h.Reset()
	h.Write(secureCookieMACPrefix)
	h.Write(payload)
	dst = h.Sum(dst)
	k.macs.Put(h)
	return dst
}

// seal writes securecookie's
//
//	base64url(timestamp "|" base64url(iv ciphertext) "|" mac)
//
// where mac is the HMAC of name "|" timestamp "|" base64url(iv ciphertext),
// in one pooled buffer (see scratch): box, then the message, then the token's bytes. The
// token's string and the CTR stream are the allocations.
func (s *secureCookieSealer) seal(head string, body []byte) (string, error) {
	k := &s.keys[0]
	boxLen := aes.BlockSize + len(head) + len(body)
	msgLen := 20 + 1 + base64.URLEncoding.EncodedLen(boxLen) + 1 + sha256.Size
	p := scratch(boxLen + msgLen + secureCookieEncoding.EncodedLen(msgLen))
	defer putScratch(p)
	buf := *p
	// iv, then the ciphertext, encrypted from head and body in place.
	box := buf[:aes.BlockSize]
	if _, err := rand.Read(box); err != nil {
		return "", err
	}
	box = append(append(box, head...), body...)
	cipher.NewCTR(k.block, box[:aes.BlockSize]).XORKeyStream(box[aes.BlockSize:], box[aes.BlockSize:])
	// timestamp "|" base64url(box) "|" mac
	msg := strconv.AppendInt(buf[boxLen:boxLen], time.Now().UTC().Unix(), 10)
	msg = append(msg, '|')
	msg = base64.URLEncoding.AppendEncode(msg, box)
	msg = k.mac(append(msg, '|'), msg)
	end := boxLen + len(msg)
	return string(secureCookieEncoding.AppendEncode(buf[end:end], msg)), nil
}

// open reads what seal writes, accepting exactly the tokens
// securecookie.DecodeMulti accepts with this store's keys and settings and
// that are canonical base64. The record comes back in a buffer of its own.
func (s *secureCookieSealer) open(token string) ([]byte, bool) {
	// securecookie decodes its outer base64 leniently, so the token is
	// checked to be canonical first; what passes decodes the same strictly.
	if !canonicalBase64(secureCookieEncoding, token) {
		return nil, false
	}
	// The pooled buffer: the message, the computed MAC, the box.
	n := secureCookieEncoding.DecodedLen(len(token))
	p := scratch(n + sha256.Size + n)
	defer putScratch(p)
	buf := *p
	msg, err := secureCookieEncoding.AppendDecode(buf[:0:n], []byte(token))
	if err != nil {
		return nil, false
	}
	// "timestamp|value|mac": the mac is whatever follows the second '|'.
	i := indexByte(msg, '|', 0)
	j := indexByte(msg, '|', i+1)
	if i < 0 || j < 0 {
		return nil, false
	}
	signed, sum := msg[:j], msg[j+1:]
	for ki := range s.keys {
		k := &s.keys[ki]
		// As securecookie.DecodeMulti: a key whose MAC, timestamp or
		// ciphertext does not check out is skipped for the next.
		if !hmac.Equal(k.mac(buf[n:n:n+sha256.Size], signed), sum) || !validTimestamp(msg[:i]) {
			continue
		}
		at := n + sha256.Size
		box, err := base64.URLEncoding.AppendDecode(buf[at:at], msg[i+1:j])
		if err != nil || len(box) <= aes.BlockSize {
			continue
		}
		data := make([]byte, len(box)-aes.BlockSize)
		cipher.NewCTR(k.block, box[:aes.BlockSize]).XORKeyStream(data, box[aes.BlockSize:])
		return data, true
	}
	return nil, false
}

// indexByte is bytes.IndexByte of b[from:], as an index into b; -1 if
// absent or from is negative.
func indexByte(b []byte, c byte, from int) int {
	if from < 0 || from > len(b) {
		return -1
	}
	for i := from; i < len(b); i++ {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// validTimestamp reports whether strconv.ParseInt(string(b), 10, 64)
// succeeds, as securecookie requires of the timestamp (whose value this
// store ignores), without the string ParseInt's error would keep.
func validTimestamp(b []byte) bool {
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 {
		return false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
		if n > (1<<63)/10 { // n*10 would pass 1<<63
			return false
		}
		n = n*10 + uint64(c-'0')
		if n > 1<<63 {
			return false
		}
	}
	return n < 1<<63 || neg
}
