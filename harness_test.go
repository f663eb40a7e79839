package httpsession

// The test harness: the helpers that more than one test file uses. The real
// server processes (Redis, Memcached) and the environment that names them
// are in servers_test.go; a helper only one test file uses stays there.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// Clock and logs.

// testClock is an injectable clock, safe for concurrent use: the test sets
// and advances it while the middleware and the stores read it through Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

// newTestClock returns a clock at a fixed instant, 2030-01-02 03:04:05 UTC,
// so that expiry arithmetic does not depend on when the test runs.
func newTestClock() *testClock { return testClockAt(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) }

// testClockAt returns a clock stopped at t.
func testClockAt(t time.Time) *testClock { return &testClock{t: t} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// logBuffer collects what concurrent writers write: a slog handler's lines,
// or a child process's output, to check or to show when a test fails.
type logBuffer struct {
	mu sync.Mutex
	b  []byte
	// max, when positive, keeps only the last max bytes: for long runs
	// whose log is only shown on failure.
	max int
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	if over := len(l.b) - l.max; l.max > 0 && over > 0 {
		l.b = l.b[over:]
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// newLogger returns a debug-level text logger and the buffer it writes to.
func newLogger() (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// ---------------------------------------------------------------------------
// Stores under test: the one table of stores, and tokens for them.

// Three distinct 32-byte keys. They look random: a key of one repeated
// byte is refused (see TestWeakKeysRejected).
var (
	keyA = []byte("A1x7Kq9Zt3Lm8Pw2Rv6Ny4Bc0Hs5Dj1F")
	keyB = []byte("B2u5Wg8Tn1Qe4Yk7Ma0Xs3Jd6Vh9Cr2L")
	keyC = []byte("C3p9Hf2Rz6Tb0Nk4Wq8Ey1Gm5Ud7Js3X")
)

// storeKind describes one Store the tests run against: the table every
// test that covers all stores, or picks one by name, takes them from.
type storeKind struct {
	name   string
	keyed  bool // the constructor takes secret keys
	cookie bool // the record travels in the cookie
	// forgeable: anyone can mint a cookie the store accepts (insecure store).
	forgeable bool
	// rawCookies: the cookie is Python-quoted JSON, which net/http's
	// client and cookiejar drop ("\\" and '"' inside the quotes), so the
	// end-to-end tests carry it with a rawJar instead.
	rawCookies bool
	// minKey and maxKey are the accepted key lengths of a keyed store.
	minKey, maxKey int
	// build makes the store with keys; now (nil: real time) is the clock
	// of a store that has one: the memory store's expiry, the timestamp
	// of Fernet tokens.
	build func(now func() time.Time, keys ...[]byte) (Store, error)
	// decode and encode split a cookie value into its raw byte parts (below
	// the text encoding) and join them back, for bit flips of the decoded
	// bytes.
	decode func(string) ([][]byte, bool)
	encode func([][]byte) string
}

func onePart(enc *base64.Encoding) (func(string) ([][]byte, bool), func([][]byte) string) {
	return func(s string) ([][]byte, bool) {
			b, err := enc.DecodeString(s)
			return [][]byte{b}, err == nil
		}, func(p [][]byte) string {
			return enc.EncodeToString(p[0])
		}
}

func storeKinds() []storeKind {
	naclDec, naclEnc := onePart(base64.StdEncoding)
	urlDec, urlEnc := onePart(base64.URLEncoding)
	return []storeKind{
		{
			// The record as Python-quoted JSON: below the text there is
			// only the JSON itself.
			name: "insecure", cookie: true, forgeable: true, rawCookies: true,
			build: func(_ func() time.Time, _ ...[]byte) (Store, error) { return NewInsecureCookieStore(), nil },
			decode: func(s string) ([][]byte, bool) {
				d, err := NewInsecureCookieStore().Load(context.Background(), httpCookieValue(s))
				return [][]byte{d}, err == nil
			},
			encode: func(p [][]byte) string {
				tok, _ := NewInsecureCookieStore().Save(context.Background(), "", p[0], time.Hour)
				return tok
			},
		},
		{
			name: "signed", keyed: true, cookie: true, minKey: 32, maxKey: 64,
			build: func(_ func() time.Time, keys ...[]byte) (Store, error) { return NewSignedCookieStore(keys...) },
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
			build:  func(_ func() time.Time, keys ...[]byte) (Store, error) { return NewEncryptedCookieStore(keys...) },
			decode: urlDec, encode: urlEnc,
		},
		{
			name: "nacl", keyed: true, cookie: true, minKey: 32, maxKey: 32,
			build:  func(_ func() time.Time, keys ...[]byte) (Store, error) { return NewNaClCookieStore(keys...) },
			decode: naclDec, encode: naclEnc,
		},
		{
			name: "fernet", keyed: true, cookie: true, minKey: 32, maxKey: 32,
			build: func(now func() time.Time, keys ...[]byte) (Store, error) {
				s, err := NewFernetCookieStore(keys...)
				if err == nil && now != nil {
					s.sealer.(*fernetSealer).now = now
				}
				return s, err
			},
			decode: urlDec, encode: urlEnc,
		},
		{
			name: "memory",
			build: func(now func() time.Time, _ ...[]byte) (Store, error) {
				return NewServerStore(NewMemoryBackend(0, now)), nil
			},
		},
	}
}

func kindNamed(name string) storeKind {
	for _, k := range storeKinds() {
		if k.name == name {
			return k
		}
	}
	panic("no store kind " + name)
}

func cookieKinds() []storeKind {
	var out []storeKind
	for _, k := range storeKinds() {
		if k.cookie {
			out = append(out, k)
		}
	}
	return out
}

func keyedKinds() []storeKind {
	var out []storeKind
	for _, k := range storeKinds() {
		if k.keyed {
			out = append(out, k)
		}
	}
	return out
}

// mustStore builds k's store with keys (keyA when none), on real time.
func mustStore(t testing.TB, k storeKind, keys ...[]byte) Store {
	t.Helper()
	return mustStoreAt(t, k, nil, keys...)
}

// mustStoreAt builds k's store with keys (keyA when none) on the clock now.
func mustStoreAt(t testing.TB, k storeKind, now func() time.Time, keys ...[]byte) Store {
	t.Helper()
	if len(keys) == 0 {
		keys = [][]byte{keyA}
	}
	s, err := k.build(now, keys...)
	if err != nil {
		t.Fatalf("%s: build store: %v", k.name, err)
	}
	return s
}

// The worked examples of aiohttp_session-wire.md share a key and a record:
// §6.3 seals it with Fernet (fernet_store_test.go), §6.4 with NaCl, whose
// token, made with the nonce 0, 1, 2, ..., 23, is aiohttpToken.
const (
	aiohttpKey   = "Thirty  two  length  bytes  key."
	aiohttpToken = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXhiEaTCpeLavmGqBg97m2JZNOajbEBqQnCjzbPyAhcyjOW4Tcgtzrow6P5+f4WwXV00xrhrzUXCe7PkES"
	aiohttpPlain = `{"created": 1700000000, "session": {"a": 1}}`
)

// aiohttpNonce is the nonce of aiohttpToken.
func aiohttpNonce() *[24]byte {
	var n [24]byte
	for i := range n {
		n[i] = byte(i)
	}
	return &n
}

// insecureToken builds a cookie value that NewInsecureCookieStore opens:
// a live record created at created holding values. Send it with a raw
// Cookie header: it is Python-quoted JSON, which http.Cookie would mangle.
func insecureToken(t *testing.T, created time.Time, values map[string]any) string {
	t.Helper()
	return sealToken(t, NewInsecureCookieStore(), created, values)
}

// sealToken saves a live record created at created holding values in store
// and returns its cookie value.
func sealToken(t *testing.T, store Store, created time.Time, values map[string]any) string {
	t.Helper()
	rec := Record{Created: created, Values: map[string][]byte{}}
	for k, v := range values {
		raw, err := JSONCodec{}.EncodeValue(v)
		if err != nil {
			t.Fatal(err)
		}
		rec.Values[k] = raw
	}
	data, err := JSONCodec{}.EncodeRecord(&rec)
	if err != nil {
		t.Fatal(err)
	}
	token, err := store.Save(context.Background(), "", data, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// errCause is the root cause the failing stores report.
var errCause = errors.New("backend exploded at 10.0.0.7:6379")

// ---------------------------------------------------------------------------
// Counting stores and backends.

// countingStore counts the calls that reach a Store. It is not a
// *ServerStore, so Session.ID stays empty behind it: use a countingBackend
// where the ID matters.
type countingStore struct {
	Store
	loads, saves, deletes atomic.Int64
}

func (s *countingStore) Load(ctx context.Context, token string) ([]byte, error) {
	s.loads.Add(1)
	return s.Store.Load(ctx, token)
}

func (s *countingStore) Save(ctx context.Context, token string, data []byte, ttl time.Duration) (string, error) {
	s.saves.Add(1)
	return s.Store.Save(ctx, token, data, ttl)
}

func (s *countingStore) Delete(ctx context.Context, token string) error {
	s.deletes.Add(1)
	return s.Store.Delete(ctx, token)
}

// calls is the number of calls that reached the store.
func (s *countingStore) calls() int64 { return s.loads.Load() + s.saves.Load() + s.deletes.Load() }

// countingBackend counts the calls that reach a Backend, so tests can
// assert round trips; remembers the keys it created, to find leftovers, and
// the last value written; and fails every write with failWrite when that is
// set (before the first request). Hand a ServerStore c.counted(), not c:
// over a ConditionalBackend that is the countingConditional that also
// counts GetVersion and ReplaceIf.
type countingBackend struct {
	Backend
	gets, adds, replaces, deletes atomic.Int64

	mu        sync.Mutex
	added     []string
	last      []byte
	failWrite error
}

// counts is a snapshot of a countingBackend's counters.
type counts struct{ gets, adds, replaces, deletes int64 }

func (c counts) total() int64  { return c.gets + c.writes() }
func (c counts) writes() int64 { return c.adds + c.replaces + c.deletes }

func (c *countingBackend) snapshot() counts {
	return counts{c.gets.Load(), c.adds.Load(), c.replaces.Load(), c.deletes.Load()}
}

func (c *countingBackend) since(before counts) counts {
	now := c.snapshot()
	return counts{now.gets - before.gets, now.adds - before.adds, now.replaces - before.replaces, now.deletes - before.deletes}
}

func (c *countingBackend) total() int64 { return c.snapshot().total() }

// write records value as the last one written, or fails with failWrite.
func (c *countingBackend) write(value []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failWrite != nil {
		return c.failWrite
	}
	c.last = bytes.Clone(value)
	return nil
}

func (c *countingBackend) Get(ctx context.Context, key string) ([]byte, error) {
	c.gets.Add(1)
	return c.Backend.Get(ctx, key)
}

func (c *countingBackend) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	c.adds.Add(1)
	if err := c.write(value); err != nil {
		return err
	}
	err := c.Backend.Add(ctx, key, value, ttl)
	if err == nil {
		c.mu.Lock()
		c.added = append(c.added, key)
		c.mu.Unlock()
	}
	return err
}

func (c *countingBackend) Replace(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	c.replaces.Add(1)
	if err := c.write(value); err != nil {
		return err
	}
	return c.Backend.Replace(ctx, key, value, ttl)
}

func (c *countingBackend) Delete(ctx context.Context, key string) error {
	c.deletes.Add(1)
	return c.Backend.Delete(ctx, key)
}

// countingConditional is a countingBackend over a ConditionalBackend. It is
// a type of its own so that a counted Backend is a ConditionalBackend
// exactly when the Backend it counts is one: a type assertion on the
// wrapper then answers as it would on the Backend. GetVersion counts as a
// get and ReplaceIf as a replace (a nil value too: it is one conditional
// write, a cas on Memcached), so writes() and total() still count round
// trips.
type countingConditional struct{ *countingBackend }

func (c countingConditional) GetVersion(ctx context.Context, key string) ([]byte, uint64, error) {
	c.gets.Add(1)
	return c.Backend.(ConditionalBackend).GetVersion(ctx, key)
}

func (c countingConditional) ReplaceIf(ctx context.Context, key string, version uint64, value []byte, ttl time.Duration) ([]byte, uint64, error) {
	c.replaces.Add(1)
	if value != nil {
		if err := c.write(value); err != nil {
			return nil, 0, err
		}
	}
	return c.Backend.(ConditionalBackend).ReplaceIf(ctx, key, version, value, ttl)
}

// counted returns the Backend that counts into c: c itself, or c as a
// countingConditional when the Backend it counts is a ConditionalBackend.
func (c *countingBackend) counted() Backend {
	if _, ok := c.Backend.(ConditionalBackend); ok {
		return countingConditional{c}
	}
	return c
}

func (c *countingBackend) addedKeys() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.added)
}

// liveKeys counts the keys this backend created that still exist.
func (c *countingBackend) liveKeys(t *testing.T) int {
	t.Helper()
	n := 0
	for _, k := range c.addedKeys() {
		_, err := c.Backend.Get(t.Context(), k)
		switch {
		case err == nil:
			n++
		case !errors.Is(err, ErrNotFound):
			t.Fatalf("get %q: %v", k, err)
		}
	}
	return n
}

// deleteAdded removes every key this backend created (test cleanup).
func (c *countingBackend) deleteAdded() {
	for _, k := range c.addedKeys() {
		_ = c.Backend.Delete(context.Background(), k)
	}
}

// lastWritten is the last value written (Add, Replace, ReplaceIf).
func (c *countingBackend) lastWritten() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.last)
}

// memory is the MemoryBackend c counts, for the tests that made c over one.
func (c *countingBackend) memory() *MemoryBackend { return c.Backend.(*MemoryBackend) }

// Len is the number of live records in the MemoryBackend c counts.
func (c *countingBackend) Len() int { return c.memory().Len() }

// sessions counts the live records in the MemoryBackend c counts that are
// sessions, not the forwarding records a renewal leaves under the old ID.
func (c *countingBackend) sessions() int {
	m := c.memory()
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	for _, it := range m.items {
		if it.live(m.now()) && !isMoved(it.value) {
			n++
		}
	}
	return n
}

// countedMemoryStore returns a ServerStore over a MemoryBackend on the
// clock now (nil: real time) whose calls are counted.
func countedMemoryStore(now func() time.Time) (*ServerStore, *countingBackend) {
	c := &countingBackend{Backend: NewMemoryBackend(0, now)}
	return NewServerStore(c.counted()), c
}

// withCounting returns a copy of s whose backend calls are counted.
func withCounting(s *ServerStore) (*ServerStore, *countingBackend) {
	c := &countingBackend{Backend: s.backend}
	cp := *s
	cp.backend = c.counted().(ConditionalBackend) // s.backend is one: see NewServerStore
	return &cp, c
}

// TestCountingConditional checks the counting wrapper itself: it is a
// ConditionalBackend exactly when the Backend it counts is one, and counts
// GetVersion as a get and ReplaceIf as a replace.
func TestCountingConditional(t *testing.T) {
	t.Parallel()
	plain := &countingBackend{Backend: struct{ Backend }{NewMemoryBackend(0, nil)}}
	if _, ok := plain.counted().(ConditionalBackend); ok {
		t.Fatal("counted plain Backend claims to be a ConditionalBackend")
	}
	s, c := withCounting(NewMemoryStore())
	b, ok := s.backend.(countingConditional)
	if !ok {
		t.Fatalf("counted MemoryBackend %T is not a countingConditional", s.backend)
	}
	ctx := t.Context()
	if err := b.Add(ctx, "k", []byte("v1"), time.Minute); err != nil {
		t.Fatal(err)
	}
	v := wantVersion(t, b, "k", "v1")
	if _, _, err := b.ReplaceIf(ctx, "k", v, []byte("v2"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.ReplaceIf(ctx, "k", v, nil, time.Minute); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale conditional delete = %v, want ErrConflict", err)
	}
	if got, want := c.snapshot(), (counts{gets: 1, adds: 1, replaces: 2}); got != want {
		t.Fatalf("counts %+v, want %+v", got, want)
	}
	if got := c.snapshot(); got.writes() != 3 || got.total() != 4 {
		t.Fatalf("writes %d total %d, want 3 and 4", got.writes(), got.total())
	}
}

// ---------------------------------------------------------------------------
// Cookies and browsers.

// parseSetCookie parses a Set-Cookie line leniently: unlike
// http.ParseSetCookie it keeps values net/http refuses (the insecure
// store's Python-quoted JSON) verbatim, quotes included. Max-Age <= 0
// parses as MaxAge -1, as net/http has it.
func parseSetCookie(line string) *http.Cookie {
	parts := strings.Split(line, ";")
	name, value, ok := strings.Cut(strings.TrimSpace(parts[0]), "=")
	if !ok || name == "" {
		return nil
	}
	c := &http.Cookie{Name: name, Value: value, Raw: line}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch strings.ToLower(k) {
		case "path":
			c.Path = v
		case "domain":
			c.Domain = v
		case "max-age":
			if n, err := strconv.Atoi(v); err == nil {
				c.MaxAge = max(n, -1)
				if n == 0 {
					c.MaxAge = -1
				}
			}
		case "expires":
			c.Expires, _ = http.ParseTime(v)
		case "httponly":
			c.HttpOnly = true
		case "secure":
			c.Secure = true
		case "samesite":
			switch strings.ToLower(v) {
			case "lax":
				c.SameSite = http.SameSiteLaxMode
			case "strict":
				c.SameSite = http.SameSiteStrictMode
			case "none":
				c.SameSite = http.SameSiteNoneMode
			}
		case "partitioned":
			c.Partitioned = true
		}
	}
	return c
}

// setCookie returns the last Set-Cookie for name in h, parsed, and its raw
// line; nil and "" when there is none.
func setCookie(h http.Header, name string) (*http.Cookie, string) {
	var found *http.Cookie
	var raw string
	for _, line := range h.Values("Set-Cookie") {
		if c := parseSetCookie(line); c != nil && c.Name == name {
			found, raw = c, line
		}
	}
	return found, raw
}

// isDeletion reports whether a Set-Cookie removes the cookie.
func isDeletion(c *http.Cookie) bool { return c.MaxAge < 0 || c.Value == "" || c.Value == `""` }

// countSetCookies counts the Set-Cookie lines for name.
func countSetCookies(h http.Header, name string) int {
	n := 0
	for _, line := range h.Values("Set-Cookie") {
		if strings.HasPrefix(line, name+"=") {
			n++
		}
	}
	return n
}

// varyCookieCount counts "Cookie" tokens across all Vary headers.
func varyCookieCount(h http.Header) int {
	n := 0
	for _, v := range h.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), "Cookie") {
				n++
			}
		}
	}
	return n
}

// httpCookieValue is a cookie value as a server sees it: without surrounding
// blanks and double quotes.
func httpCookieValue(v string) string {
	v = strings.Trim(v, " \t")
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	return v
}

// rawJar keeps one cookie's value byte for byte, as a browser does, where
// net/http's client and cookiejar drop Python-quoted values ("\\" and '"'
// inside the quotes) such as the insecure store's. It honours deletions
// but, like a client replaying a cookie, not a positive Max-Age: the
// servers must enforce expiry themselves.
type rawJar struct {
	name string
	next http.RoundTripper

	mu    sync.Mutex
	value string
}

func (j *rawJar) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if v := j.get(); v != "" {
		r.Header.Set("Cookie", j.name+"="+v)
	}
	resp, err := j.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if c, _ := setCookie(resp.Header, j.name); c != nil {
		v := c.Value
		if isDeletion(c) {
			v = ""
		}
		j.set(v)
	}
	return resp, nil
}

func (j *rawJar) get() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.value
}

func (j *rawJar) set(v string) {
	j.mu.Lock()
	j.value = v
	j.mu.Unlock()
}

// browser holds one visitor's session cookie for the servers at url (a
// cookie ignores ports, so one browser can visit two servers on
// 127.0.0.1): in net/http's cookiejar, or, for raw, in a rawJar.
type browser struct {
	url    *url.URL
	name   string // the session cookie's
	client *http.Client
	jar    *cookiejar.Jar // nil when raw
	raw    *rawJar        // nil unless raw
}

func newBrowser(rawURL, name string, raw bool) *browser {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err) // the tests' own URLs
	}
	b := &browser{url: u, name: name}
	if raw {
		b.raw = &rawJar{name: name, next: http.DefaultTransport}
		b.client = &http.Client{Transport: b.raw}
		return b
	}
	b.jar, _ = cookiejar.New(nil) // fails only for options given
	b.client = &http.Client{Jar: b.jar}
	return b
}

// cookie returns the session cookie's value as the browser would send it,
// quotes included; "" when it holds none.
func (b *browser) cookie() string {
	if b.raw != nil {
		return b.raw.get()
	}
	for _, c := range b.jar.Cookies(b.url) {
		if c.Name == b.name {
			if c.Quoted {
				return `"` + c.Value + `"`
			}
			return c.Value
		}
	}
	return ""
}

// setCookie replaces the session cookie ("" removes it), as a client
// replaying or tampering with a cookie would.
func (b *browser) setCookie(v string) {
	if b.raw != nil {
		b.raw.set(v)
		return
	}
	c := &http.Cookie{Name: b.name, Path: "/"}
	if v == "" {
		c.MaxAge = -1
	} else if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		c.Value, c.Quoted = v[1:len(v)-1], true
	} else {
		c.Value = v
	}
	b.jar.SetCookies(b.url, []*http.Cookie{c})
}

// ---------------------------------------------------------------------------
// The middleware and the test app.

// newMiddleware returns Middleware(store, opts...) with a debug logger
// whose last lines are shown if the test fails; opts may replace it.
func newMiddleware(tb testing.TB, store Store, opts ...Option) func(http.Handler) http.Handler {
	tb.Helper()
	logger, logs := newLogger()
	logs.max = 64 << 10 // only shown on failure: fuzzers and sweeps log a lot
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("middleware log:\n%s", logs)
		}
	})
	mw, err := Middleware(store, append([]Option{WithLogger(logger)}, opts...)...)
	if err != nil {
		tb.Fatalf("Middleware: %v", err)
	}
	return mw
}

// testApp is a real HTTP server running the middleware around a handler.
// served receives once per request after the middleware's ServeHTTP
// returned (the recovered panic value, or nil), so that a test can look at
// the store and the log only when a request is really over.
type testApp struct {
	srv    *httptest.Server
	mux    *http.ServeMux // newApp's routes, to which a test may add its own
	served chan any
	log    *logBuffer // the middleware's log, shown if the test fails
}

// startApp starts h behind Middleware(store, opts...). A logger writing to
// app.log comes first, so opts may replace it.
func startApp(t *testing.T, store Store, h http.Handler, opts ...Option) *testApp {
	t.Helper()
	return serveApp(t, store, h, nil, opts...)
}

// newApp starts appRoutes behind the middleware, as a development setup
// would serve them: over plain HTTP.
func newApp(t *testing.T, store Store, opts ...Option) *testApp {
	t.Helper()
	return newAppWrapped(t, store, nil, opts...)
}

// newAppWrapped is newApp with outer (if not nil) wrapped around the
// middleware, to see requests before it does.
func newAppWrapped(t *testing.T, store Store, outer func(http.Handler) http.Handler, opts ...Option) *testApp {
	t.Helper()
	mux := appRoutes()
	a := serveApp(t, store, mux, outer, append([]Option{WithSecure(false)}, opts...)...)
	a.mux = mux
	return a
}

func serveApp(t *testing.T, store Store, h http.Handler, outer func(http.Handler) http.Handler, opts ...Option) *testApp {
	t.Helper()
	logger, logs := newLogger()
	mw, err := Middleware(store, append([]Option{WithLogger(logger)}, opts...)...)
	if err != nil {
		t.Fatalf("Middleware: %v", err)
	}
	h = mw(h)
	if outer != nil {
		h = outer(h)
	}
	a := &testApp{served: make(chan any, 4096), log: logs}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p any
		defer func() {
			select {
			case a.served <- p:
			default: // requests nobody waits for (concurrent load) filled it
			}
			if p != nil {
				panic(p)
			}
		}()
		defer func() { p = recover() }()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		a.srv.Close()
		if t.Failed() {
			t.Logf("middleware log:\n%s", logs)
		}
	})
	return a
}

// wait blocks until the middleware finished one request and returns the
// panic value it recovered, if any.
func (a *testApp) wait(t *testing.T) any {
	t.Helper()
	select {
	case p := <-a.served:
		return p
	case <-time.After(10 * time.Second): // hang guard, not a timing assertion
		t.Fatal("handler did not return")
		return nil
	}
}

// do sends GET path with c (nil: the server's own client, which has no
// cookie jar) plus cookies, verbatim, reads the whole response and waits
// until the middleware finished the request.
func (a *testApp) do(t *testing.T, c *http.Client, path string, cookies ...*http.Cookie) response {
	t.Helper()
	if c == nil {
		c = a.srv.Client()
	}
	req, err := http.NewRequest(http.MethodGet, a.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ck := range cookies { // verbatim: AddCookie would re-quote
		req.Header.Add("Cookie", ck.Name+"="+ck.Value)
	}
	r := readResponse(c.Do(req))
	if r.err != nil {
		t.Fatalf("GET %s: %v", path, r.err)
	}
	if p := a.wait(t); p != nil {
		t.Fatalf("GET %s: handler panicked: %v", path, p)
	}
	return r
}

// getWithCookie sends GET path carrying the session cookie ("" for none),
// without a jar.
func (a *testApp) getWithCookie(t *testing.T, path, cookie string) response {
	t.Helper()
	var cookies []*http.Cookie
	if cookie != "" {
		cookies = append(cookies, &http.Cookie{Name: DefaultCookieName, Value: cookie})
	}
	return a.do(t, nil, path, cookies...)
}

// getAs sends GET path from the sender the round-trip scenarios name:
// "jar", cl with the session in its jar; "unknown", a well-formed ID that
// names no session; "", nobody with a cookie.
func (a *testApp) getAs(t *testing.T, cl *http.Client, sender, path string) response {
	t.Helper()
	switch sender {
	case "jar":
		return a.do(t, cl, path)
	case "unknown":
		return a.getWithCookie(t, path, newID())
	default:
		return a.getWithCookie(t, path, "")
	}
}

// cookie returns the session cookie that cl's jar holds for the app.
func (a *testApp) cookie(t *testing.T, cl *http.Client) string {
	t.Helper()
	u, _ := url.Parse(a.srv.URL)
	for _, c := range cl.Jar.Cookies(u) {
		if c.Name == DefaultCookieName {
			return c.Value
		}
	}
	t.Fatal("no session cookie in the jar")
	return ""
}

// response is a response read to the end.
type response struct {
	status int
	body   string
	header http.Header
	cookie *http.Cookie // the session's Set-Cookie (DefaultCookieName), if any
	err    error
}

// setCookie returns the Set-Cookie for name, parsed, and its raw line.
func (r response) setCookie(name string) (*http.Cookie, string) { return setCookie(r.header, name) }

// setCookies returns the raw Set-Cookie lines.
func (r response) setCookies() []string { return r.header.Values("Set-Cookie") }

func readResponse(resp *http.Response, err error) response {
	if err != nil {
		return response{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, body: string(body), header: resp.Header, err: err}
	r.cookie, _ = r.setCookie(DefaultCookieName)
	return r
}

// jarClient returns an HTTP client with its own cookie jar and connections.
func jarClient(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil) // fails only for options given
	// Enough idle connections for the concurrent tests: with net/http's
	// default of 2 per host, most requests would open (and leave in
	// TIME_WAIT) a connection of their own.
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Jar: jar, Transport: tr, Timeout: 30 * time.Second}
}

// visitor is a browser on one app.
type visitor struct {
	app *testApp
	*browser
}

// visitor returns a new browser on a; a raw one sends its cookie value back
// verbatim, whatever the store's format.
func (a *testApp) visitor(raw bool) *visitor {
	return &visitor{app: a, browser: newBrowser(a.srv.URL, DefaultCookieName, raw)}
}

func (v *visitor) get(t *testing.T, path string) response {
	t.Helper()
	return v.app.do(t, v.client, path)
}

// expect GETs path and fails the test unless the answer is status and body.
func (v *visitor) expect(t *testing.T, path string, status int, body string) response {
	t.Helper()
	r := v.get(t, path)
	if r.status != status || r.body != body {
		t.Fatalf("GET %s = %d %q, want %d %q", path, r.status, r.body, status, body)
	}
	return r
}

// appRoutes is the application newApp serves:
//
//	/untouched       never calls Get; writes ok
//	/get             writes the session (dumpSession)
//	/get?k=K         writes K's string value
//	/set?k=K&v=V     sets K to V (k and v may repeat, paired in order), then
//	                 writes the session
//	/incr            increments the integer n, then writes the session
//	/renew           NewIdentity; writes the new ID
//	/logout          Invalidate; writes bye
//	/big?n=N         sets big to N bytes, then writes SECRET-BODY
//
// A route whose Get fails writes nothing: the middleware's error handler
// answers instead.
func appRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/untouched", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})
	handle := func(pattern string, fn func(w http.ResponseWriter, r *http.Request, s *Session)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if s, err := Get(r); err == nil {
				fn(w, r, s)
			}
		})
	}
	handle("/get", func(w http.ResponseWriter, r *http.Request, s *Session) {
		if q := r.URL.Query(); q.Has("k") {
			v, _ := GetAs[string](s, q.Get("k"))
			_, _ = io.WriteString(w, v)
			return
		}
		_, _ = io.WriteString(w, dumpSession(s))
	})
	handle("/set", func(w http.ResponseWriter, r *http.Request, s *Session) {
		q := r.URL.Query()
		for i, k := range q["k"] {
			if err := s.Set(k, q["v"][i]); err != nil {
				http.Error(w, "set: "+err.Error(), http.StatusInternalServerError)
				return
			}
		}
		_, _ = io.WriteString(w, dumpSession(s))
	})
	handle("/incr", func(w http.ResponseWriter, r *http.Request, s *Session) {
		n, _ := GetAs[int](s, "n")
		if err := s.Set("n", n+1); err != nil {
			http.Error(w, "set: "+err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, dumpSession(s))
	})
	handle("/renew", func(w http.ResponseWriter, r *http.Request, s *Session) {
		s.NewIdentity()
		w.WriteHeader(http.StatusOK) // commits: the new ID is known now
		_, _ = io.WriteString(w, s.ID())
	})
	handle("/logout", func(w http.ResponseWriter, r *http.Request, s *Session) {
		s.Invalidate()
		_, _ = io.WriteString(w, "bye")
	})
	handle("/big", func(w http.ResponseWriter, r *http.Request, s *Session) {
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

func identityRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/login", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("user", "ann")
		_ = s.Set("cart", 3)
	}))
	mux.Handle("/whoami", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		fmt.Fprintf(w, "user=%v cart=%v new=%v id=%s", s.Get("user"), s.Get("cart"), s.IsNew(), s.ID())
	}))
	mux.Handle("/logout", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		s.Invalidate()
		fmt.Fprintf(w, "len=%d user=%v", s.Len(), s.Get("user"))
	}))
	mux.Handle("/relogin", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		s.Invalidate()
		_ = s.Set("user", "bob")
		fmt.Fprintf(w, "new=%v cart=%v", s.IsNew(), s.Get("cart"))
	}))
	mux.Handle("/renew", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		s.NewIdentity()
	}))
	mux.HandleFunc("/fresh", func(w http.ResponseWriter, r *http.Request) {
		s, err := NewSession(r)
		if err != nil {
			http.Error(w, err.Error(), 599)
			return
		}
		msg := fmt.Sprintf("len=%d new=%v", s.Len(), s.IsNew())
		if r.URL.Query().Has("bob") {
			_ = s.Set("user", "bob")
		}
		_, _ = io.WriteString(w, msg)
	})
	return mux
}

func loginCookie(t *testing.T, app *testApp) *http.Cookie {
	t.Helper()
	r := app.do(t, nil, "/login")
	ck, _ := r.setCookie("session")
	if ck == nil {
		t.Fatalf("login set no cookie: %v", r.header)
	}
	return &http.Cookie{Name: "session", Value: ck.Value}
}

// freshSession is what dumpSession writes for a new, empty session.
const freshSession = "new=true"

// dumpSession renders a session deterministically: "new=<bool>", then its
// keys in order with their values.
func dumpSession(s *Session) string {
	var b strings.Builder
	fmt.Fprintf(&b, "new=%v", s.IsNew())
	for _, k := range s.Keys() {
		fmt.Fprintf(&b, " %s=%v", k, s.Get(k))
	}
	return b.String()
}

// withSession wraps a handler that needs the session; a Get error answers
// 599 so that tests notice it (the middleware's error handler runs first).
func withSession(fn func(w http.ResponseWriter, r *http.Request, s *Session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := Get(r)
		if err != nil {
			http.Error(w, "get: "+err.Error(), 599)
			return
		}
		fn(w, r, s)
	}
}

// probe runs one GET /get in process with a raw Cookie header (any bytes,
// no client-side validation) and returns the status and body.
func probe(h http.Handler, cookieHeader string) (int, string) {
	r := httptest.NewRequest("GET", "http://127.0.0.1/get", nil)
	if cookieHeader != "" {
		r.Header.Set("Cookie", cookieHeader)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

// mint runs path in process (with an optional session cookie value) and
// returns the session cookie value the response sets.
func mint(t testing.TB, h http.Handler, path, cookie string) string {
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
	if c, _ := setCookie(w.Header(), DefaultCookieName); c != nil && !isDeletion(c) {
		return c.Value
	}
	t.Fatalf("GET %s set no session cookie (headers %v)", path, w.Header())
	return ""
}

// discardWriter is an allocation-free ResponseWriter, so that benchmarks
// and AllocsPerRun measure the middleware rather than a recorder.
type discardWriter struct {
	h    http.Header
	code int
	n    int // bytes written
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

func (w *discardWriter) reset() {
	clear(w.h)
	w.code, w.n = 0, 0
}

// handlerErrors collects what handler goroutines observed (an error from
// the session API, a failed check) for the test goroutine to report.
type handlerErrors struct {
	mu   sync.Mutex
	errs []error
}

// add records err unless it is nil.
func (o *handlerErrors) add(err error) {
	if err == nil {
		return
	}
	o.mu.Lock()
	o.errs = append(o.errs, err)
	o.mu.Unlock()
}

func (o *handlerErrors) errorf(format string, a ...any) { o.add(fmt.Errorf(format, a...)) }

// all returns what was recorded so far.
func (o *handlerErrors) all() []error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.errs)
}

// report fails the test with each error recorded since the last report.
func (o *handlerErrors) report(t *testing.T) {
	t.Helper()
	o.mu.Lock()
	errs := o.errs
	o.errs = nil
	o.mu.Unlock()
	for _, err := range errs {
		t.Error(err)
	}
}

// ---------------------------------------------------------------------------
// Records.

// sameJSON reports whether a and b are equal JSON documents.
func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return fmt.Sprintf("%#v", x) == fmt.Sprintf("%#v", y)
}

// recordDiff describes how b differs from a, "" when it does not: the
// creation time to the second, the other metadata exactly, the values by
// sameValue.
func recordDiff(a, b *Record, sameValue func(a, b []byte) bool) string {
	if a.Created.Unix() != b.Created.Unix() || !a.Accessed.Equal(b.Accessed) || a.Lifetime != b.Lifetime {
		return fmt.Sprintf("times differ: %v %v %v / %v %v %v", a.Created, a.Accessed, a.Lifetime, b.Created, b.Accessed, b.Lifetime)
	}
	if (a.Persistent == nil) != (b.Persistent == nil) || a.Persistent != nil && *a.Persistent != *b.Persistent {
		return fmt.Sprintf("persistent differs: %v / %v", a.Persistent, b.Persistent)
	}
	if !slices.Equal(a.Flashes, b.Flashes) {
		return fmt.Sprintf("flashes differ: %.300q / %.300q", a.Flashes, b.Flashes)
	}
	if len(a.Values) != len(b.Values) {
		return fmt.Sprintf("keys differ: %.300q / %.300q", keysOf(a.Values), keysOf(b.Values))
	}
	for k, va := range a.Values {
		vb, ok := b.Values[k]
		if !ok || !sameValue(va, vb) {
			return fmt.Sprintf("value of %.300q: %.300q / %.300q (present: %v)", k, va, vb, ok)
		}
	}
	return ""
}

// keysOf returns m's keys, sorted.
func keysOf(m map[string][]byte) []string { return slices.Sorted(maps.Keys(m)) }
