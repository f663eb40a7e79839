package httpsession

import "testing"

// TestNaClCookieNotMalleable: the box is decoded strictly, so no respelling
// of a NaCl cookie opens (aiohttp_session's own cookies, which Python
// encodes canonically, still do: see the interop tests).
func TestNaClCookieNotMalleable(t *testing.T) {
	s, err := NewNaClCookieStore([]byte("NaCl store test key, 32 bytes!!!"))
	if err != nil {
		t.Fatal(err)
	}
	assertNotMalleable(t, s, []byte("x"), []byte("xy"), []byte("xyz"))
}
