package httpsession

// The test harness: the helpers that more than one test file uses. The real
// server processes (Redis, Memcached) and the environment that names them
// are in servers_test.go; a helper only one test file uses stays there.

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

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
	v := srvWantVersion(t, b, "k", "v1")
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

// Three distinct 32-byte keys.
var (
	keyA = bytes.Repeat([]byte{0xA1}, 32)
	keyB = bytes.Repeat([]byte{0xB2}, 32)
	keyC = bytes.Repeat([]byte{0xC3}, 32)
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

// httpCookieValue is a cookie value as a server sees it: without surrounding
// blanks and double quotes.
func httpCookieValue(v string) string {
	v = strings.Trim(v, " \t")
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	return v
}
