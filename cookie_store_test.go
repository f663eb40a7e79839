package httpsession

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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
				key := make([]byte, n) // n distinct bytes: a repeated byte is refused
				for i := range key {
					key[i] = byte(n + 7*i)
				}
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
	// A server-side store keeps large values out of the cookie, up to the
	// record size limit (TestRecordSizeLimit), here raised above 100 kB.
	t.Run("memory", func(t *testing.T) {
		c := startApp(t, NewMemoryStore(), appRoutes(), WithMaxRecordSize(256<<10)).visitor(false)
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

// The expected strings are what Python's http.cookies._quote produced
// (aiohttp_session-wire.md §4.2 and §6.2).
func TestPythonQuote(t *testing.T) {
	for in, want := range map[string]string{
		`{"created": 1700000000, "session": {"a": 1}}`: `"{\"created\": 1700000000\054 \"session\": {\"a\": 1}}"`,
		`{}`:       `"{}"`,
		"abc+-._":  "abc+-._",
		"":         `""`,
		"a;b,c\\d": `"a\073b\054c\\d"`,
		"x=y/z":    `"x=y/z"`,
		"\x7f\x01": `"\177\001"`,
	} {
		if got := pythonQuote([]byte(in)); got != want {
			t.Errorf("pythonQuote(%q) = %s, want %s", in, got, want)
		}
		inner := want
		if len(inner) >= 2 && inner[0] == '"' {
			inner = inner[1 : len(inner)-1]
		}
		if got, ok := pythonUnquote(inner); !ok || string(got) != in {
			t.Errorf("pythonUnquote(%s) = %q, %v; want %q", inner, got, ok, in)
		}
	}
	if got, ok := pythonUnquote(`\351t\u00e9`); !ok || string(got) != "étu00e9" {
		t.Errorf("octal Latin-1 escape: %q", got)
	}
	if _, ok := pythonUnquote(`trailing\`); ok {
		t.Error("a lone trailing backslash was accepted")
	}
}

// TestInsecureCookieStoreIsAiohttpSimpleFormat: the insecure store's cookie
// is what SimpleCookieStorage writes for the same record: the JSON text as
// Python's json.dumps writes it (", " and ": " between members and items,
// no other whitespace outside strings, non-ASCII as \uXXXX), quoted as
// http.cookies quotes it. The expected tokens are Python's own output,
// http.cookies._quote(json.dumps(record)). Strings are left alone.
func TestInsecureCookieStoreIsAiohttpSimpleFormat(t *testing.T) {
	store := NewInsecureCookieStore()
	for _, tc := range []struct{ record, want string }{
		{`{"created":1700000000,"session":{"u":"é😀","c":"a,b;c"}}`,
			`"{\"created\": 1700000000\054 \"session\": {\"u\": \"\\u00e9\\ud83d\\ude00\"\054 \"c\": \"a\054b\073c\"}}"`},
		// Python's own spacing, and odd whitespace, come out as json.dumps's.
		{"{\"created\": 1700000000, \"session\": {\"l\" :[1,  2 ,{\"x\":null}] ,\n\t\"s\": \"a, b: c\\\" d\"}}",
			`"{\"created\": 1700000000\054 \"session\": {\"l\": [1\054 2\054 {\"x\": null}]\054 \"s\": \"a\054 b: c\\\" d\"}}"`},
		{`{"created":1,"session":{},"accessed":2.5}`, `"{\"created\": 1\054 \"session\": {}\054 \"accessed\": 2.5}"`},
		{"{\"created\":1,\"session\":{\"d\":\"a\x7fb\"}}", `"{\"created\": 1\054 \"session\": {\"d\": \"a\\u007fb\"}}"`},
	} {
		tok, err := store.Save(context.Background(), "", []byte(tc.record), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if tok != tc.want {
			t.Errorf("token\n%s\nwant\n%s", tok, tc.want)
		}
	}
	tok, err := store.Save(context.Background(), "", []byte(`{"created":1700000000,"session":{"u":"é😀","c":"a,b;c"}}`), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkCookieValue(tok); err != nil {
		t.Fatal(err)
	}
	var rec Record
	data, err := store.Load(context.Background(), tok[1:len(tok)-1])
	if err != nil {
		t.Fatal(err)
	}
	if err := (JSONCodec{}).DecodeRecord(data, &rec); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	var u string
	if err := (JSONCodec{}).DecodeValue(rec.Values["u"], &u); err != nil || u != "é😀" {
		t.Fatalf("u = %q, %v", u, err)
	}
}

// base64Alphabets is every character of the standard and URL-safe base64
// alphabets, and the padding.
const base64Alphabets = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_="

// assertNotMalleable seals each of datas with s and checks that the token
// opens but no respelling of its last base64 character does: every other
// character of either alphabet in its place, or a CR or LF before it. A
// lenient base64 decoder ignores the spare low bits of the last character
// (and line breaks), so without a strict decode anyone could make new
// tokens that open, defeating anything keyed by the cookie's text (a list
// of revoked cookies, a replay cache, log correlation). The last character
// before any padding carries the spare bits; datas should cover every
// length modulo 3 of the sealed bytes so that some tokens have them.
func assertNotMalleable(t *testing.T, s Store, datas ...[]byte) {
	t.Helper()
	ctx := context.Background()
	spare := false
	for _, data := range datas {
		tok, err := s.Save(ctx, "", data, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.Load(ctx, tok); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Load(%q) = %q, %v; want %q", tok, got, err, data)
		}
		i := len(strings.TrimRight(tok, "=")) - 1
		if tok[i] == '=' || strings.IndexByte(base64Alphabets, tok[i]) < 0 {
			t.Fatalf("token %q: last character %q is not base64", tok, tok[i])
		}
		variants := []string{tok[:i] + "\n" + tok[i:], tok[:i] + "\r" + tok[i:]}
		for _, c := range []byte(base64Alphabets) {
			if c != tok[i] {
				variants = append(variants, tok[:i]+string(c)+tok[i+1:])
			}
		}
		var opened []string
		for _, v := range variants {
			if _, err := s.Load(ctx, v); !errors.Is(err, ErrNotFound) {
				opened = append(opened, fmt.Sprintf("%q (%v)", v, err))
			}
		}
		if len(opened) > 0 {
			t.Errorf("%d-byte record: %d of %d respellings of %q open, e.g. %s; want ErrNotFound",
				len(data), len(opened), len(variants), tok, opened[0])
		}
		// The last character has spare bits unless the base64 text it
		// ends (a signed token's signature follows the '.') is a whole
		// number of 4-character groups; the test is vacuous unless some
		// token has them.
		last := tok[strings.LastIndexByte(tok, '.')+1:]
		if len(strings.TrimRight(last, "="))%4 != 0 {
			spare = true
		}
	}
	if !spare {
		t.Fatal("no token with spare bits in its last character: the test proves nothing")
	}
}

// TestWeakKeysRejected: a key whose bytes are all equal (all zero, an
// unset buffer, a key "filled" with one character) is no secret, and every
// keyed cookie store refuses it with ErrInvalidKey, first or in rotation.
func TestWeakKeysRejected(t *testing.T) {
	good := []byte("Jq4vR8zLw2XnT6bYc0HsP9mKd3FgA7eU") // 32 random-looking bytes
	stores := map[string]func(keys ...[]byte) (*CookieStore, error){
		"signed":    NewSignedCookieStore,
		"encrypted": NewEncryptedCookieStore,
		"nacl":      NewNaClCookieStore,
		"fernet":    NewFernetCookieStore,
	}
	for name, build := range stores {
		t.Run(name, func(t *testing.T) {
			if _, err := build(good); err != nil {
				t.Fatalf("a good key: %v", err)
			}
			for _, weak := range [][]byte{
				make([]byte, 32),
				bytes.Repeat([]byte{0xff}, 32),
				[]byte(strings.Repeat("k", 32)),
			} {
				for _, keys := range [][][]byte{{weak}, {good, weak}} {
					s, err := build(keys...)
					if !errors.Is(err, ErrInvalidKey) || s != nil {
						t.Errorf("keys %q: store %v, err %v; want ErrInvalidKey", keys, s, err)
					}
				}
			}
		})
	}
	for _, build := range []func(keys ...[]byte) (*CookieStore, error){NewSignedCookieStore, NewEncryptedCookieStore} {
		if _, err := build(make([]byte, 64)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("a 64-byte zero key: err %v, want ErrInvalidKey", err)
		}
	}
}

// TestTamperedCookieVisible: a cookie that does not open (one character
// changed, or sealed with a key the store no longer has) is a fresh
// session for the request, and visible to the operator: the middleware
// logs a warning without the token and the store's Rejected count rises.
// A request without a cookie, and a valid cookie, count nothing.
func TestTamperedCookieVisible(t *testing.T) {
	for name, build := range map[string]func(...[]byte) (*CookieStore, error){
		"signed": NewSignedCookieStore, "encrypted": NewEncryptedCookieStore,
		"nacl": NewNaClCookieStore, "fernet": NewFernetCookieStore,
	} {
		t.Run(name, func(t *testing.T) {
			store, err := build(keyA)
			if err != nil {
				t.Fatal(err)
			}
			retired, err := build(keyB)
			if err != nil {
				t.Fatal(err)
			}
			app := startApp(t, store, identityRoutes())
			live := loginCookie(t, app)
			if r := app.do(t, nil, "/whoami", live); !strings.Contains(r.body, "new=false") || store.Rejected() != 0 {
				t.Fatalf("valid cookie: %q, %d rejected", r.body, store.Rejected())
			}
			app.do(t, nil, "/whoami")
			old, err := retired.Save(context.Background(), "", []byte(`{"created":1,"session":{}}`), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			mid := len(live.Value) / 2
			flip := byte('A')
			if live.Value[mid] == 'A' {
				flip = 'B'
			}
			tampered := live.Value[:mid] + string(flip) + live.Value[mid+1:]
			for i, bad := range []string{tampered, old} {
				r := app.do(t, nil, "/whoami", &http.Cookie{Name: "session", Value: bad})
				if !strings.Contains(r.body, "new=true") {
					t.Fatalf("bad cookie %d opened: %q", i, r.body)
				}
				if got := store.Rejected(); got != uint64(i+1) {
					t.Fatalf("after bad cookie %d: Rejected() = %d, want %d", i, got, i+1)
				}
				if strings.Contains(app.log.String(), bad) {
					t.Fatalf("the log carries the token:\n%s", app.log)
				}
			}
			if n := strings.Count(app.log.String(), "session cookie rejected"); n != 2 {
				t.Fatalf("%d warnings, want 2:\n%s", n, app.log)
			}
		})
	}
}

// TestSealBindsCookieNameAndPath: a cookie sealed by one middleware does
// not open in another whose cookie has another name (sess, sess2) or the
// same name on another path (/app, /admin), though both seal with the same
// key, in one shared store or in two stores built with it, whatever their
// codec. Such a cookie
// is rejected as a tampered one is: a fresh session, counted by
// Rejected() and logged. Each middleware still opens its own cookies, and
// a record sealed without a binding (as aiohttp_session's cookies are)
// opens in both.
func TestSealBindsCookieNameAndPath(t *testing.T) {
	purposes := []struct {
		name         string
		a, b         []Option
		nameA, nameB string
	}{
		{"name", []Option{WithCookieName("sess")}, []Option{WithCookieName("sess2")}, "sess", "sess2"},
		{"path", []Option{WithCookieName("sess"), WithPath("/app")}, []Option{WithCookieName("sess"), WithPath("/admin")}, "sess", "sess"},
		// A codec whose records are not JSON objects.
		{"codec", []Option{WithCookieName("sess"), WithCodec(prefixCodec{})}, []Option{WithCookieName("sess2"), WithCodec(prefixCodec{})}, "sess", "sess2"},
	}
	for _, k := range keyedKinds() {
		for _, p := range purposes {
			for _, shared := range []bool{true, false} {
				name := k.name + "/" + p.name + "/separate"
				if shared {
					name = k.name + "/" + p.name + "/shared"
				}
				t.Run(name, func(t *testing.T) {
					storeA := mustStore(t, k).(*CookieStore)
					storeB := storeA
					if !shared {
						storeB = mustStore(t, k).(*CookieStore)
					}
					logger, logs := newLogger()
					hA := newMiddleware(t, storeA, append(p.a, WithLogger(logger))...)(identityRoutes())
					hB := newMiddleware(t, storeB, append(p.b, WithLogger(logger))...)(identityRoutes())
					get := func(h http.Handler, path, cookie string) (string, string) {
						t.Helper()
						r := httptest.NewRequest("GET", "https://example.com"+path, nil)
						if cookie != "" {
							r.Header.Set("Cookie", cookie)
						}
						w := httptest.NewRecorder()
						h.ServeHTTP(w, r)
						if w.Code != http.StatusOK {
							t.Fatalf("GET %s = %d %q", path, w.Code, w.Body)
						}
						ck := parseSetCookie(w.Header().Get("Set-Cookie"))
						if ck == nil {
							return w.Body.String(), ""
						}
						return w.Body.String(), ck.Value
					}
					_, tokA := get(hA, "/login", "")
					_, tokB := get(hB, "/login", "")
					if tokA == "" || tokB == "" {
						t.Fatal("login set no cookie")
					}
					if body, _ := get(hA, "/whoami", p.nameA+"="+tokA); !strings.Contains(body, "user=ann") {
						t.Fatalf("A does not open its own cookie: %q", body)
					}
					if body, _ := get(hB, "/whoami", p.nameB+"="+tokB); !strings.Contains(body, "user=ann") {
						t.Fatalf("B does not open its own cookie: %q", body)
					}
					rejections := func() uint64 {
						if shared {
							return storeA.Rejected()
						}
						return storeA.Rejected() + storeB.Rejected()
					}
					rejected := rejections()
					if body, _ := get(hB, "/whoami", p.nameB+"="+tokA); !strings.Contains(body, "new=true") || strings.Contains(body, "ann") {
						t.Errorf("A's cookie opened in B: %q", body)
					}
					if body, _ := get(hA, "/whoami", p.nameA+"="+tokB); !strings.Contains(body, "new=true") || strings.Contains(body, "ann") {
						t.Errorf("B's cookie opened in A: %q", body)
					}
					if got := rejections() - rejected; got != 2 {
						t.Errorf("Rejected() rose by %d, want 2 (one per foreign cookie)", got)
					}
					if n := strings.Count(logs.String(), "session cookie rejected"); n != 2 {
						t.Errorf("%d rejection warnings, want 2:\n%s", n, logs)
					}
					if strings.Contains(logs.String(), tokA) || strings.Contains(logs.String(), tokB) {
						t.Errorf("the log carries a token:\n%s", logs)
					}
					if p.name == "codec" {
						return
					}
					// A record sealed without a binding (aiohttp_session's,
					// or Store.Save outside the middleware) opens in both.
					unbound := sealToken(t, storeA, time.Now(), map[string]any{"user": "py"})
					for _, h := range []struct {
						h    http.Handler
						name string
					}{{hA, p.nameA}, {hB, p.nameB}} {
						if body, _ := get(h.h, "/whoami", h.name+"="+unbound); !strings.Contains(body, "user=py") {
							t.Errorf("an unbound record did not open under %s: %q", h.name, body)
						}
					}
				})
			}
		}
	}
}

// prefixCodec is a Codec whose records are not JSON objects: JSONCodec's
// with a byte in front.
type prefixCodec struct{ JSONCodec }

func (c prefixCodec) EncodeRecord(rec *Record) ([]byte, error) {
	data, err := c.JSONCodec.EncodeRecord(rec)
	return append([]byte{'R'}, data...), err
}

func (c prefixCodec) DecodeRecord(data []byte, rec *Record) error {
	if len(data) == 0 || data[0] != 'R' {
		return ErrDecode
	}
	return c.JSONCodec.DecodeRecord(data[1:], rec)
}

// TestSealBindingFormat: what a bound seal holds, what it costs, and what
// Load gives back. A JSONCodec record gets "bind":"<name>;<path>" as its
// first member, len(name)+len(path)+11 bytes; another codec's record is
// framed by {"bind":"<name>;<path>"}. Load returns the record as Save was
// given it, under the same binding and outside the middleware (which
// checks nothing), and refuses it under another binding. Odd characters
// in the path cannot make two bindings alike, and the binding cannot be
// removed without the key.
func TestSealBindingFormat(t *testing.T) {
	record := []byte(`{"created":1700000000,"session":{"a":1}}`)
	other := []byte("R\x00not a JSON object")
	for _, k := range keyedKinds() {
		t.Run(k.name, func(t *testing.T) {
			store := mustStore(t, k).(*CookieStore)
			for _, c := range []struct {
				name, path string
				data       []byte
				plain      string // what is sealed
			}{
				{"session", "/", record, `{"bind":"session;/","created":1700000000,"session":{"a":1}}`},
				{"sess", `/a"b\c;`, record, `{"bind":"sess;/a\"b\\c;","created":1700000000,"session":{"a":1}}`},
				{"sess", "/", other, "{\"bind\":\"sess;/\"}R\x00not a JSON object"},
			} {
				ctx := boundContext(c.name, c.path)
				tok, err := store.Save(ctx, "", c.data, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				if sealed, ok := store.sealer.open(tok); !ok || string(sealed) != c.plain {
					t.Errorf("sealed %q, want %q", sealed, c.plain)
				}
				if c.path == "/" && bytes.Equal(c.data, record) && len(c.plain)-len(c.data) != len(c.name)+len(c.path)+11 {
					t.Errorf("the binding costs %d bytes, want len(name)+len(path)+11", len(c.plain)-len(c.data))
				}
				if bytes.Equal(c.data, record) {
					// In the cookie: about 4/3 of that after base64, up to a
					// block more for Fernet's padding, 16/9 for securecookie's
					// two base64 encodings.
					unbound, err := store.Save(context.Background(), "", c.data, time.Hour)
					if err != nil {
						t.Fatal(err)
					}
					n, grew := float64(len(c.plain)-len(c.data)), float64(len(tok)-len(unbound))
					lo, hi := n*4/3-4, n*4/3+4
					switch k.name {
					case "fernet":
						lo, hi = (n-16)*4/3, (n+16)*4/3+4
					case "encrypted":
						lo, hi = n*16/9-8, n*16/9+8
					}
					if grew < lo || grew > hi {
						t.Errorf("the binding's %v bytes grew the cookie by %v, want %v to %v", n, grew, lo, hi)
					}
				}
				for _, load := range []context.Context{ctx, boundContext(c.name, c.path), context.Background()} {
					if got, err := store.Load(load, tok); err != nil || !bytes.Equal(got, c.data) {
						t.Errorf("Load = %q, %v; want %q", got, err, c.data)
					}
				}
				before := store.Rejected()
				for _, foreign := range [][2]string{{c.name + "2", c.path}, {c.name, c.path + "x"}, {c.name + ";" + c.path, ""}, {"", c.name + ";" + c.path}} {
					if got, err := store.Load(boundContext(foreign[0], foreign[1]), tok); !errors.Is(err, errRejected) {
						t.Errorf("Load for cookie %q path %q of a seal for %q %q = %q, %v; want errRejected", foreign[0], foreign[1], c.name, c.path, got, err)
					}
				}
				if got := store.Rejected() - before; got != 4 {
					t.Errorf("Rejected() rose by %d, want 4", got)
				}
			}
		})
	}
	t.Run("signed/stripped", func(t *testing.T) {
		// The signed store's record is readable: cutting the binding out
		// of it breaks the signature.
		store := mustStore(t, kindNamed("signed"))
		tok, err := store.Save(boundContext("sess", "/app"), "", record, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		_, sig, _ := strings.Cut(tok, ".")
		forged := base64.RawURLEncoding.EncodeToString(record) + "." + sig
		if _, err := store.Load(boundContext("sess2", "/"), forged); !errors.Is(err, errRejected) {
			t.Errorf("a signed record with its binding cut out opened: %v", err)
		}
	})
}

// TestSealBindingIgnoresDomain pins what the README says the binding
// leaves out: the Domain. Two middlewares that differ only in it, sharing
// a key, open each other's cookies.
func TestSealBindingIgnoresDomain(t *testing.T) {
	store := mustStore(t, kindNamed("nacl"))
	hA := newMiddleware(t, store, WithDomain("a.example.com"))(identityRoutes())
	hB := newMiddleware(t, store, WithDomain("b.example.com"))(identityRoutes())
	tok := mint(t, hA, "/login", "")
	r := httptest.NewRequest("GET", "https://b.example.com/whoami", nil)
	r.Header.Set("Cookie", DefaultCookieName+"="+tok)
	w := httptest.NewRecorder()
	hB.ServeHTTP(w, r)
	if !strings.Contains(w.Body.String(), "user=ann") {
		t.Errorf("a cookie for another Domain = %q; the binding is documented to leave the Domain out", w.Body)
	}
}
