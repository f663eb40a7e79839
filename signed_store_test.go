package httpsession

import "testing"

// TestSignedCookieNotMalleable: the signature's last character is decoded
// strictly, so no respelling of a signed cookie opens.
func TestSignedCookieNotMalleable(t *testing.T) {
	s, err := NewSignedCookieStore([]byte("signed store test key, 32 bytes!"))
	if err != nil {
		t.Fatal(err)
	}
	assertNotMalleable(t, s, []byte("x"), []byte("xy"), []byte("xyz"))
}
