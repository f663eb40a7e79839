package httpsession

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// NewFernetCookieStore returns a cookie store in the format of
// aiohttp_session's EncryptedCookieStorage: a Fernet token (AES-128-CBC and
// HMAC-SHA256, https://github.com/fernet/spec) in URL-safe base64 with
// padding. Each key is the 32 raw bytes Python gets from
// base64.urlsafe_b64decode(fernet_key): the first 16 sign, the last 16
// encrypt. Keys must be distinct, and each key's two halves must differ
// and neither be one byte repeated (such as all zero), since a guessable
// signing half lets anyone forge a cookie; any other key is an error
// wrapping ErrInvalidKey. Fernet.generate_key() makes a good key. The first
// key seals, all open (like Python's MultiFernet).
//
// Fernet is implemented here, in a few lines of the standard library, rather
// than imported: the only Go package for it on the module proxy does not let
// a test fix the IV and timestamp, which reproducing the spec's vectors byte
// for byte requires. Prefer NewNaClCookieStore unless you share sessions
// with an aiohttp service that uses EncryptedCookieStorage.
func NewFernetCookieStore(keys ...[]byte) (*CookieStore, error) {
	if err := checkKeys(keys, 32, 32); err != nil {
		return nil, err
	}
	s := &fernetSealer{now: time.Now, rand: rand.Reader}
	for i, k := range keys {
		// The halves are two keys: a guessable signing half lets anyone
		// forge a token, and equal halves mean the key was not made as
		// one (Fernet.generate_key makes 32 random bytes).
		sign, enc := k[:16], k[16:]
		if uniform(sign) || uniform(enc) || bytes.Equal(sign, enc) {
			return nil, fmt.Errorf("%w: key %d: its signing and encryption halves must be distinct and not one byte repeated", ErrInvalidKey, i)
		}
		block, err := aes.NewCipher(enc)
		if err != nil {
			return nil, err
		}
		s.keys = append(s.keys, fernetKey{sign: bytes.Clone(sign), block: block})
	}
	return &CookieStore{sealer: s}, nil
}

type fernetSealer struct {
	keys []fernetKey
	now  func() time.Time // the token's timestamp; replaced in tests
	rand io.Reader        // IVs; replaced in tests
}

type fernetKey struct {
	sign  []byte
	block cipher.Block
}

const (
	fernetVersion  = 0x80
	fernetHeader   = 1 + 8 + aes.BlockSize // version, timestamp, IV
	fernetMACSize  = sha256.Size
	fernetMinToken = fernetHeader + aes.BlockSize + fernetMACSize
)

// fernetEncoding is strict: see decodedAll.
var fernetEncoding = base64.URLEncoding.Strict()

func (s *fernetSealer) seal(head string, data []byte) (string, error) {
	k := s.keys[0]
	pad := aes.BlockSize - (len(head)+len(data))%aes.BlockSize
	tok := make([]byte, fernetHeader, fernetHeader+len(head)+len(data)+pad+fernetMACSize)
	tok[0] = fernetVersion
	binary.BigEndian.PutUint64(tok[1:9], uint64(s.now().Unix()))
	if _, err := io.ReadFull(s.rand, tok[9:fernetHeader]); err != nil {
		return "", err
	}
	tok = append(tok, head...)
	tok = append(tok, data...)
	for range pad {
		tok = append(tok, byte(pad))
	}
	body := tok[fernetHeader:]
	cipher.NewCBCEncrypter(k.block, tok[9:fernetHeader]).CryptBlocks(body, body)
	tok = append(tok, fernetMAC(k.sign, tok)...)
	return fernetEncoding.EncodeToString(tok), nil
}

func fernetMAC(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

func (s *fernetSealer) open(token string) ([]byte, bool) {
	tok, err := fernetEncoding.DecodeString(token)
	if err != nil || !decodedAll(fernetEncoding, len(tok), len(token)) ||
		len(tok) < fernetMinToken || tok[0] != fernetVersion ||
		(len(tok)-fernetHeader-fernetMACSize)%aes.BlockSize != 0 {
		return nil, false
	}
	signed, mac := tok[:len(tok)-fernetMACSize], tok[len(tok)-fernetMACSize:]
	for _, k := range s.keys {
		if !hmac.Equal(fernetMAC(k.sign, signed), mac) {
			continue
		}
		body := append([]byte(nil), signed[fernetHeader:]...)
		cipher.NewCBCDecrypter(k.block, signed[9:fernetHeader]).CryptBlocks(body, body)
		return pkcs7Unpad(body)
	}
	return nil, false
}

// pkcs7Unpad removes and checks the padding in constant time; the MAC was
// already verified, so this only guards against a key holder's bad token.
func pkcs7Unpad(b []byte) ([]byte, bool) {
	n := int(b[len(b)-1])
	if n == 0 || n > aes.BlockSize {
		return nil, false
	}
	good := 1
	for _, c := range b[len(b)-n:] {
		good &= subtle.ConstantTimeByteEq(c, byte(n))
	}
	return b[:len(b)-n], good == 1
}
