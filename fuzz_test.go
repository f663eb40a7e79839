package httpsession

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/nacl/secretbox"
)

// fuzzKey seals the committed seed tokens of the cookie-store fuzzers
// (testdata/fuzz/Fuzz*Open).
var fuzzKey = []byte("httpsession fuzz key, 32 bytes!!")

// fuzzPlains are every plaintext ever sealed under fuzzKey or the
// aiohttp key for the seeds. Without the key nobody can seal anything else,
// so whatever a fuzzed token opens to must be one of these.
var fuzzPlains = []string{
	aiohttpPlain,
	`{"created": 1700000000, "session": {"a": 12}}`,
	`{"created":1700000000,"session":{"user":"alice","n":3},"accessed":1700000100}`,
	`{"created":1700000000,"session":{"user":"alice","n":3},"accessed":1700000100.125}`,
	`{}`,
	``,
	`x`,
}

func knownPlain(data []byte) bool {
	for _, p := range fuzzPlains {
		if string(data) == p {
			return true
		}
	}
	return false
}

// addStoreSeeds adds, for a cookie store, tokens sealed now from every
// known plaintext, unbound and bound to a cookie's name and path (which
// Load, outside the middleware, cuts off unchecked), their truncations and
// a few garbage values.
func addStoreSeeds(f *testing.F, s Store) {
	for _, ctx := range []context.Context{context.Background(), boundContext("session", "/")} {
		for _, p := range fuzzPlains {
			tok, err := s.Save(ctx, "", []byte(p), time.Hour)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(tok)
			f.Add(tok[:len(tok)/2])
			f.Add(tok[:len(tok)-1])
			f.Add(tok + "A")
		}
	}
	for _, g := range []string{"", "garbage", ".", "a.b", "====", "AAAA", strings.Repeat("A", 5000), "\x00", "日本"} {
		f.Add(g)
	}
}

// checkOpen is the property every cookie decoder must keep: Load never
// panics, fails only with ErrNotFound, opens only to bytes that were sealed
// with its keys, and what it opens seals and opens again to the same bytes
// (for the insecure store, to the same JSON: it writes ASCII-escaped,
// Python-quoted JSON).
func checkOpen(t *testing.T, s Store, token string, sealedOnly bool) {
	ctx := context.Background()
	data, err := s.Load(ctx, token)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("Load(%.300q) = %v, want ErrNotFound", token, err)
		}
		return
	}
	if sealedOnly && !knownPlain(data) {
		t.Fatalf("Load(%.300q) opened to %.300q, which was never sealed: forgery", token, data)
	}
	// The record inside, whatever it is, never panics the codec.
	var rec Record
	recErr := JSONCodec{}.DecodeRecord(data, &rec)

	// Save gets a copy: TestCSStoreContract covers a Save that changes
	// its input.
	tok2, err := s.Save(ctx, "", bytes.Clone(data), time.Hour)
	if err != nil {
		t.Fatalf("Save(%.300q): %v", data, err)
	}
	if len(tok2) > MaxCookieSize {
		return // the middleware refuses to send it (ErrCookieTooLarge), Load to open it
	}
	data2, err := s.Load(ctx, httpCookieValue(tok2))
	if err != nil {
		t.Fatalf("re-sealed %.300q (token %.300q) does not open: %v", data, tok2, err)
	}
	if sealedOnly {
		if !bytes.Equal(data, data2) {
			t.Fatalf("re-sealed %.300q opens to %.300q", data, data2)
		}
		return
	}
	var rec2 Record
	recErr2 := JSONCodec{}.DecodeRecord(data2, &rec2)
	if (recErr == nil) != (recErr2 == nil) {
		t.Fatalf("record %.300q (%v) re-sealed as %.300q reads as %.300q (%v)", data, recErr, tok2, data2, recErr2)
	}
	if recErr == nil {
		// Values are the same JSON, or both not JSON encoding/json reads.
		sameValue := func(a, b []byte) bool {
			var v any
			if json.Unmarshal(a, &v) != nil {
				return json.Unmarshal(b, &v) != nil
			}
			return sameJSON(a, b)
		}
		if d := recordDiff(&rec, &rec2, sameValue); d != "" {
			t.Fatal(d)
		}
	}
}

func FuzzNaClOpen(f *testing.F) {
	s, err := NewNaClCookieStore(fuzzKey, []byte(aiohttpKey))
	if err != nil {
		f.Fatal(err)
	}
	var k [32]byte
	copy(k[:], aiohttpKey)
	f.Add(aiohttpToken)
	f.Add(base64.StdEncoding.EncodeToString(secretbox.Seal(aiohttpNonce()[:], []byte(fuzzPlains[1]), aiohttpNonce(), &k)))
	f.Add(strings.NewReplacer("+", "-", "/", "_").Replace(aiohttpToken))
	addStoreSeeds(f, s)
	f.Fuzz(func(t *testing.T, token string) {
		checkOpen(t, s, token, true)
	})
}

func FuzzSignedOpen(f *testing.F) {
	s, err := NewSignedCookieStore(fuzzKey, keyA)
	if err != nil {
		f.Fatal(err)
	}
	addStoreSeeds(f, s)
	f.Fuzz(func(t *testing.T, token string) {
		checkOpen(t, s, token, true)
	})
}

func FuzzEncryptedOpen(f *testing.F) {
	s, err := NewEncryptedCookieStore(fuzzKey, keyA)
	if err != nil {
		f.Fatal(err)
	}
	addStoreSeeds(f, s)
	f.Fuzz(func(t *testing.T, token string) {
		checkOpen(t, s, token, true)
	})
}

func FuzzInsecureOpen(f *testing.F) {
	s := NewInsecureCookieStore()
	addStoreSeeds(f, s)
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"created": 1700000000, "session": {"user": "admin"}}`)))
	f.Fuzz(func(t *testing.T, token string) {
		// Anyone can seal for this store: only the round trip is checked.
		checkOpen(t, s, token, false)
	})
}

// FuzzDecodeRecord: DecodeRecord never panics, and what it accepts
// encodes and decodes again to the same record.
func FuzzDecodeRecord(f *testing.F) {
	for _, s := range []string{
		aiohttpPlain,
		`{"created": 1700000000, "session": {"f": 1.0, "g": 1e-05, "h": 1e+16, "lt": "<&>", "u": "\u00e9\u2028\ud83d\ude00", "n": null, "t": true, "l": [1, 2], "nan": NaN}}`,
		`{"created":1700000000,"session":{"user":"alice","n":3},"accessed":1700000100,"lifetime":3600,"persist":false,"flash":["hi"]}`,
		`{"created": 1700000000.5, "session": {}}`,
		`{"created":1700000000,"session":{},"accessed":1700000100.125}`,
		`{"created": 1, "session": {}, "accessed": 1700000100.1239999}`,
		`{"created": 1, "session": {}, "accessed": 1.700000000001e9}`,
		`{"created": 1, "session": {}, "accessed": 0.0005}`,
		`{"created": 1, "session": {}, "accessed": -1.5}`,
		`{"created": 1, "session": {}, "accessed": 1234567890123456.5}`,
		`{"created": 1, "session": {}, "accessed": 9223372036854775807}`,
		`{"created": 1, "session": null}`,
		`{"created": 1, "session": {"q\"k\\ey\u2028": {"a": [1, {"b": null}]}}, "other": [true]}`,
		`{"created": -5, "session": {"dup": 1, "dup": 2}}`,
		`{}`, `[]`, `null`, ``, `{"created": 1`, `{"created": 1, "session": {"a": 1}} x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c JSONCodec
		in := bytes.Clone(data)
		var r1 Record
		if err := c.DecodeRecord(data, &r1); err != nil {
			return
		}
		if !bytes.Equal(in, data) {
			t.Fatalf("DecodeRecord modified its input")
		}
		enc1, err := c.EncodeRecord(&r1)
		if err != nil {
			t.Fatalf("EncodeRecord of a decoded record: %v", err)
		}
		var r2 Record
		if err := c.DecodeRecord(enc1, &r2); err != nil {
			t.Fatalf("DecodeRecord(EncodeRecord(DecodeRecord(%.300q))) = %v; encoded %.300q", data, err, enc1)
		}
		if d := recordDiff(&r1, &r2, sameBytes); d != "" {
			t.Fatal(d)
		}
		enc2, err := c.EncodeRecord(&r2)
		if err != nil {
			t.Fatal(err)
		}
		var r3 Record
		if err := c.DecodeRecord(enc2, &r3); err != nil {
			t.Fatal(err)
		}
		if d := recordDiff(&r2, &r3, sameBytes); d != "" {
			t.Fatal(d)
		}
	})
}

// sameBytes compares JSON values byte for byte, modulo surrounding blanks.
func sameBytes(a, b []byte) bool { return bytes.Equal(bytes.TrimSpace(a), bytes.TrimSpace(b)) }

// FuzzServerToken: ServerStore refuses any token but the one it minted,
// with ErrNotFound, without panicking and without creating records.
func FuzzServerToken(f *testing.F) {
	ctx := context.Background()
	backend := NewMemoryBackend(0, nil)
	s := NewServerStore(backend)
	known, err := s.Save(ctx, "", []byte("record"), time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(known)
	f.Add(known[:len(known)-1])
	f.Add(known + "A")
	f.Add(strings.ToUpper(known))
	for _, g := range []string{"", strings.Repeat("A", 43), strings.Repeat("_", 43), strings.Repeat("A", 42) + "=",
		strings.Repeat("A", 42) + ".", strings.Repeat("A", 44), "0123456789abcdef0123456789abcdef", "../../etc/passwd",
		"httpsession:" + strings.Repeat("a", 64), strings.Repeat("é", 21) + "A", "\x00"} {
		f.Add(g)
	}
	f.Fuzz(func(t *testing.T, token string) {
		data, err := s.Load(ctx, token)
		if token == known {
			if err != nil || string(data) != "record" {
				t.Fatalf("Load(known) = %.300q, %v", data, err)
			}
			return
		}
		if !errors.Is(err, ErrNotFound) || data != nil {
			t.Fatalf("Load(%.300q) = %.300q, %v; want ErrNotFound", token, data, err)
		}
		if token != "" {
			if _, err := s.Save(ctx, token, []byte("hijack"), time.Hour); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Save(%.300q) = %v; want ErrNotFound (update of a missing session)", token, err)
			}
		}
		if err := s.Delete(ctx, token); err != nil {
			t.Fatalf("Delete(%.300q) = %v", token, err)
		}
		if n := backend.Len(); n != 1 {
			t.Fatalf("backend holds %d records after %.300q, want 1", n, token)
		}
	})
}

// FuzzMiddlewareCookie: any Cookie header through the whole middleware
// with a NaCl store gives the handler a session, never a 500 or a panic.
func FuzzMiddlewareCookie(f *testing.F) {
	store, err := NewNaClCookieStore([]byte(aiohttpKey))
	if err != nil {
		f.Fatal(err)
	}
	clock := testClockAt(time.Unix(1700000060, 0))
	mw := newMiddleware(f, store, WithClock(clock.Now))
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Get(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = s.Keys()
		_, _ = GetAs[int](s, "a")
		_ = s.Flashes()
		if err := s.Set("seen", true); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write([]byte("ok"))
	}))
	var k [32]byte
	copy(k[:], aiohttpKey)
	padded := base64.StdEncoding.EncodeToString(secretbox.Seal(aiohttpNonce()[:], []byte(fuzzPlains[1]), aiohttpNonce(), &k))
	for _, hdr := range []string{
		"session=" + aiohttpToken,
		`session="` + padded + `"`,
		"session=" + padded,
		"session=" + aiohttpToken[:50],
		"session=; session=" + aiohttpToken,
		"other=1; session=garbage; session=" + aiohttpToken + "; x=y",
		"session=",
		`session=""`,
		"session",
		"",
		";;;",
		"session=\x00\xff",
		"session=" + strings.Repeat("A", 5000),
	} {
		f.Add(hdr)
	}
	f.Fuzz(func(t *testing.T, hdr string) {
		r := httptest.NewRequest("GET", "http://127.0.0.1/", nil)
		r.Header["Cookie"] = []string{hdr}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK || w.Body.String() != "ok" {
			t.Fatalf("Cookie %.300q: %d %.300q", hdr, w.Code, w.Body.String())
		}
		cookies := w.Result().Cookies()
		if len(cookies) != 1 {
			t.Fatalf("Cookie %.300q: Set-Cookie %.300q", hdr, w.Header().Values("Set-Cookie"))
		}
		if _, err := store.Load(context.Background(), cookies[0].Value); err != nil {
			t.Fatalf("Cookie %.300q: the new cookie does not open: %v", hdr, err)
		}
	})
}
