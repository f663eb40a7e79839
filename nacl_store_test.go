package httpsession

// Tests of nacl_store.go: the aiohttp_session NaCl wire format.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/nacl/secretbox"
)

// TestCSNaClAiohttpWire: the §6.4 token opens to the exact plaintext,
// sealing with the same nonce reproduces it byte for byte, and the session
// inside reads through the middleware.
func TestCSNaClAiohttpWire(t *testing.T) {
	ctx := context.Background()
	key := []byte(aiohttpKey)
	if len(key) != 32 {
		t.Fatalf("key has %d bytes", len(key))
	}
	store, err := NewNaClCookieStore(key)
	if err != nil {
		t.Fatal(err)
	}
	data, err := store.Load(ctx, aiohttpToken)
	if err != nil || string(data) != aiohttpPlain {
		t.Fatalf("Load(aiohttp token) = %q, %v; want %q", data, err, aiohttpPlain)
	}

	// The format: standard base64 with padding of nonce || secretbox.
	var k32 [32]byte
	copy(k32[:], key)
	box := secretbox.Seal(aiohttpNonce()[:], []byte(aiohttpPlain), aiohttpNonce(), &k32)
	if got := base64.StdEncoding.EncodeToString(box); got != aiohttpToken {
		t.Fatalf("secretbox with the fixed nonce = %s, want %s", got, aiohttpToken)
	}
	// The sealer produces that format: its nonce prefix opens the box.
	tok, err := store.Save(ctx, "", []byte(aiohttpPlain), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(tok)
	if err != nil || len(raw) != 24+secretbox.Overhead+len(aiohttpPlain) {
		t.Fatalf("sealed token %q: %d raw bytes, %v", tok, len(raw), err)
	}
	var nonce [24]byte
	copy(nonce[:], raw)
	if plain, ok := secretbox.Open(nil, raw[24:], &nonce, &k32); !ok || string(plain) != aiohttpPlain {
		t.Fatalf("sealer output does not open with plain secretbox: %q %v", plain, ok)
	}
	if tok == aiohttpToken {
		t.Fatal("sealer reused the example's nonce")
	}

	// The padded variant (45 bytes ⇒ 85 raw ⇒ "=="), also quoted as Python
	// emits it.
	padded := `{"created": 1700000000, "session": {"a": 12}}`
	ptok := base64.StdEncoding.EncodeToString(secretbox.Seal(aiohttpNonce()[:], []byte(padded), aiohttpNonce(), &k32))
	if !strings.HasSuffix(ptok, "==") {
		t.Fatalf("padded token %q", ptok)
	}
	if data, err := store.Load(ctx, ptok); err != nil || string(data) != padded {
		t.Fatalf("Load(padded) = %q, %v", data, err)
	}
	if _, err := store.Load(ctx, strings.TrimRight(ptok, "=")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load(unpadded) = %v; Python rejects it too", err)
	}
	if _, err := store.Load(ctx, strings.NewReplacer("+", "-", "/", "_").Replace(aiohttpToken)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load(urlsafe alphabet) = %v, want ErrNotFound", err)
	}

	// Through the middleware, a minute after aiohttp wrote it.
	clock := testClockAt(time.Unix(1700000000, 0))
	clock.Set(time.Unix(1700000060, 0))
	var gotA int
	var gotCreated time.Time
	h := newMiddleware(t, store, WithClock(clock.Now))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Get(r)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		gotA, _ = GetAs[int](s, "a")
		gotCreated = s.Created()
		io.WriteString(w, dumpSession(s))
	}))
	for _, hdr := range []string{"session=" + aiohttpToken, `session="` + ptok + `"`} {
		code, body := probe(h, hdr)
		if code != 200 || !strings.HasPrefix(body, "new=false a=1") {
			t.Errorf("%s: %d %q", hdr, code, body)
		}
		if !gotCreated.Equal(time.Unix(1700000000, 0)) {
			t.Errorf("Created = %v", gotCreated)
		}
	}
	if gotA != 12 {
		t.Errorf("a = %d, want 12 from the quoted padded cookie", gotA)
	}

	// A cookie written back by Go is still aiohttp's envelope: Python's
	// json.loads finds "created" and "session" and ignores the rest.
	tok = mint(t, newMiddleware(t, store, WithClock(clock.Now))(appRoutes()), "/set?k=b&v=x", aiohttpToken)
	data, err = store.Load(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Created int64          `json:"created"`
		Session map[string]any `json:"session"`
	}
	if err := json.Unmarshal(data, &env); err != nil || env.Created != 1700000000 ||
		env.Session["a"] != float64(1) || env.Session["b"] != "x" {
		t.Errorf("Go-written record %s: %+v %v", data, env, err)
	}
}

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
