package httpsession

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/nacl/secretbox"
)

// Three distinct 32-byte keys. They look random: a key of one repeated
// byte is refused (see TestWeakKeysRejected).
var (
	csKeyA = []byte("A1x7Kq9Zt3Lm8Pw2Rv6Ny4Bc0Hs5Dj1F")
	csKeyB = []byte("B2u5Wg8Tn1Qe4Yk7Ma0Xs3Jd6Vh9Cr2L")
	csKeyC = []byte("C3p9Hf2Rz6Tb0Nk4Wq8Ey1Gm5Ud7Js3X")
)

// csKind describes one store under test.
type csKind struct {
	name   string
	keyed  bool // the constructor takes secret keys
	cookie bool // the record travels in the cookie
	// forgeable: anyone can mint a cookie the store accepts (insecure store).
	forgeable bool
	// rawCookies: the cookie is Python-quoted JSON, which net/http's
	// client and cookiejar drop ("\\" and '"' inside the quotes), so the
	// end-to-end tests carry it with csRawJar instead.
	rawCookies bool
	// minKey and maxKey are the accepted key lengths of a keyed store.
	minKey, maxKey int
	build          func(keys ...[]byte) (Store, error)
	// decode and encode split a cookie value into its raw byte parts (below
	// the text encoding) and join them back, for bit flips of the decoded
	// bytes.
	decode func(string) ([][]byte, bool)
	encode func([][]byte) string
}

func csOnePart(enc *base64.Encoding) (func(string) ([][]byte, bool), func([][]byte) string) {
	return func(s string) ([][]byte, bool) {
			b, err := enc.DecodeString(s)
			return [][]byte{b}, err == nil
		}, func(p [][]byte) string {
			return enc.EncodeToString(p[0])
		}
}

func csKinds() []csKind {
	naclDec, naclEnc := csOnePart(base64.StdEncoding)
	urlDec, urlEnc := csOnePart(base64.URLEncoding)
	return []csKind{
		{
			// The record as Python-quoted JSON: below the text there is
			// only the JSON itself.
			name: "insecure", cookie: true, forgeable: true, rawCookies: true,
			build: func(...[]byte) (Store, error) { return NewInsecureCookieStore(), nil },
			decode: func(s string) ([][]byte, bool) {
				d, err := NewInsecureCookieStore().Load(context.Background(), csHTTPValue(s))
				return [][]byte{d}, err == nil
			},
			encode: func(p [][]byte) string {
				tok, _ := NewInsecureCookieStore().Save(context.Background(), "", p[0], time.Hour)
				return tok
			},
		},
		{
			name: "signed", keyed: true, cookie: true, minKey: 32, maxKey: 64,
			build: func(keys ...[]byte) (Store, error) { return NewSignedCookieStore(keys...) },
			decode: func(s string) ([][]byte, bool) {
				payload, sig, ok := strings.Cut(s, ".")
				if !ok {
					return nil, false
				}
				p, err1 := base64.RawURLEncoding.DecodeString(payload)
				g, err2 := base64.RawURLEncoding.DecodeString(sig)
				return [][]byte{p, g}, err1 == nil && err2 == nil
			},
			encode: func(p [][]byte) string {
				return base64.RawURLEncoding.EncodeToString(p[0]) + "." + base64.RawURLEncoding.EncodeToString(p[1])
			},
		},
		{
			name: "encrypted", keyed: true, cookie: true, minKey: 32, maxKey: 64,
			build:  func(keys ...[]byte) (Store, error) { return NewEncryptedCookieStore(keys...) },
			decode: urlDec, encode: urlEnc,
		},
		{
			name: "nacl", keyed: true, cookie: true, minKey: 32, maxKey: 32,
			build:  func(keys ...[]byte) (Store, error) { return NewNaClCookieStore(keys...) },
			decode: naclDec, encode: naclEnc,
		},
		{
			name: "fernet", keyed: true, cookie: true, minKey: 32, maxKey: 32,
			build:  func(keys ...[]byte) (Store, error) { return NewFernetCookieStore(keys...) },
			decode: urlDec, encode: urlEnc,
		},
		{
			name:  "memory",
			build: func(...[]byte) (Store, error) { return NewMemoryStore(), nil },
		},
	}
}

func csKindNamed(name string) csKind {
	for _, k := range csKinds() {
		if k.name == name {
			return k
		}
	}
	panic("no store kind " + name)
}

func csCookieKinds() []csKind {
	var out []csKind
	for _, k := range csKinds() {
		if k.cookie {
			out = append(out, k)
		}
	}
	return out
}

func csKeyedKinds() []csKind {
	var out []csKind
	for _, k := range csKinds() {
		if k.keyed {
			out = append(out, k)
		}
	}
	return out
}

func csMustStore(t testing.TB, k csKind, keys ...[]byte) Store {
	t.Helper()
	if len(keys) == 0 {
		keys = [][]byte{csKeyA}
	}
	s, err := k.build(keys...)
	if err != nil {
		t.Fatalf("%s: build store: %v", k.name, err)
	}
	return s
}

var csQuiet = slog.New(slog.DiscardHandler)

// csNewClock is the cookie store tests' clock: mwClock, starting at a
// fixed Unix time the tests' expiry arithmetic is written against.
func csNewClock() *mwClock {
	c := mwNewClock()
	c.Set(time.Unix(1700000000, 0))
	return c
}

func csMiddleware(t testing.TB, store Store, opts ...Option) func(http.Handler) http.Handler {
	t.Helper()
	mw, err := Middleware(store, append([]Option{WithLogger(csQuiet)}, opts...)...)
	if err != nil {
		t.Fatalf("Middleware: %v", err)
	}
	return mw
}

// csApp is the application used by the end-to-end tests:
//
//	/get             shows the session
//	/set?k=v&...     sets string values
//	/incr            increments the integer "n"
//	/logout          invalidates the session
//	/big?n=N         sets "big" to N bytes, then writes SECRET-BODY
func csApp() http.Handler {
	mux := http.NewServeMux()
	session := func(w http.ResponseWriter, r *http.Request) *Session {
		s, err := Get(r)
		if err != nil {
			http.Error(w, "get: "+err.Error(), http.StatusInternalServerError)
			return nil
		}
		return s
	}
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		if s := session(w, r); s != nil {
			io.WriteString(w, csDump(s))
		}
	})
	mux.HandleFunc("/set", func(w http.ResponseWriter, r *http.Request) {
		s := session(w, r)
		if s == nil {
			return
		}
		for k, v := range r.URL.Query() {
			if err := s.Set(k, v[0]); err != nil {
				http.Error(w, "set: "+err.Error(), http.StatusInternalServerError)
				return
			}
		}
		io.WriteString(w, csDump(s))
	})
	mux.HandleFunc("/incr", func(w http.ResponseWriter, r *http.Request) {
		s := session(w, r)
		if s == nil {
			return
		}
		n, _ := GetAs[int](s, "n")
		if err := s.Set("n", n+1); err != nil {
			http.Error(w, "set: "+err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, csDump(s))
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		if s := session(w, r); s != nil {
			s.Invalidate()
			io.WriteString(w, "bye")
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		s := session(w, r)
		if s == nil {
			return
		}
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if err := s.Set("big", strings.Repeat("x", n)); err != nil {
			http.Error(w, "set: "+err.Error(), http.StatusInternalServerError)
			return
		}
		if _, err := io.WriteString(w, "SECRET-BODY"); err != nil {
			w.Header().Set("X-Write-Error", err.Error()) // too late to show; kept for the record
		}
	})
	return mux
}

// csDump renders a session deterministically: "new=<bool>" then its keys
// in order.
func csDump(s *Session) string {
	var b strings.Builder
	fmt.Fprintf(&b, "new=%v", s.IsNew())
	for _, k := range s.Keys() {
		fmt.Fprintf(&b, " %s=%v", k, s.Get(k))
	}
	return b.String()
}

const csFresh = "new=true"

// csClient is a browser: a real server and a cookie jar (net/http's, or
// csRawJar for cookies net/http cannot parse).
type csClient struct {
	t   testing.TB
	srv *httptest.Server
	c   *http.Client
	jar *cookiejar.Jar
	raw *csRawJar
}

func csNewClient(t testing.TB, rawCookies bool, h http.Handler) *csClient {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := &csClient{t: t, srv: srv}
	if rawCookies {
		c.raw = &csRawJar{next: srv.Client().Transport}
		c.c = &http.Client{Transport: c.raw}
		return c
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c.jar, c.c = jar, &http.Client{Jar: jar}
	return c
}

// csRawJar keeps the session cookie's value byte for byte, as a browser
// does. net/http's cookiejar drops Python-quoted values such as the
// insecure store's.
type csRawJar struct {
	mu    sync.Mutex
	value string
	next  http.RoundTripper
}

func (j *csRawJar) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	j.mu.Lock()
	if j.value != "" {
		r.Header.Set("Cookie", DefaultCookieName+"="+j.value)
	}
	j.mu.Unlock()
	resp, err := j.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if v, deleted, ok := csSetCookie(resp.Header); ok {
		j.mu.Lock()
		j.value = v
		if deleted {
			j.value = ""
		}
		j.mu.Unlock()
	}
	return resp, nil
}

// csSetCookie returns the raw value of the session's Set-Cookie line and
// whether it deletes the cookie.
func csSetCookie(h http.Header) (value string, deleted, ok bool) {
	for _, line := range h.Values("Set-Cookie") {
		name, rest, _ := strings.Cut(line, "=")
		if name != DefaultCookieName {
			continue
		}
		value, attrs, _ := strings.Cut(rest, ";")
		return value, value == "" || strings.Contains(attrs, "Max-Age=0"), true
	}
	return "", false, false
}

type csResp struct {
	status    int
	body      string
	setCookie []string
	header    http.Header
}

func (c *csClient) get(path string) csResp {
	c.t.Helper()
	resp, err := c.c.Get(c.srv.URL + path)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("GET %s: read body: %v", path, err)
	}
	return csResp{resp.StatusCode, string(body), resp.Header.Values("Set-Cookie"), resp.Header}
}

// getWith sends one request with a raw Cookie header and no jar.
func (c *csClient) getWith(path, cookie string) csResp {
	c.t.Helper()
	req, err := http.NewRequest("GET", c.srv.URL+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Cookie", cookie)
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return csResp{resp.StatusCode, string(body), resp.Header.Values("Set-Cookie"), resp.Header}
}

// cookie returns the session cookie's value in the jar, or "".
func (c *csClient) cookie() string {
	if c.raw != nil {
		c.raw.mu.Lock()
		defer c.raw.mu.Unlock()
		return c.raw.value
	}
	u, _ := url.Parse(c.srv.URL)
	for _, ck := range c.jar.Cookies(u) {
		if ck.Name == DefaultCookieName {
			return ck.Value
		}
	}
	return ""
}

func (c *csClient) expect(path string, status int, body string) csResp {
	c.t.Helper()
	r := c.get(path)
	if r.status != status || r.body != body {
		c.t.Fatalf("GET %s = %d %q, want %d %q", path, r.status, r.body, status, body)
	}
	return r
}

// csProbe runs one request in process with a raw Cookie header (any bytes,
// no client-side validation) and returns the status and body.
func csProbe(h http.Handler, cookieHeader string) (int, string) {
	r := httptest.NewRequest("GET", "http://127.0.0.1/get", nil)
	if cookieHeader != "" {
		r.Header.Set("Cookie", cookieHeader)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

// csMint runs path in process (with an optional cookie value) and returns
// the session cookie value the response sets.
func csMint(t testing.TB, h http.Handler, path, cookie string) string {
	t.Helper()
	r := httptest.NewRequest("GET", "http://127.0.0.1"+path, nil)
	if cookie != "" {
		r.Header.Set("Cookie", DefaultCookieName+"="+cookie)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s = %d %q", path, w.Code, w.Body.String())
	}
	if v, deleted, ok := csSetCookie(w.Header()); ok && !deleted {
		return v
	}
	t.Fatalf("GET %s set no session cookie (headers %v)", path, w.Header())
	return ""
}

// TestCSEndToEnd runs set → read → modify → logout → fresh over a real
// server and a cookie jar, for every store.
func TestCSEndToEnd(t *testing.T) {
	for _, k := range csKinds() {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			c := csNewClient(t, k.rawCookies, csMiddleware(t, csMustStore(t, k))(csApp()))

			// An anonymous visitor who only reads gets no cookie.
			r := c.expect("/get", 200, csFresh)
			if len(r.setCookie) != 0 {
				t.Fatalf("anonymous read set a cookie: %q", r.setCookie)
			}
			if got := r.header.Get("Vary"); got != "Cookie" {
				t.Errorf("Vary = %q, want Cookie", got)
			}

			// Set.
			r = c.expect("/set?user=alice", 200, "new=true user=alice")
			if len(r.setCookie) != 1 {
				t.Fatalf("Set-Cookie = %q, want one", r.setCookie)
			}
			for _, attr := range []string{"session=", "; Path=/", "; HttpOnly", "; Secure", "; SameSite=Lax", "; Max-Age=86400", "; Expires="} {
				if !strings.Contains(r.setCookie[0], attr) {
					t.Errorf("Set-Cookie %q lacks %q", r.setCookie[0], attr)
				}
			}
			if n := len(r.setCookie[0]); n > 4096+200 {
				t.Errorf("Set-Cookie is %d bytes", n)
			}

			// Read back on the next request; a read sends no cookie.
			r = c.expect("/get", 200, "new=false user=alice")
			if len(r.setCookie) != 0 {
				t.Errorf("read-only request set a cookie: %q", r.setCookie)
			}

			// Modify.
			c.expect("/incr", 200, "new=false n=1 user=alice")
			c.expect("/incr", 200, "new=false n=2 user=alice")
			c.expect("/set?user=bob", 200, "new=false n=2 user=bob")
			c.expect("/get", 200, "new=false n=2 user=bob")
			before := c.cookie()
			if before == "" {
				t.Fatal("no session cookie in the jar")
			}

			// Logout: the cookie is deleted with the same attributes.
			r = c.expect("/logout", 200, "bye")
			if len(r.setCookie) != 1 || !strings.Contains(r.setCookie[0], "Max-Age=0") ||
				!strings.Contains(r.setCookie[0], "; Path=/") {
				t.Fatalf("logout Set-Cookie = %q, want a deletion", r.setCookie)
			}
			if got := c.cookie(); got != "" {
				t.Fatalf("jar still holds %q after logout", got)
			}

			// The next request is a fresh session.
			c.expect("/get", 200, csFresh)
			c.expect("/incr", 200, "new=true n=1")

			// Replaying the cookie from before the logout: a server-side
			// store has deleted the record; a cookie store cannot revoke
			// (documented on CookieStore), so the old cookie still opens.
			r = c.getWith("/get", DefaultCookieName+"="+before)
			want := "new=false n=2 user=bob"
			if !k.cookie {
				want = csFresh
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
		csAiohttpPlain,
		`{"created":1700000000,"session":{"user":"alice","q":"a\"b;c,d\\e"},"accessed":1700000100,"flash":["x"]}`,
		`{"created":1700000000,"session":{"n":1},"accessed":1700000100.025}`,
		`{"created":1700000000,"session":{"u":"é日本😀"}}`,
	}
	for _, k := range csKinds() {
		t.Run(k.name, func(t *testing.T) {
			store := csMustStore(t, k)
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
				if string(got) != rec && !(k.name == "insecure" && csSameJSON(got, []byte(rec))) {
					t.Errorf("Load(Save(%s)) = %q", rec, got)
				}
				for i := range got {
					got[i] = 'X'
				}
				if again, err := store.Load(ctx, tok); err != nil || !csSameJSON(again, []byte(rec)) {
					t.Errorf("second Load after changing the first result: %q, %v", again, err)
				}
			}
		})
	}
}

// csSameJSON reports whether a and b are equal JSON documents.
func csSameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return fmt.Sprintf("%#v", x) == fmt.Sprintf("%#v", y)
}

// csVariant is one tampered cookie value.
type csVariant struct {
	desc  string
	value string
	// strict: the store must reject it. Otherwise (a change of the text
	// only) it may also open to exactly the original bytes, because Go's
	// base64 decoders ignore newlines and non-zero trailing bits.
	strict bool
}

func csVariants(k csKind, tok string) []csVariant {
	var vs []csVariant
	add := func(strict bool, desc, v string) {
		if v != tok {
			vs = append(vs, csVariant{desc, v, strict})
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
		panic("csVariants: cannot decode a real cookie")
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

// csHTTPValue is a cookie value as a server sees it: without surrounding
// blanks and double quotes.
func csHTTPValue(v string) string {
	v = strings.Trim(v, " \t")
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	return v
}

// TestCSTamperSweep feeds every cookie store tampered, truncated, extended,
// empty, garbage, foreign-key and expired cookies: each must read as a
// fresh empty session with status 200. The insecure store is swept too, for
// status 200 only: it cannot detect tampering.
func TestCSTamperSweep(t *testing.T) {
	ctx := context.Background()
	for _, k := range csCookieKinds() {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			store := csMustStore(t, k, csKeyA)
			clock := csNewClock()
			h := csMiddleware(t, store, WithClock(clock.Now), WithLifetime(time.Hour))(csApp())
			tok := csMint(t, h, "/set?user=alice&role=admin", "")
			const orig = "new=false role=admin user=alice"
			if code, body := csProbe(h, DefaultCookieName+"="+tok); code != 200 || body != orig {
				t.Fatalf("genuine cookie: %d %q", code, body)
			}
			origData, err := store.Load(ctx, tok)
			if err != nil {
				t.Fatalf("Load(genuine) = %v", err)
			}

			variants := csVariants(k, tok)
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
				if hv := csHTTPValue(v.value); hv != v.value {
					d, err := store.Load(ctx, hv)
					httpOpened = err == nil && bytes.Equal(d, origData)
				}
				code, body := csProbe(h, DefaultCookieName+"="+v.value)
				if code != http.StatusOK {
					t.Errorf("%s: status %d %q, want 200", v.desc, code, body)
					continue
				}
				switch {
				case k.forgeable:
					if body != csFresh && body != orig {
						forged++
					}
				case body == csFresh:
				case body == orig && httpOpened:
				default:
					t.Errorf("%s: session %q, want a fresh one", v.desc, body)
				}
			}
			t.Logf("%d variants; %d non-canonical encodings opened to the genuine bytes; %d accepted with other data (insecure store)",
				len(variants), sameData, forged)

			// Sealed with another key.
			if k.keyed {
				other := csMiddleware(t, csMustStore(t, k, csKeyB), WithClock(clock.Now))(csApp())
				foreign := csMint(t, other, "/set?user=mallory", "")
				if _, err := store.Load(ctx, foreign); !errors.Is(err, ErrNotFound) {
					t.Errorf("Load(other key) = %v, want ErrNotFound", err)
				}
				if code, body := csProbe(h, DefaultCookieName+"="+foreign); code != 200 || body != csFresh {
					t.Errorf("cookie sealed with another key: %d %q, want 200 %q", code, body, csFresh)
				}
			}

			// Expired: the lifetime is enforced from the sealed record,
			// whatever the cookie's Max-Age says.
			clock.Set(time.Unix(1700000000, 0).Add(time.Hour - time.Second))
			if code, body := csProbe(h, DefaultCookieName+"="+tok); code != 200 || body != orig {
				t.Errorf("1s before expiry: %d %q, want 200 %q", code, body, orig)
			}
			clock.Set(time.Unix(1700000000, 0).Add(time.Hour))
			if code, body := csProbe(h, DefaultCookieName+"="+tok); code != 200 || body != csFresh {
				t.Errorf("expired cookie: %d %q, want 200 %q", code, body, csFresh)
			}

			// Several bad cookies of the same name, then the good one.
			clock.Set(time.Unix(1700000000, 0))
			hdr := DefaultCookieName + "=garbage; " + DefaultCookieName + "=" + tok[:len(tok)/2] + "; " + DefaultCookieName + "=" + tok
			if code, body := csProbe(h, hdr); code != 200 || body != orig {
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
	clock := csNewClock()
	h := csMiddleware(t, NewInsecureCookieStore(), WithClock(clock.Now))(csApp())
	forged := `"{\"created\": 1700000000\054 \"session\": {\"user\": \"admin\"}}"`
	code, body := csProbe(h, DefaultCookieName+"="+forged)
	if code != 200 || body != "new=false user=admin" {
		t.Fatalf("forged cookie: %d %q; the insecure store is documented to accept it", code, body)
	}
	// Unquoted raw JSON is accepted as well.
	code, body = csProbe(h, DefaultCookieName+`={"created":1700000000,"session":{"user":"root"}}`)
	if code != 200 || body != "new=false user=root" {
		t.Fatalf("forged raw JSON cookie: %d %q", code, body)
	}
	tok := csMint(t, h, "/set?secret=hunter2", "")
	if !strings.Contains(tok, "hunter2") {
		t.Fatalf("insecure cookie %q does not carry the plain record", tok)
	}
}

// TestCSSignedStoreReadable pins that a signed cookie hides nothing from
// the client, while it cannot be changed.
func TestCSSignedStoreReadable(t *testing.T) {
	h := csMiddleware(t, csMustStore(t, csKindNamed("signed")))(csApp())
	tok := csMint(t, h, "/set?secret=hunter2", "")
	payload, _, _ := strings.Cut(tok, ".")
	plain, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil || !bytes.Contains(plain, []byte("hunter2")) {
		t.Fatalf("signed cookie %q does not carry the readable record (%v)", tok, err)
	}
	// Nor do the encrypted stores show it.
	for _, k := range []csKind{csKindNamed("encrypted"), csKindNamed("nacl")} {
		h := csMiddleware(t, csMustStore(t, k))(csApp())
		tok := csMint(t, h, "/set?secret=hunter2", "")
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
	oldKey, newKey := csKeyA, csKeyB
	for _, k := range csKeyedKinds() {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			hOld := csMiddleware(t, csMustStore(t, k, oldKey))(csApp())
			tokOld := csMint(t, hOld, "/set?user=alice", "")

			both := csMustStore(t, k, newKey, oldKey)
			hBoth := csMiddleware(t, both)(csApp())
			if code, body := csProbe(hBoth, DefaultCookieName+"="+tokOld); code != 200 || body != "new=false user=alice" {
				t.Fatalf("old cookie after rotation: %d %q", code, body)
			}
			tokNew := csMint(t, hBoth, "/set?user=bob", tokOld)

			onlyNew := csMustStore(t, k, newKey)
			data, err := onlyNew.Load(ctx, tokNew)
			if err != nil {
				t.Fatalf("store with only the new key: Load(new cookie) = %v", err)
			}
			var rec Record
			if err := (JSONCodec{}).DecodeRecord(data, &rec); err != nil || string(rec.Values["user"]) != `"bob"` {
				t.Fatalf("new cookie holds %q (%v)", data, err)
			}
			if _, err := csMustStore(t, k, oldKey).Load(ctx, tokNew); !errors.Is(err, ErrNotFound) {
				t.Fatalf("store with only the old key: Load(new cookie) = %v, want ErrNotFound", err)
			}
			// A second rotation step with the keys in the other order
			// still opens both.
			for _, tok := range []string{tokOld, tokNew} {
				if _, err := csMustStore(t, k, oldKey, newKey).Load(ctx, tok); err != nil {
					t.Errorf("(old, new) store: Load = %v", err)
				}
			}

			// Old key dropped.
			hNew := csMiddleware(t, onlyNew)(csApp())
			if code, body := csProbe(hNew, DefaultCookieName+"="+tokOld); code != 200 || body != csFresh {
				t.Errorf("old cookie after the old key was dropped: %d %q, want a fresh session", code, body)
			}
			if code, body := csProbe(hNew, DefaultCookieName+"="+tokNew); code != 200 || body != "new=false user=bob" {
				t.Errorf("new cookie after the old key was dropped: %d %q", code, body)
			}
		})
	}
}

// TestCSKeyValidation: no key, short, long, empty and repeated keys are
// refused with ErrInvalidKey; every accepted length works.
func TestCSKeyValidation(t *testing.T) {
	for _, k := range csKeyedKinds() {
		t.Run(k.name, func(t *testing.T) {
			bad := map[string][][]byte{
				"no key":         nil,
				"nil key":        {nil},
				"empty key":      {{}},
				"short":          {make([]byte, k.minKey-1)},
				"16 bytes":       {make([]byte, 16)},
				"long":           {make([]byte, k.maxKey+1)},
				"128 bytes":      {make([]byte, 128)},
				"duplicate":      {csKeyA, csKeyB, bytes.Clone(csKeyA)},
				"bad second key": {csKeyA, make([]byte, k.minKey-1)},
			}
			for name, keys := range bad {
				s, err := k.build(keys...)
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
				s, err := k.build(key, csKeyC)
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
	for _, k := range csKeyedKinds() {
		key := bytes.Clone(csKeyA)
		s := csMustStore(t, k, key)
		tok, _ := s.Save(ctx, "", []byte("data"), time.Hour)
		for i := range key {
			key[i] = 0
		}
		if data, err := s.Load(ctx, tok); err != nil || string(data) != "data" {
			t.Errorf("%s: after zeroing the caller's key: %q, %v", k.name, data, err)
		}
		tok2, _ := s.Save(ctx, "", []byte("data2"), time.Hour)
		if _, err := csMustStore(t, k, csKeyA).Load(ctx, tok2); err != nil {
			t.Errorf("%s: sealed with a key changed by the caller: %v", k.name, err)
		}
	}
}

// TestCSOversizedSession: a cookie over 4096 bytes is the error handler's
// response, with no Set-Cookie and none of the handler's body; the
// client's previous session is untouched.
func TestCSOversizedSession(t *testing.T) {
	for _, k := range csCookieKinds() {
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
			c := csNewClient(t, k.rawCookies, csMiddleware(t, csMustStore(t, k), WithErrorHandler(eh))(csApp()))
			c.expect("/set?user=alice", 200, "new=true user=alice")
			r := c.get("/big?n=5000")
			if r.status != http.StatusInternalServerError || r.body != "session too large\n" {
				t.Fatalf("oversized: %d %q, want the error handler's 500", r.status, r.body)
			}
			if len(r.setCookie) != 0 {
				t.Fatalf("oversized: Set-Cookie %q sent", r.setCookie)
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
			c.expect("/get", 200, "new=false user=alice")
		})
	}
	// A server-side store keeps large values out of the cookie.
	t.Run("memory", func(t *testing.T) {
		c := csNewClient(t, false, csMiddleware(t, NewMemoryStore())(csApp()))
		r := c.get("/big?n=100000")
		if r.status != 200 || r.body != "SECRET-BODY" || len(r.setCookie) != 1 {
			t.Fatalf("memory store, 100 kB value: %d %q %q", r.status, r.body, r.setCookie)
		}
	})
}

// TestCSCookieSizeBoundary pins the limit exactly with the insecure store,
// whose cookie length is predictable: name "=" value of 4096 bytes is
// accepted and reads back; 4097 is refused.
func TestCSCookieSizeBoundary(t *testing.T) {
	ctx := context.Background()
	clock := csNewClock()
	store := NewInsecureCookieStore()
	h := csMiddleware(t, store, WithClock(clock.Now))(csApp())
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
		value, _, sent := csSetCookie(w.Header())
		switch {
		case n <= limit && (w.Code != 200 || !sent || len(value) != base+n):
			t.Errorf("cookie of %d bytes: %d, sent %v (%d bytes), want 200 with the cookie", size, w.Code, sent, len(value))
		case n > limit && (w.Code != 500 || sent):
			t.Errorf("cookie of %d bytes: %d, sent %v, want 500 and no cookie", size, w.Code, sent)
		case n <= limit:
			code, body := csProbe(h, DefaultCookieName+"="+value)
			if code != 200 || !strings.HasPrefix(body, "new=false big=xxx") {
				t.Errorf("cookie of %d bytes does not read back: %d %.40q", size, code, body)
			}
		}
	}
}

// The aiohttp_session NaCl worked example (aiohttp_session-wire.md §6.4).
const (
	csAiohttpKey   = "Thirty  two  length  bytes  key."
	csAiohttpToken = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXhiEaTCpeLavmGqBg97m2JZNOajbEBqQnCjzbPyAhcyjOW4Tcgtzrow6P5+f4WwXV00xrhrzUXCe7PkES"
	csAiohttpPlain = `{"created": 1700000000, "session": {"a": 1}}`
)

func csAiohttpNonce() *[24]byte {
	var n [24]byte
	for i := range n {
		n[i] = byte(i)
	}
	return &n
}

// TestCSNaClAiohttpWire: the §6.4 token opens to the exact plaintext,
// sealing with the same nonce reproduces it byte for byte, and the session
// inside reads through the middleware.
func TestCSNaClAiohttpWire(t *testing.T) {
	ctx := context.Background()
	key := []byte(csAiohttpKey)
	if len(key) != 32 {
		t.Fatalf("key has %d bytes", len(key))
	}
	store, err := NewNaClCookieStore(key)
	if err != nil {
		t.Fatal(err)
	}
	data, err := store.Load(ctx, csAiohttpToken)
	if err != nil || string(data) != csAiohttpPlain {
		t.Fatalf("Load(aiohttp token) = %q, %v; want %q", data, err, csAiohttpPlain)
	}

	// The format: standard base64 with padding of nonce || secretbox.
	var k32 [32]byte
	copy(k32[:], key)
	box := secretbox.Seal(csAiohttpNonce()[:], []byte(csAiohttpPlain), csAiohttpNonce(), &k32)
	if got := base64.StdEncoding.EncodeToString(box); got != csAiohttpToken {
		t.Fatalf("secretbox with the fixed nonce = %s, want %s", got, csAiohttpToken)
	}
	// The sealer produces that format: its nonce prefix opens the box.
	tok, err := store.Save(ctx, "", []byte(csAiohttpPlain), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(tok)
	if err != nil || len(raw) != 24+secretbox.Overhead+len(csAiohttpPlain) {
		t.Fatalf("sealed token %q: %d raw bytes, %v", tok, len(raw), err)
	}
	var nonce [24]byte
	copy(nonce[:], raw)
	if plain, ok := secretbox.Open(nil, raw[24:], &nonce, &k32); !ok || string(plain) != csAiohttpPlain {
		t.Fatalf("sealer output does not open with plain secretbox: %q %v", plain, ok)
	}
	if tok == csAiohttpToken {
		t.Fatal("sealer reused the example's nonce")
	}

	// The padded variant (45 bytes ⇒ 85 raw ⇒ "=="), also quoted as Python
	// emits it.
	padded := `{"created": 1700000000, "session": {"a": 12}}`
	ptok := base64.StdEncoding.EncodeToString(secretbox.Seal(csAiohttpNonce()[:], []byte(padded), csAiohttpNonce(), &k32))
	if !strings.HasSuffix(ptok, "==") {
		t.Fatalf("padded token %q", ptok)
	}
	if data, err := store.Load(ctx, ptok); err != nil || string(data) != padded {
		t.Fatalf("Load(padded) = %q, %v", data, err)
	}
	if _, err := store.Load(ctx, strings.TrimRight(ptok, "=")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load(unpadded) = %v; Python rejects it too", err)
	}
	if _, err := store.Load(ctx, strings.NewReplacer("+", "-", "/", "_").Replace(csAiohttpToken)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load(urlsafe alphabet) = %v, want ErrNotFound", err)
	}

	// Through the middleware, a minute after aiohttp wrote it.
	clock := csNewClock()
	clock.Set(time.Unix(1700000060, 0))
	var gotA int
	var gotCreated time.Time
	h := csMiddleware(t, store, WithClock(clock.Now))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Get(r)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		gotA, _ = GetAs[int](s, "a")
		gotCreated = s.Created()
		io.WriteString(w, csDump(s))
	}))
	for _, hdr := range []string{"session=" + csAiohttpToken, `session="` + ptok + `"`} {
		code, body := csProbe(h, hdr)
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
	tok = csMint(t, csMiddleware(t, store, WithClock(clock.Now))(csApp()), "/set?b=x", csAiohttpToken)
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
	csSameRecord(t, &in, &out)

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
		t.Errorf("invalid UTF-8 key decoded as %q", csKeysOf(out.Values))
	}

	// Values are not HTML-escaped, matching Python's json.dumps.
	if v, _ := c.EncodeValue("<&>"); string(v) != `"<&>"` {
		t.Errorf(`EncodeValue("<&>") = %s`, v)
	}
}

func csKeysOf(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// csSameRecord compares two records, values by their decoded JSON.
func csSameRecord(t testing.TB, a, b *Record) {
	t.Helper()
	if a.Created.Unix() != b.Created.Unix() || !a.Accessed.Equal(b.Accessed) || a.Lifetime != b.Lifetime {
		t.Errorf("times differ: %v %v %v / %v %v %v", a.Created, a.Accessed, a.Lifetime, b.Created, b.Accessed, b.Lifetime)
	}
	if (a.Persistent == nil) != (b.Persistent == nil) || a.Persistent != nil && *a.Persistent != *b.Persistent {
		t.Errorf("persistent differs: %v / %v", a.Persistent, b.Persistent)
	}
	if len(a.Flashes) != len(b.Flashes) {
		t.Errorf("flashes differ: %q / %q", a.Flashes, b.Flashes)
	} else {
		for i := range a.Flashes {
			if a.Flashes[i] != b.Flashes[i] {
				t.Errorf("flash %d: %q / %q", i, a.Flashes[i], b.Flashes[i])
			}
		}
	}
	if len(a.Values) != len(b.Values) {
		t.Errorf("keys differ: %q / %q", csKeysOf(a.Values), csKeysOf(b.Values))
	}
	for k, va := range a.Values {
		vb, ok := b.Values[k]
		if !ok {
			t.Errorf("key %q lost", k)
			continue
		}
		var x, y any
		errA, errB := json.Unmarshal(va, &x), json.Unmarshal(vb, &y)
		if errA != nil || errB != nil || fmt.Sprintf("%#v", x) != fmt.Sprintf("%#v", y) {
			t.Errorf("key %q: %s / %s", k, va, vb)
		}
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
			clock := csNewClock()
			h := csMiddleware(t, csMustStore(t, csKindNamed("nacl")), WithClock(clock.Now))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
			code, body := csProbe(csMiddleware(t, csMustStore(t, csKindNamed("nacl")), WithClock(clock.Now))(csApp()),
				DefaultCookieName+"="+cookies[0].Value)
			if code != 200 || body != "new=false user=alice" {
				t.Errorf("SetLifetime(%v): two days later: %d %q, want the session", d, code, body)
			}
		})
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
