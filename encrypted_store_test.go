package httpsession

import "testing"

// TestEncryptedCookieNotMalleable: securecookie's own decoding of the
// outer base64 is lenient; the store checks that the token is canonical
// before handing it over, so no respelling opens. The inner base64 (the
// ciphertext) is covered by securecookie's MAC as text, so it cannot be
// respelled at all.
func TestEncryptedCookieNotMalleable(t *testing.T) {
	s, err := NewEncryptedCookieStore([]byte("encrypted store test key, 32 b!!"))
	if err != nil {
		t.Fatal(err)
	}
	assertNotMalleable(t, s, []byte("x"), []byte("xy"), []byte("xyz"))
}
