package httpsession

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/nacl/secretbox"
)

// TestCSEndToEnd runs set → read → modify → logout → fresh over a real
// server and a cookie jar, for every store.
func TestCSEndToEnd(t *testing.T) {
	for _, k := range storeKinds() {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			c := startApp(t, mustStore(t, k), appRoutes()).visitor(k.rawCookies)

			// An anonymous visitor who only reads gets no cookie.
			r := c.expect(t, "/get", 200, freshSession)
			if len(r.setCookies()) != 0 {
				t.Fatalf("anonymous read set a cookie: %q", r.setCookies())
			}
			if got := r.header.Get("Vary"); got != "Cookie" {
				t.Errorf("Vary = %q, want Cookie", got)
			}

			// Set.
			r = c.expect(t, "/set?k=user&v=alice", 200, "new=true user=alice")
			if len(r.setCookies()) != 1 {
				t.Fatalf("Set-Cookie = %q, want one", r.setCookies())
			}
			for _, attr := range []string{"session=", "; Path=/", "; HttpOnly", "; Secure", "; SameSite=Lax", "; Max-Age=86400", "; Expires="} {
				if !strings.Contains(r.setCookies()[0], attr) {
					t.Errorf("Set-Cookie %q lacks %q", r.setCookies()[0], attr)
				}
			}
			if n := len(r.setCookies()[0]); n > 4096+200 {
				t.Errorf("Set-Cookie is %d bytes", n)
			}

			// Read back on the next request; a read sends no cookie.
			r = c.expect(t, "/get", 200, "new=false user=alice")
			if len(r.setCookies()) != 0 {
				t.Errorf("read-only request set a cookie: %q", r.setCookies())
			}

			// Modify.
			c.expect(t, "/incr", 200, "new=false n=1 user=alice")
			c.expect(t, "/incr", 200, "new=false n=2 user=alice")
			c.expect(t, "/set?k=user&v=bob", 200, "new=false n=2 user=bob")
			c.expect(t, "/get", 200, "new=false n=2 user=bob")
			before := c.cookie()
			if before == "" {
				t.Fatal("no session cookie in the jar")
			}

			// Logout: the cookie is deleted with the same attributes.
			r = c.expect(t, "/logout", 200, "bye")
			if len(r.setCookies()) != 1 || !strings.Contains(r.setCookies()[0], "Max-Age=0") ||
				!strings.Contains(r.setCookies()[0], "; Path=/") {
				t.Fatalf("logout Set-Cookie = %q, want a deletion", r.setCookies())
			}
			if got := c.cookie(); got != "" {
				t.Fatalf("jar still holds %q after logout", got)
			}

			// The next request is a fresh session.
			c.expect(t, "/get", 200, freshSession)
			c.expect(t, "/incr", 200, "new=true n=1")

			// Replaying the cookie from before the logout: a server-side
			// store has deleted the record; a cookie store cannot revoke
			// (documented on CookieStore), so the old cookie still opens.
			r = c.app.do(t, nil, "/get", &http.Cookie{Name: DefaultCookieName, Value: before})
			want := "new=false n=2 user=bob"
			if !k.cookie {
				want = freshSession
			}
			if r.status != 200 || r.body != want {
				t.Fatalf("replayed pre-logout cookie: %d %q, want 200 %q", r.status, r.body, want)
			}
		})
	}
}

// TestCSStoreContract: for every store, Load(Save(data)) gives data back,
// Save leaves the caller's slice alone, and Load's result is the caller's
// to keep.
func TestCSStoreContract(t *testing.T) {
	ctx := context.Background()
	records := []string{
		aiohttpPlain,
		`{"created":1700000000,"session":{"user":"alice","q":"a\"b;c,d\\e"},"accessed":1700000100,"flash":["x"]}`,
		`{"created":1700000000,"session":{"n":1},"accessed":1700000100.025}`,
		`{"created":1700000000,"session":{"u":"é日本😀"}}`,
	}
	for _, k := range storeKinds() {
		t.Run(k.name, func(t *testing.T) {
			store := mustStore(t, k)
			for _, rec := range records {
				data := []byte(rec)
				tok, err := store.Save(ctx, "", data, time.Hour)
				if err != nil {
					t.Fatalf("Save: %v", err)
				}
				if string(data) != rec {
					t.Errorf("Save modified the caller's data: %q became %q", rec, data)
				}
				got, err := store.Load(ctx, tok)
				if err != nil {
					t.Errorf("Load(Save(%s)) = %v (token %q)", rec, err, tok)
					continue
				}
				if string(got) != rec && !(k.name == "insecure" && sameJSON(got, []byte(rec))) {
					t.Errorf("Load(Save(%s)) = %q", rec, got)
				}
				for i := range got {
					got[i] = 'X'
				}
				if again, err := store.Load(ctx, tok); err != nil || !sameJSON(again, []byte(rec)) {
					t.Errorf("second Load after changing the first result: %q, %v", again, err)
				}
			}
		})
	}
}

// tamperVariant is one tampered cookie value.
type tamperVariant struct {
	desc  string
	value string
	// strict: the store must reject it. Otherwise (a change of the text
	// only) it may also open to exactly the original bytes, because Go's
	// base64 decoders ignore newlines and non-zero trailing bits.
	strict bool
}

func tamperVariants(k storeKind, tok string) []tamperVariant {
	var vs []tamperVariant
	add := func(strict bool, desc, v string) {
		if v != tok {
			vs = append(vs, tamperVariant{desc, v, strict})
		}
	}
	// Bit flips of the text.
	for i := range len(tok) {
		for bit := range 8 {
			b := []byte(tok)
			b[i] ^= 1 << bit
			add(false, fmt.Sprintf("text byte %d bit %d", i, bit), string(b))
		}
	}
	// Truncation at every length.
	for n := range len(tok) {
		add(true, fmt.Sprintf("text truncated to %d", n), tok[:n])
	}
	// Appended text.
	for _, s := range []string{"A", "AA", "AAA", "AAAA", "=", "==", ".", "x", "-", "_", "+", "/", "\x00", " ", "\n", "\xff", tok} {
		add(!strings.ContainsAny(s, " \n="), fmt.Sprintf("text + %q", s), tok+s)
	}
	// Bit flips, truncation and appends below the text encoding.
	parts, ok := k.decode(tok)
	if !ok {
		panic("tamperVariants: cannot decode a real cookie")
	}
	clone := func() [][]byte {
		c := make([][]byte, len(parts))
		for i, p := range parts {
			c[i] = bytes.Clone(p)
		}
		return c
	}
	for pi, p := range parts {
		for i := range len(p) {
			for bit := range 8 {
				c := clone()
				c[pi][i] ^= 1 << bit
				add(true, fmt.Sprintf("part %d byte %d bit %d", pi, i, bit), k.encode(c))
			}
		}
		for n := range len(p) {
			c := clone()
			c[pi] = c[pi][:n]
			add(true, fmt.Sprintf("part %d truncated to %d", pi, n), k.encode(c))
		}
		for _, extra := range [][]byte{{0}, {0xff}, make([]byte, 16), make([]byte, 24), []byte("|x")} {
			c := clone()
			c[pi] = append(c[pi], extra...)
			add(true, fmt.Sprintf("part %d + %x", pi, extra), k.encode(c))
		}
	}
	// Empty and garbage.
	for _, g := range []string{"", " ", "\"\"", "garbage", "%00%00", "....", ".", "a.b", "===", "AAAA",
		"\x00\x01\x02", "日本語", strings.Repeat("A", 112), strings.Repeat("A", 5000),
		strings.Repeat("/", 200), "{\"created\": 1700000000, \"session\": {}}"} {
		add(true, fmt.Sprintf("garbage %.20q", g), g)
	}
	return vs
}

// TestCSTamperSweep feeds every cookie store tampered, truncated, extended,
// empty, garbage, foreign-key and expired cookies: each must read as a
// fresh empty session with status 200. The insecure store is swept too, for
// status 200 only: it cannot detect tampering.
func TestCSTamperSweep(t *testing.T) {
	ctx := context.Background()
	for _, k := range cookieKinds() {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			store := mustStore(t, k, keyA)
			clock := testClockAt(time.Unix(1700000000, 0))
			h := newMiddleware(t, store, WithClock(clock.Now), WithLifetime(time.Hour))(appRoutes())
			tok := mint(t, h, "/set?k=user&v=alice&k=role&v=admin", "")
			const orig = "new=false role=admin user=alice"
			if code, body := probe(h, DefaultCookieName+"="+tok); code != 200 || body != orig {
				t.Fatalf("genuine cookie: %d %q", code, body)
			}
			origData, err := store.Load(ctx, tok)
			if err != nil {
				t.Fatalf("Load(genuine) = %v", err)
			}

			variants := tamperVariants(k, tok)
			sameData, forged := 0, 0
			for _, v := range variants {
				data, err := store.Load(ctx, v.value)
				opened := err == nil
				if err != nil && !errors.Is(err, ErrNotFound) {
					t.Errorf("%s: Load error %v, want ErrNotFound", v.desc, err)
				}
				if opened && !k.forgeable {
					if !bytes.Equal(data, origData) {
						t.Errorf("%s: FORGERY: opened to %q", v.desc, data)
					} else if v.strict {
						t.Errorf("%s: accepted %q", v.desc, v.value)
					} else {
						sameData++
						t.Logf("%s: non-canonical encoding %q opens to the genuine bytes", v.desc, v.value)
					}
				}
				// What reaches the store through HTTP: surrounding blanks
				// and quotes are not part of a cookie's value.
				httpOpened := opened
				if hv := httpCookieValue(v.value); hv != v.value {
					d, err := store.Load(ctx, hv)
					httpOpened = err == nil && bytes.Equal(d, origData)
				}
				code, body := probe(h, DefaultCookieName+"="+v.value)
				if code != http.StatusOK {
					t.Errorf("%s: status %d %q, want 200", v.desc, code, body)
					continue
				}
				switch {
				case k.forgeable:
					if body != freshSession && body != orig {
						forged++
					}
				case body == freshSession:
				case body == orig && httpOpened:
				default:
					t.Errorf("%s: session %q, want a fresh one", v.desc, body)
				}
			}
			t.Logf("%d variants; %d non-canonical encodings opened to the genuine bytes; %d accepted with other data (insecure store)",
				len(variants), sameData, forged)

			// Sealed with another key.
			if k.keyed {
				other := newMiddleware(t, mustStore(t, k, keyB), WithClock(clock.Now))(appRoutes())
				foreign := mint(t, other, "/set?k=user&v=mallory", "")
				if _, err := store.Load(ctx, foreign); !errors.Is(err, ErrNotFound) {
					t.Errorf("Load(other key) = %v, want ErrNotFound", err)
				}
				if code, body := probe(h, DefaultCookieName+"="+foreign); code != 200 || body != freshSession {
					t.Errorf("cookie sealed with another key: %d %q, want 200 %q", code, body, freshSession)
				}
			}

			// Expired: the lifetime is enforced from the sealed record,
			// whatever the cookie's Max-Age says.
			clock.Set(time.Unix(1700000000, 0).Add(time.Hour - time.Second))
			if code, body := probe(h, DefaultCookieName+"="+tok); code != 200 || body != orig {
				t.Errorf("1s before expiry: %d %q, want 200 %q", code, body, orig)
			}
			clock.Set(time.Unix(1700000000, 0).Add(time.Hour))
			if code, body := probe(h, DefaultCookieName+"="+tok); code != 200 || body != freshSession {
				t.Errorf("expired cookie: %d %q, want 200 %q", code, body, freshSession)
			}

			// Several bad cookies of the same name, then the good one.
			clock.Set(time.Unix(1700000000, 0))
			hdr := DefaultCookieName + "=garbage; " + DefaultCookieName + "=" + tok[:len(tok)/2] + "; " + DefaultCookieName + "=" + tok
			if code, body := probe(h, hdr); code != 200 || body != orig {
				t.Errorf("bad cookies before the good one: %d %q, want 200 %q", code, body, orig)
			}
		})
	}
}

// TestCSInsecureStoreForgery pins the documented insecurity of
// NewInsecureCookieStore: anyone can write a cookie it accepts, here in
// aiohttp_session's SimpleCookieStorage quoting (aiohttp_session-wire.md
// §6.2), and anyone can read it.
func TestCSInsecureStoreForgery(t *testing.T) {
	clock := testClockAt(time.Unix(1700000000, 0))
	h := newMiddleware(t, NewInsecureCookieStore(), WithClock(clock.Now))(appRoutes())
	forged := `"{\"created\": 1700000000\054 \"session\": {\"user\": \"admin\"}}"`
	code, body := probe(h, DefaultCookieName+"="+forged)
	if code != 200 || body != "new=false user=admin" {
		t.Fatalf("forged cookie: %d %q; the insecure store is documented to accept it", code, body)
	}
	// Unquoted raw JSON is accepted as well.
	code, body = probe(h, DefaultCookieName+`={"created":1700000000,"session":{"user":"root"}}`)
	if code != 200 || body != "new=false user=root" {
		t.Fatalf("forged raw JSON cookie: %d %q", code, body)
	}
	tok := mint(t, h, "/set?k=secret&v=hunter2", "")
	if !strings.Contains(tok, "hunter2") {
		t.Fatalf("insecure cookie %q does not carry the plain record", tok)
	}
}

// TestCSSignedStoreReadable pins that a signed cookie hides nothing from
// the client, while it cannot be changed.
func TestCSSignedStoreReadable(t *testing.T) {
	h := newMiddleware(t, mustStore(t, kindNamed("signed")))(appRoutes())
	tok := mint(t, h, "/set?k=secret&v=hunter2", "")
	payload, _, _ := strings.Cut(tok, ".")
	plain, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil || !bytes.Contains(plain, []byte("hunter2")) {
		t.Fatalf("signed cookie %q does not carry the readable record (%v)", tok, err)
	}
	// Nor do the encrypted stores show it.
	for _, k := range []storeKind{kindNamed("encrypted"), kindNamed("nacl")} {
		h := newMiddleware(t, mustStore(t, k))(appRoutes())
		tok := mint(t, h, "/set?k=secret&v=hunter2", "")
		parts, _ := k.decode(tok)
		for _, p := range parts {
			if bytes.Contains(p, []byte("hunter2")) || strings.Contains(tok, "hunter2") {
				t.Errorf("%s cookie shows the plaintext", k.name)
			}
		}
	}
}

// TestCSKeyRotation: old cookies open after (newKey, oldKey), new cookies
// are sealed with newKey, and dropping oldKey ends the old sessions.
func TestCSKeyRotation(t *testing.T) {
	ctx := context.Background()
	oldKey, newKey := keyA, keyB
	for _, k := range keyedKinds() {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			hOld := newMiddleware(t, mustStore(t, k, oldKey))(appRoutes())
			tokOld := mint(t, hOld, "/set?k=user&v=alice", "")

			both := mustStore(t, k, newKey, oldKey)
			hBoth := newMiddleware(t, both)(appRoutes())
			if code, body := probe(hBoth, DefaultCookieName+"="+tokOld); code != 200 || body != "new=false user=alice" {
				t.Fatalf("old cookie after rotation: %d %q", code, body)
			}
			tokNew := mint(t, hBoth, "/set?k=user&v=bob", tokOld)

			onlyNew := mustStore(t, k, newKey)
			data, err := onlyNew.Load(ctx, tokNew)
			if err != nil {
				t.Fatalf("store with only the new key: Load(new cookie) = %v", err)
			}
			var rec Record
			if err := (JSONCodec{}).DecodeRecord(data, &rec); err != nil || string(rec.Values["user"]) != `"bob"` {
				t.Fatalf("new cookie holds %q (%v)", data, err)
			}
			if _, err := mustStore(t, k, oldKey).Load(ctx, tokNew); !errors.Is(err, ErrNotFound) {
				t.Fatalf("store with only the old key: Load(new cookie) = %v, want ErrNotFound", err)
			}
			// A second rotation step with the keys in the other order
			// still opens both.
			for _, tok := range []string{tokOld, tokNew} {
				if _, err := mustStore(t, k, oldKey, newKey).Load(ctx, tok); err != nil {
					t.Errorf("(old, new) store: Load = %v", err)
				}
			}

			// Old key dropped.
			hNew := newMiddleware(t, onlyNew)(appRoutes())
			if code, body := probe(hNew, DefaultCookieName+"="+tokOld); code != 200 || body != freshSession {
				t.Errorf("old cookie after the old key was dropped: %d %q, want a fresh session", code, body)
			}
			if code, body := probe(hNew, DefaultCookieName+"="+tokNew); code != 200 || body != "new=false user=bob" {
				t.Errorf("new cookie after the old key was dropped: %d %q", code, body)
			}
		})
	}
}

// TestCSKeyValidation: no key, short, long, empty and repeated keys are
// refused with ErrInvalidKey; every accepted length works.
func TestCSKeyValidation(t *testing.T) {
	for _, k := range keyedKinds() {
		t.Run(k.name, func(t *testing.T) {
			bad := map[string][][]byte{
				"no key":         nil,
				"nil key":        {nil},
				"empty key":      {{}},
				"short":          {make([]byte, k.minKey-1)},
				"16 bytes":       {make([]byte, 16)},
				"long":           {make([]byte, k.maxKey+1)},
				"128 bytes":      {make([]byte, 128)},
				"duplicate":      {keyA, keyB, bytes.Clone(keyA)},
				"bad second key": {keyA, make([]byte, k.minKey-1)},
			}
			for name, keys := range bad {
				s, err := k.build(nil, keys...)
				if !errors.Is(err, ErrInvalidKey) {
					t.Errorf("%s: err = %v, want ErrInvalidKey", name, err)
				}
				if cs, ok := s.(*CookieStore); ok && cs != nil {
					t.Errorf("%s: returned a store along with the error", name)
				}
			}
			for _, n := range []int{k.minKey, (k.minKey + k.maxKey) / 2, k.maxKey} {
				key := bytes.Repeat([]byte{byte(n)}, n)
				s, err := k.build(nil, key, keyC)
				if err != nil {
					t.Errorf("%d-byte key: %v", n, err)
					continue
				}
				tok, err := s.Save(context.Background(), "", []byte("x"), time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				if data, err := s.Load(context.Background(), tok); err != nil || string(data) != "x" {
					t.Errorf("%d-byte key: round trip = %q, %v", n, data, err)
				}
			}
		})
	}
}

// TestCSKeysAreCopied: changing the caller's key slice afterwards does not
// change the store.
func TestCSKeysAreCopied(t *testing.T) {
	ctx := context.Background()
	for _, k := range keyedKinds() {
		key := bytes.Clone(keyA)
		s := mustStore(t, k, key)
		tok, _ := s.Save(ctx, "", []byte("data"), time.Hour)
		for i := range key {
			key[i] = 0
		}
		if data, err := s.Load(ctx, tok); err != nil || string(data) != "data" {
			t.Errorf("%s: after zeroing the caller's key: %q, %v", k.name, data, err)
		}
		tok2, _ := s.Save(ctx, "", []byte("data2"), time.Hour)
		if _, err := mustStore(t, k, keyA).Load(ctx, tok2); err != nil {
			t.Errorf("%s: sealed with a key changed by the caller: %v", k.name, err)
		}
	}
}

// TestCSOversizedSession: a cookie over 4096 bytes is the error handler's
// response, with no Set-Cookie and none of the handler's body; the
// client's previous session is untouched.
func TestCSOversizedSession(t *testing.T) {
	for _, k := range cookieKinds() {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var gotErr error
			eh := func(w http.ResponseWriter, r *http.Request, err error) {
				mu.Lock()
				gotErr = err
				mu.Unlock()
				http.Error(w, "session too large", http.StatusInternalServerError)
			}
			c := startApp(t, mustStore(t, k), appRoutes(), WithErrorHandler(eh)).visitor(k.rawCookies)
			c.expect(t, "/set?k=user&v=alice", 200, "new=true user=alice")
			r := c.get(t, "/big?n=5000")
			if r.status != http.StatusInternalServerError || r.body != "session too large\n" {
				t.Fatalf("oversized: %d %q, want the error handler's 500", r.status, r.body)
			}
			if len(r.setCookies()) != 0 {
				t.Fatalf("oversized: Set-Cookie %q sent", r.setCookies())
			}
			if strings.Contains(r.body, "SECRET-BODY") {
				t.Fatal("the handler's body was sent")
			}
			mu.Lock()
			err := gotErr
			mu.Unlock()
			if !errors.Is(err, ErrCookieTooLarge) {
				t.Fatalf("error handler got %v, want ErrCookieTooLarge", err)
			}
			c.expect(t, "/get", 200, "new=false user=alice")
		})
	}
	// A server-side store keeps large values out of the cookie.
	t.Run("memory", func(t *testing.T) {
		c := startApp(t, NewMemoryStore(), appRoutes()).visitor(false)
		r := c.get(t, "/big?n=100000")
		if r.status != 200 || r.body != "SECRET-BODY" || len(r.setCookies()) != 1 {
			t.Fatalf("memory store, 100 kB value: %d %q %q", r.status, r.body, r.setCookies())
		}
	})
}

// TestCSCookieSizeBoundary pins the limit exactly with the insecure store,
// whose cookie length is predictable: name "=" value of 4096 bytes is
// accepted and reads back; 4097 is refused.
func TestCSCookieSizeBoundary(t *testing.T) {
	ctx := context.Background()
	clock := testClockAt(time.Unix(1700000000, 0))
	store := NewInsecureCookieStore()
	h := newMiddleware(t, store, WithClock(clock.Now))(appRoutes())
	// The cookie value for a "big" value of n bytes, as the middleware
	// will seal it.
	tokenLen := func(n int) int {
		rec := Record{Created: clock.Now(), Accessed: clock.Now(), Values: map[string][]byte{"big": []byte(`"` + strings.Repeat("x", n) + `"`)}}
		data, err := JSONCodec{}.EncodeRecord(&rec)
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := store.Save(ctx, "", data, time.Hour)
		return len(tok)
	}
	base := tokenLen(0)
	if tokenLen(10) != base+10 {
		t.Fatalf("insecure cookie length is not linear in the value: %d, %d", base, tokenLen(10))
	}
	limit := MaxCookieSize - len(DefaultCookieName) - 1 - base // the largest n that fits
	for _, n := range []int{limit - 2, limit - 1, limit, limit + 1, limit + 2} {
		r := httptest.NewRequest("GET", "http://127.0.0.1/big?n="+strconv.Itoa(n), nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		size := len(DefaultCookieName) + 1 + base + n
		c, _ := setCookie(w.Header(), DefaultCookieName)
		sent, value := c != nil, ""
		if sent {
			value = c.Value
		}
		switch {
		case n <= limit && (w.Code != 200 || !sent || len(value) != base+n):
			t.Errorf("cookie of %d bytes: %d, sent %v (%d bytes), want 200 with the cookie", size, w.Code, sent, len(value))
		case n > limit && (w.Code != 500 || sent):
			t.Errorf("cookie of %d bytes: %d, sent %v, want 500 and no cookie", size, w.Code, sent)
		case n <= limit:
			code, body := probe(h, DefaultCookieName+"="+value)
			if code != 200 || !strings.HasPrefix(body, "new=false big=xxx") {
				t.Errorf("cookie of %d bytes does not read back: %d %.40q", size, code, body)
			}
		}
	}
}

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

// TestCSJSONCodecRoundTrip: every metadata field and awkward keys survive
// EncodeRecord → DecodeRecord, and the output is valid JSON.
func TestCSJSONCodecRoundTrip(t *testing.T) {
	var c JSONCodec
	keys := []string{"plain", `q"uote`, `back\slash`, "ctl\x00\x01\x1f\n\t", "ls\u2028ps\u2029",
		"<&>", "é日本😀", "", " "}
	persist := false
	in := Record{
		Created:    time.Unix(1700000000, 0),
		Accessed:   time.Unix(1700000123, 456e6),
		Lifetime:   90 * 24 * time.Hour,
		Persistent: &persist,
		Values:     map[string][]byte{},
		Flashes:    []string{"saved", `"quoted"`, "line\nbreak", "\u2028", "é"},
	}
	for i, k := range keys {
		v, err := c.EncodeValue(map[string]any{"i": i, "k": k})
		if err != nil {
			t.Fatal(err)
		}
		in.Values[k] = v
	}
	data, err := c.EncodeRecord(&in)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(data) {
		t.Fatalf("EncodeRecord wrote invalid JSON: %s", data)
	}
	if bytes.Contains(data, []byte("\u2028")) || bytes.Contains(data, []byte("\u2029")) {
		t.Errorf("raw U+2028/U+2029 in %s", data)
	}
	var out Record
	if err := c.DecodeRecord(data, &out); err != nil {
		t.Fatalf("DecodeRecord(%s): %v", data, err)
	}
	if d := recordDiff(&in, &out, sameJSON); d != "" {
		t.Error(d)
	}

	// Python's json.loads reads it too (same field names and structure).
	var generic map[string]any
	if err := json.Unmarshal(data, &generic); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"created", "session", "accessed", "lifetime", "persist", "flash"} {
		if _, ok := generic[f]; !ok {
			t.Errorf("field %q missing from %s", f, data)
		}
	}

	// Defaults are omitted and read back as defaults.
	minimal := Record{Created: time.Unix(5, 0), Values: map[string][]byte{"a": []byte("1")}}
	data, _ = c.EncodeRecord(&minimal)
	if string(data) != `{"created":5,"session":{"a":1}}` {
		t.Errorf("minimal record = %s", data)
	}
	out = Record{}
	if err := c.DecodeRecord(data, &out); err != nil {
		t.Fatal(err)
	}
	if !out.Accessed.IsZero() || out.Lifetime != 0 || out.Persistent != nil || len(out.Flashes) != 0 {
		t.Errorf("defaults decoded as %+v", out)
	}

	// Invalid UTF-8 in a key becomes U+FFFD, as encoding/json does.
	bad := Record{Created: time.Unix(1, 0), Values: map[string][]byte{"bad\xffkey": []byte("1")}}
	data, _ = c.EncodeRecord(&bad)
	if !utf8.Valid(data) || !json.Valid(data) {
		t.Fatalf("invalid UTF-8 key encoded as %q", data)
	}
	out = Record{}
	if err := c.DecodeRecord(data, &out); err != nil {
		t.Fatal(err)
	}
	if _, ok := out.Values["bad\uFFFDkey"]; !ok || len(out.Values) != 1 {
		t.Errorf("invalid UTF-8 key decoded as %q", keysOf(out.Values))
	}

	// Values are not HTML-escaped, matching Python's json.dumps.
	if v, _ := c.EncodeValue("<&>"); string(v) != `"<&>"` {
		t.Errorf(`EncodeValue("<&>") = %s`, v)
	}
}

// TestCSJSONCodecPython: what Python writes (with spaces, NaN, floats),
// and what must be refused: "{}" (aiohttp's invalidated session), no
// created time, non-objects, malformed JSON.
func TestCSJSONCodecPython(t *testing.T) {
	var c JSONCodec
	// §6.1 example without its NaN member.
	py := `{"created": 1700000000, "session": {"f": 1.0, "g": 1e-05, "h": 1e+16, "lt": "<&>", "u": "\u00e9\u2028\ud83d\ude00", "n": null, "t": true, "l": [1, 2]}}`
	var rec Record
	if err := c.DecodeRecord([]byte(py), &rec); err != nil {
		t.Fatalf("Python envelope: %v", err)
	}
	if !rec.Created.Equal(time.Unix(1700000000, 0)) || len(rec.Values) != 8 {
		t.Fatalf("decoded %v with %d values", rec.Created, len(rec.Values))
	}
	want := map[string]any{"f": 1.0, "g": 1e-05, "h": 1e16, "lt": "<&>", "u": "é\u2028😀", "n": nil, "t": true, "l": []any{1.0, 2.0}}
	for k, w := range want {
		var v any
		if err := c.DecodeValue(rec.Values[k], &v); err != nil || fmt.Sprint(v) != fmt.Sprint(w) {
			t.Errorf("%s = %#v (%v), want %#v", k, v, err, w)
		}
	}

	// The same with Python's NaN, Infinity and -Infinity values: the
	// envelope is accepted and keeps the rest of the session; those values
	// alone fail to decode (encoding/json has no NaN).
	nan := strings.Replace(py, `"l": [1, 2]}`, `"l": [1, 2], "nan": NaN, "inf": Infinity, "ninf": -Infinity}`, 1)
	var nrec Record
	if err := c.DecodeRecord([]byte(nan), &nrec); err != nil {
		t.Fatalf("envelope with NaN: %v", err)
	}
	if len(nrec.Values) != 11 || string(nrec.Values["f"]) != "1.0" {
		t.Errorf("envelope with NaN: values %q", nrec.Values)
	}
	for _, k := range []string{"nan", "inf", "ninf"} {
		var f float64
		if err := c.DecodeValue(nrec.Values[k], &f); err == nil {
			t.Errorf("%s: decoded %v without error", k, f)
		}
	}
	for _, bad := range []string{
		`{"created": NaN, "session": {}}`,
		`{"created": Infinity, "session": {}}`,
		`{"created": 1700000000, "session": {"x": nan}}`,
		`{"created": 1700000000, "session": {"x": NaNa}}`,
		`{}`,
		`{"session": {"a": 1}}`,
		`[]`, `[{"created": 1, "session": {}}]`, `"x"`, `1`, `null`, `true`, ``, ` `,
		`{"created": 1700000000, "session": {"a": 1}`,
		`{"created": 1700000000, "session": {"a": 1}} x`,
		`{"created": 1700000000, "session": {"a": 1}}{}`,
		`{"created": -1.5, "session": {}}`,
		`{"created": 1e400, "session": {}}`,
		`{"created": true, "session": {}}`,
		`{"created": 1700000000, "session": [1]}`,
		`{"created": 1700000000, "session": {"a": }}`,
		`{"created": 1700000000, "session": {"a": 01}}`,
		`{"created": 1700000000, "session": {"a": "\x"}}`,
		`{"created": 1700000000, "session": {"a": "` + "\x01" + `"}}`,
		`{"created": 1700000000, "session": {}, "flash": "x"}`,
		`{"created": 1700000000, "session": {}, "persist": 1}`,
		`{"created": 1700000000, "session": {}, "accessed": "1700000000"}`,
		`{"created": 1700000000, "session": {}, "accessed": 1700000000.}`,
		`{"created": 1700000000, "session": {}, "accessed": .5}`,
		`{"created": 1700000000, "session": {}, "accessed": 1e400}`,
		`{"created": 1700000000, "session": {}, "accessed": 99999999999999999999}`,
		`{"created": 1700000000, "session": {}, "accessed": NaN}`,
	} {
		var rec Record
		if err := c.DecodeRecord([]byte(bad), &rec); err == nil {
			t.Errorf("DecodeRecord(%s) accepted: %+v", bad, rec)
		}
	}
	var rec2 Record
	if err := c.DecodeRecord([]byte(`{}`), &rec2); !errors.Is(err, ErrDecode) {
		t.Errorf("DecodeRecord({}) = %v, want ErrDecode", err)
	}

	// created may be a float (Python's time.time()); it is truncated.
	for _, s := range []string{"1700000000.75", "1.7e9", "1700000000.0"} {
		var rec Record
		if err := c.DecodeRecord([]byte(`{"created": `+s+`, "session": {}}`), &rec); err != nil {
			t.Errorf("created %s: %v", s, err)
		} else if rec.Created.Unix() != 1700000000 {
			t.Errorf("created %s = %d", s, rec.Created.Unix())
		}
	}

	// Metadata written by another writer, with spaces.
	meta := `{"created": 1700000000, "session": {}, "accessed": 1700000500.25, "lifetime": 3600, "persist": true, "flash": ["a", "b"], "other": {"x": [1, {"y": null}]}}`
	var m Record
	if err := c.DecodeRecord([]byte(meta), &m); err != nil {
		t.Fatal(err)
	}
	if !m.Accessed.Equal(time.Unix(1700000500, 250e6)) || m.Lifetime != time.Hour || m.Persistent == nil || !*m.Persistent ||
		len(m.Flashes) != 2 || m.Flashes[1] != "b" || len(m.Values) != 0 {
		t.Errorf("metadata decoded as %+v", m)
	}
	// Out-of-range metadata falls back to the defaults.
	var o Record
	if err := c.DecodeRecord([]byte(`{"created": 1, "session": {}, "accessed": -5, "lifetime": 99999999999999}`), &o); err != nil {
		t.Fatal(err)
	}
	if !o.Accessed.IsZero() || o.Lifetime != 0 {
		t.Errorf("out-of-range metadata decoded as accessed %v lifetime %v", o.Accessed, o.Lifetime)
	}
}

// TestCSLongLifetime: a "remember me forever" lifetime must give a
// persistent cookie, not one that the browser deletes at once.
func TestCSLongLifetime(t *testing.T) {
	for _, d := range []time.Duration{100 * 365 * 24 * time.Hour, math.MaxInt64} {
		t.Run(d.String(), func(t *testing.T) {
			clock := testClockAt(time.Unix(1700000000, 0))
			h := newMiddleware(t, mustStore(t, kindNamed("nacl")), WithClock(clock.Now))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, _ := Get(r)
				s.SetLifetime(d)
				s.Set("user", "alice")
			}))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", "http://127.0.0.1/", nil))
			sc := w.Header().Get("Set-Cookie")
			cookies := w.Result().Cookies()
			if w.Code != 200 || len(cookies) != 1 || cookies[0].Value == "" {
				t.Fatalf("SetLifetime(%v): %d, Set-Cookie %q", d, w.Code, sc)
			}
			if cookies[0].MaxAge <= 0 {
				t.Errorf("SetLifetime(%v): Set-Cookie %q: the browser drops this cookie at once", d, sc)
			}
			// Two days later (past the default 24h lifetime) the session
			// is still there.
			clock.Set(clock.Now().Add(48 * time.Hour))
			code, body := probe(newMiddleware(t, mustStore(t, kindNamed("nacl")), WithClock(clock.Now))(appRoutes()),
				DefaultCookieName+"="+cookies[0].Value)
			if code != 200 || body != "new=false user=alice" {
				t.Errorf("SetLifetime(%v): two days later: %d %q, want the session", d, code, body)
			}
		})
	}
}
