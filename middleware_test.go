package httpsession

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"
)

// ---------------------------------------------------------------------------
// Shared test helpers (used by middleware_test.go, writer_test.go,
// session_test.go, and the clock and log buffer by the cookie store and
// interop tests too). Every file-scope name starts with "mw".

// errMwCause is the root cause the failing stores report.
var errMwCause = errors.New("mw: backend exploded at 10.0.0.7:6379")

// mwClock is an injectable clock, safe for concurrent use.
type mwClock struct {
	mu sync.Mutex
	t  time.Time
}

func mwNewClock() *mwClock { return &mwClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *mwClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *mwClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *mwClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// mwLogBuf is a concurrency-safe buffer: behind a slog text handler, or
// collecting a child process's output to show when a test fails.
type mwLogBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *mwLogBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *mwLogBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func mwLogger() (*slog.Logger, *mwLogBuf) {
	buf := &mwLogBuf{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// mwCountingStore wraps a Store and counts its calls. It is not a
// *ServerStore, so use mwCountingBackend where Session.ID matters.
type mwCountingStore struct {
	Store
	loads, saves, deletes atomic.Int64
	mu                    sync.Mutex
	lastSaved             []byte
	lastSaveToken         string
}

func (s *mwCountingStore) Load(ctx context.Context, token string) ([]byte, error) {
	s.loads.Add(1)
	return s.Store.Load(ctx, token)
}

func (s *mwCountingStore) Save(ctx context.Context, token string, data []byte, ttl time.Duration) (string, error) {
	s.saves.Add(1)
	s.mu.Lock()
	s.lastSaved, s.lastSaveToken = bytes.Clone(data), token
	s.mu.Unlock()
	return s.Store.Save(ctx, token, data, ttl)
}

func (s *mwCountingStore) Delete(ctx context.Context, token string) error {
	s.deletes.Add(1)
	return s.Store.Delete(ctx, token)
}

// mwCountingBackend wraps a MemoryBackend, counts calls, remembers the last
// written value and can be told to fail writes.
type mwCountingBackend struct {
	*MemoryBackend
	gets, adds, replaces, deletes atomic.Int64
	mu                            sync.Mutex
	last                          []byte
	failWrite                     error
}

func mwNewBackend(now func() time.Time) *mwCountingBackend {
	return &mwCountingBackend{MemoryBackend: NewMemoryBackend(0, now)}
}

func (b *mwCountingBackend) Get(ctx context.Context, key string) ([]byte, error) {
	b.gets.Add(1)
	return b.MemoryBackend.Get(ctx, key)
}

func (b *mwCountingBackend) write(value []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failWrite != nil {
		return b.failWrite
	}
	b.last = bytes.Clone(value)
	return nil
}

func (b *mwCountingBackend) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	b.adds.Add(1)
	if err := b.write(value); err != nil {
		return err
	}
	return b.MemoryBackend.Add(ctx, key, value, ttl)
}

func (b *mwCountingBackend) Replace(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	b.replaces.Add(1)
	if err := b.write(value); err != nil {
		return err
	}
	return b.MemoryBackend.Replace(ctx, key, value, ttl)
}

func (b *mwCountingBackend) Delete(ctx context.Context, key string) error {
	b.deletes.Add(1)
	return b.MemoryBackend.Delete(ctx, key)
}

func (b *mwCountingBackend) GetVersion(ctx context.Context, key string) ([]byte, uint64, error) {
	b.gets.Add(1)
	return b.MemoryBackend.GetVersion(ctx, key)
}

// ReplaceIf counts a conditional delete (nil value) as a delete.
func (b *mwCountingBackend) ReplaceIf(ctx context.Context, key string, version uint64, value []byte, ttl time.Duration) ([]byte, uint64, error) {
	if value == nil {
		b.deletes.Add(1)
	} else {
		b.replaces.Add(1)
		if err := b.write(value); err != nil {
			return nil, 0, err
		}
	}
	return b.MemoryBackend.ReplaceIf(ctx, key, version, value, ttl)
}

// sessions counts the live records that are sessions, not the forwarding
// records a renewal leaves under the old ID.
func (b *mwCountingBackend) sessions() int {
	m := b.MemoryBackend
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

func (b *mwCountingBackend) lastWritten() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.last)
}

// mwFailStore fails the calls it is told to fail and delegates the others
// to inner (an insecure cookie store when nil).
type mwFailStore struct {
	inner                       Store
	loadErr, saveErr, deleteErr error
}

func (s *mwFailStore) in() Store {
	if s.inner == nil {
		return NewInsecureCookieStore()
	}
	return s.inner
}

func (s *mwFailStore) Load(ctx context.Context, token string) ([]byte, error) {
	if s.loadErr != nil {
		return nil, s.loadErr
	}
	return s.in().Load(ctx, token)
}

func (s *mwFailStore) Save(ctx context.Context, token string, data []byte, ttl time.Duration) (string, error) {
	if s.saveErr != nil {
		return "", s.saveErr
	}
	return s.in().Save(ctx, token, data, ttl)
}

func (s *mwFailStore) Delete(ctx context.Context, token string) error {
	if s.deleteErr != nil {
		return s.deleteErr
	}
	return s.in().Delete(ctx, token)
}

// mwFixedStore answers every Load with fixed bytes and records Saves.
type mwFixedStore struct {
	data      []byte
	mu        sync.Mutex
	saveToken []string
}

func (s *mwFixedStore) Load(context.Context, string) ([]byte, error) { return bytes.Clone(s.data), nil }

func (s *mwFixedStore) Save(_ context.Context, token string, _ []byte, _ time.Duration) (string, error) {
	s.mu.Lock()
	s.saveToken = append(s.saveToken, token)
	s.mu.Unlock()
	return "fresh-token", nil
}

func (s *mwFixedStore) Delete(context.Context, string) error { return nil }

// mwInsecureToken builds a cookie value that NewInsecureCookieStore opens:
// a live record created at created holding values. Send it with a raw
// Cookie header: it is Python-quoted JSON, which http.Cookie would mangle.
func mwInsecureToken(t *testing.T, created time.Time, values map[string]any) string {
	t.Helper()
	return mwToken(t, NewInsecureCookieStore(), created, values)
}

// mwToken saves a live record created at created holding values in store
// and returns its cookie value.
func mwToken(t *testing.T, store Store, created time.Time, values map[string]any) string {
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

// mwSigned returns a signed cookie store, whose cookies net/http's cookie
// jar accepts (the insecure store's Python-quoted JSON it drops).
func mwSigned(t *testing.T) *CookieStore {
	t.Helper()
	st, err := NewSignedCookieStore([]byte("S9k2Vx7Qm4Tz1Lb8Wn5Rc0Yp3Hd6Gj9F"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// mwServer is a real HTTP server running the middleware. served receives
// once per request after the middleware's ServeHTTP returned, so the test
// can look at the store and the log only when the request is really over.
type mwServer struct {
	*httptest.Server
	served chan any // the recovered panic value, or nil
	log    *mwLogBuf
}

// mwStart starts h behind Middleware(store, opts...). A logger writing to
// srv.log comes first, so opts may replace it.
func mwStart(t *testing.T, store Store, h http.Handler, opts ...Option) *mwServer {
	t.Helper()
	logger, buf := mwLogger()
	mw, err := Middleware(store, append([]Option{WithLogger(logger)}, opts...)...)
	if err != nil {
		t.Fatalf("Middleware: %v", err)
	}
	wrapped := mw(h)
	s := &mwServer{served: make(chan any, 4096), log: buf}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p any
		defer func() {
			s.served <- p
			if p != nil {
				panic(p)
			}
		}()
		defer func() { p = recover() }()
		wrapped.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// wait blocks until the middleware finished one request and returns the
// panic value it recovered, if any.
func (s *mwServer) wait(t *testing.T) any {
	t.Helper()
	select {
	case p := <-s.served:
		return p
	case <-time.After(10 * time.Second): // hang guard, not a timing assertion
		t.Fatal("handler did not return")
		return nil
	}
}

// mwResp is a response read to the end.
type mwResp struct {
	status int
	body   string
	header http.Header
}

// cookie returns the Set-Cookie for name, parsed, and its raw text.
func (r mwResp) cookie(name string) (*http.Cookie, string) {
	return mwSetCookie(r.header, name)
}

func mwSetCookie(h http.Header, name string) (*http.Cookie, string) {
	var found *http.Cookie
	var raw string
	for _, line := range h.Values("Set-Cookie") {
		if c := mwParseSetCookie(line); c != nil && c.Name == name {
			found, raw = c, line
		}
	}
	return found, raw
}

// mwParseSetCookie parses a Set-Cookie line leniently: unlike
// http.ParseSetCookie it keeps values net/http refuses (the insecure
// store's quoted JSON) verbatim. Max-Age <= 0 parses as MaxAge -1.
func mwParseSetCookie(line string) *http.Cookie {
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

// mwBrowser is a minimal cookie-keeping client that sends cookie values
// back verbatim, whatever the store's format.
type mwBrowser struct {
	srv   *mwServer
	name  string
	value string
}

func mwNewBrowser(srv *mwServer) *mwBrowser { return &mwBrowser{srv: srv, name: DefaultCookieName} }

func (b *mwBrowser) get(t *testing.T, path string) mwResp {
	t.Helper()
	var cookies []*http.Cookie
	if b.value != "" {
		cookies = append(cookies, &http.Cookie{Name: b.name, Value: b.value})
	}
	r := b.srv.do(t, mwPlain(), path, cookies...)
	if ck, _ := r.cookie(b.name); ck != nil {
		if ck.MaxAge < 0 {
			b.value = ""
		} else {
			b.value = ck.Value
		}
	}
	return r
}

// mwCountSetCookies counts Set-Cookie lines for name.
func mwCountSetCookies(h http.Header, name string) int {
	n := 0
	for _, line := range h.Values("Set-Cookie") {
		if strings.HasPrefix(line, name+"=") {
			n++
		}
	}
	return n
}

// do sends GET path with c (which may hold a cookie jar) plus extra
// cookies, reads the whole response and waits for the handler to finish.
func (s *mwServer) do(t *testing.T, c *http.Client, path string, cookies ...*http.Cookie) mwResp {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ck := range cookies { // verbatim: AddCookie would re-quote
		req.Header.Add("Cookie", ck.Name+"="+ck.Value)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	if p := s.wait(t); p != nil {
		t.Fatalf("GET %s: handler panicked: %v", path, p)
	}
	return mwResp{status: resp.StatusCode, body: string(body), header: resp.Header}
}

// mwJar returns a client with a cookie jar.
func mwJar(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// mwPlain returns a client without a cookie jar.
func mwPlain() *http.Client { return &http.Client{} }

// mwRawResp is one response read off a raw connection.
type mwRawResp struct {
	status int
	header http.Header
	body   string
}

// mwRaw sends one GET over a fresh TCP connection and returns every
// response read from it: the 1xx interim responses, then the final one.
func mwRaw(t *testing.T, addr, path string, cookies ...*http.Cookie) []mwRawResp {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ck := range cookies {
		req.Header.Add("Cookie", ck.Name+"="+ck.Value)
	}
	req.Close = true
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	var out []mwRawResp
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("read response %d: %v", len(out)+1, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("read body: %v", err)
		}
		out = append(out, mwRawResp{status: resp.StatusCode, header: resp.Header, body: string(body)})
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return out
		}
	}
}

// mwSession wraps a handler that needs the session; a Get error answers
// 599 so that tests notice it (the middleware's error handler runs first).
func mwSession(fn func(w http.ResponseWriter, r *http.Request, s *Session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := Get(r)
		if err != nil {
			http.Error(w, "get: "+err.Error(), 599)
			return
		}
		fn(w, r, s)
	}
}

// mwVaryCookieCount counts "Cookie" tokens across all Vary headers.
func mwVaryCookieCount(h http.Header) int {
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

// mwNopWriter is an allocation-free ResponseWriter for AllocsPerRun.
type mwNopWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *mwNopWriter) Header() http.Header         { return w.h }
func (w *mwNopWriter) WriteHeader(code int)        { w.code = code }
func (w *mwNopWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// mwServerStore returns a memory-backed ServerStore whose backend counts
// calls.
func mwServerStore(now func() time.Time) (*ServerStore, *mwCountingBackend) {
	b := mwNewBackend(now)
	return NewServerStore(b), b
}

// mwCookieStores returns one of each cookie store plus the memory store.
func mwAllStores(t *testing.T) map[string]Store {
	t.Helper()
	k1 := []byte("K1r8Zt3Wq6Nm0Xc5Vb2Lp9Hs4Yd7Gf1J")
	signed, err := NewSignedCookieStore(k1)
	if err != nil {
		t.Fatal(err)
	}
	nacl, err := NewNaClCookieStore(k1)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := NewEncryptedCookieStore(k1)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]Store{
		"insecure":  NewInsecureCookieStore(),
		"signed":    signed,
		"nacl":      nacl,
		"encrypted": enc,
		"memory":    NewMemoryStore(),
	}
}

// ---------------------------------------------------------------------------
// Laziness

func TestMiddlewareLazyUntouched(t *testing.T) {
	for name, server := range map[string]bool{"cookie": false, "server": true} {
		t.Run(name, func(t *testing.T) {
			var st Store
			var counting *mwCountingStore
			var backend *mwCountingBackend
			if server {
				st, backend = mwServerStore(nil)
			} else {
				counting = &mwCountingStore{Store: mwSigned(t)}
				st = counting
			}
			mux := http.NewServeMux()
			mux.Handle("/set", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
				_ = s.Set("user", "ann")
			}))
			mux.HandleFunc("/untouched", func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, "plain page")
			})
			srv := mwStart(t, st, mux)
			c := mwJar(t)
			if r := srv.do(t, c, "/set"); mwCountSetCookies(r.header, "session") != 1 {
				t.Fatalf("setup: no session cookie: %v", r.header)
			}
			calls := func() int64 {
				if server {
					return backend.gets.Load() + backend.adds.Load() + backend.replaces.Load() + backend.deletes.Load()
				}
				return counting.loads.Load() + counting.saves.Load() + counting.deletes.Load()
			}
			before := calls()
			for range 3 {
				r := srv.do(t, c, "/untouched")
				if r.status != 200 || r.body != "plain page" {
					t.Fatalf("untouched: %d %q", r.status, r.body)
				}
				if v := r.header.Values("Set-Cookie"); len(v) != 0 {
					t.Errorf("untouched handler got Set-Cookie %v", v)
				}
				if v := r.header.Values("Vary"); len(v) != 0 {
					t.Errorf("untouched handler got Vary %v", v)
				}
				if v := r.header.Values("Cache-Control"); len(v) != 0 {
					t.Errorf("untouched handler got Cache-Control %v", v)
				}
			}
			if got := calls() - before; got != 0 {
				t.Errorf("untouched requests made %d store calls, want 0", got)
			}
		})
	}
}

func TestMiddlewareUntouchedAllocs(t *testing.T) {
	body := []byte("hello")
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
	store := &mwCountingStore{Store: NewInsecureCookieStore()}
	logger, _ := mwLogger()
	mw, err := Middleware(store, WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	wrapped := mw(next)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Cookie", "session="+mwInsecureToken(t, time.Now(), map[string]any{"a": 1}))
	w := &mwNopWriter{h: make(http.Header)}
	bare := testing.AllocsPerRun(500, func() {
		clear(w.h)
		next.ServeHTTP(w, req)
	})
	withMW := testing.AllocsPerRun(500, func() {
		clear(w.h)
		wrapped.ServeHTTP(w, req)
	})
	t.Logf("allocs: bare %.1f, wrapped-untouched %.1f", bare, withMW)
	if extra := withMW - bare; extra > 2 {
		t.Errorf("wrapped-untouched handler costs %.1f extra allocations, want <= 2", extra)
	}
	if n := store.loads.Load() + store.saves.Load() + store.deletes.Load(); n != 0 {
		t.Errorf("untouched handler made %d store calls", n)
	}
	if len(w.h) != 0 {
		t.Errorf("untouched handler got headers %v", w.h)
	}
	if w.code != 200 || w.n == 0 {
		t.Errorf("handler output lost: code %d, %d bytes", w.code, w.n)
	}
}

// ---------------------------------------------------------------------------
// Get

type mwCtxKey struct{}

func TestGetReturnsSameSession(t *testing.T) {
	store, _ := mwServerStore(nil)
	var mu sync.Mutex
	var failures []string
	fail := func(format string, a ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, a...))
		mu.Unlock()
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s1, err1 := Get(r)
		s2, err2 := Get(r)
		if err1 != nil || err2 != nil || s1 == nil || s1 != s2 {
			fail("Get twice: %p %v, %p %v", s1, err1, s2, err2)
			return
		}
		// A request derived by a later middleware still finds the session.
		r2 := r.WithContext(context.WithValue(r.Context(), mwCtxKey{}, 1))
		if s3, err := Get(r2); err != nil || s3 != s1 {
			fail("Get on derived request: %p %v, want %p", s3, err, s1)
		}
		_ = s1.Set("k", "v")
		if got := s2.Get("k"); got != "v" {
			fail("value set through one pointer not seen through the other: %v", got)
		}
		if s4, err := NewSession(r); err != nil || s4 != s1 {
			fail("NewSession after Get: %p %v, want the same *Session %p", s4, err, s1)
		} else if s1.Len() != 0 {
			fail("NewSession did not discard data: %v", s1.Keys())
		}
	})
	srv := mwStart(t, store, h)
	srv.do(t, mwPlain(), "/")
	for _, f := range failures {
		t.Error(f)
	}
}

func TestGetWithoutMiddleware(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: "session", Value: "abc"})
	s, err := Get(r)
	if !errors.Is(err, ErrNoMiddleware) {
		t.Fatalf("Get without middleware: err %v, want ErrNoMiddleware", err)
	}
	if s == nil {
		t.Fatal("Get without middleware returned a nil *Session")
	}
	if err := s.Set("k", "v"); !errors.Is(err, ErrNoMiddleware) {
		t.Errorf("detached Set: %v, want ErrNoMiddleware", err)
	}
	if err := s.AddFlash("f"); !errors.Is(err, ErrNoMiddleware) {
		t.Errorf("detached AddFlash: %v, want ErrNoMiddleware", err)
	}
	// None of the other methods may panic.
	if s.Get("k") != nil || s.Has("k") || s.Len() != 0 || len(s.Keys()) != 0 {
		t.Errorf("detached session holds data: %v", s.Keys())
	}
	s.Delete("k")
	s.Clear()
	s.MarkChanged()
	s.Invalidate()
	s.NewIdentity()
	s.SetLifetime(time.Hour)
	s.SetPersistent(false)
	_ = s.Flashes()
	_ = s.IsNew()
	_ = s.ID()
	_ = s.Created()
	_ = s.Expires()
	if _, err := GetAs[string](s, "k"); !errors.Is(err, ErrMissingKey) {
		t.Errorf("detached GetAs: %v, want ErrMissingKey", err)
	}
	ns, err := NewSession(r)
	if !errors.Is(err, ErrNoMiddleware) || ns == nil {
		t.Errorf("NewSession without middleware: %v %v", ns, err)
	}
}

// ---------------------------------------------------------------------------
// Panics

func TestMiddlewarePanicSavesNothing(t *testing.T) {
	store, backend := mwServerStore(nil)
	logger, _ := mwLogger()
	mw, err := Middleware(store, WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/set", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("k", "v1")
	}))
	mux.Handle("/get", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		fmt.Fprint(w, s.Get("k"))
	}))
	mux.Handle("/panic", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("k", "v2")
		_ = s.Set("other", 1)
		panic("boom")
	}))
	mux.Handle("/abort", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("k", "v3")
		panic(http.ErrAbortHandler)
	}))
	inner := mw(mux)
	recovered := make(chan any, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/abort" { // let net/http itself see the panic
			defer func() { recovered <- "abort-seen" }()
			inner.ServeHTTP(w, r)
			return
		}
		defer func() {
			p := recover()
			if p != nil {
				w.WriteHeader(http.StatusInternalServerError)
			}
			recovered <- p
		}()
		inner.ServeHTTP(w, r)
	}))
	defer srv.Close()
	get := func(c *http.Client, path string) (*http.Response, string, error) {
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			<-recovered
			return nil, "", err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		<-recovered
		return resp, string(b), nil
	}

	// A new session that panics: nothing is created.
	resp, _, err := get(mwPlain(), "/panic")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 500 {
		t.Errorf("panic response status %d, want the recovering wrapper's 500", resp.StatusCode)
	}
	if v := resp.Header.Values("Set-Cookie"); len(v) != 0 {
		t.Errorf("panicking handler sent Set-Cookie %v", v)
	}
	if backend.adds.Load() != 0 || backend.Len() != 0 {
		t.Errorf("panicking handler created a record (adds %d, len %d)", backend.adds.Load(), backend.Len())
	}

	// An existing session that panics mid-change keeps its stored value.
	// No keep-alive: the client must not retry the aborted request.
	c := mwJar(t)
	c.Transport = &http.Transport{DisableKeepAlives: true}
	if _, _, err := get(c, "/set"); err != nil {
		t.Fatal(err)
	}
	stored := backend.lastWritten()
	replaces := backend.replaces.Load()
	if _, _, err := get(c, "/panic"); err != nil {
		t.Fatal(err)
	}
	if backend.replaces.Load() != replaces || backend.adds.Load() != 1 {
		t.Errorf("panicking handler wrote the store (replaces %d -> %d, adds %d)", replaces, backend.replaces.Load(), backend.adds.Load())
	}
	if backend.lastWritten() != stored {
		t.Errorf("record changed by a panicking handler: %s", backend.lastWritten())
	}
	if _, body, err := get(c, "/get"); err != nil || body != "v1" {
		t.Errorf("after panic: %q %v, want v1", body, err)
	}

	// net/http's own recovery: the panic propagated out of the middleware.
	if _, _, err := get(c, "/abort"); err == nil {
		t.Errorf("ErrAbortHandler panic did not abort the response")
	}
	if _, body, err := get(c, "/get"); err != nil || body != "v1" {
		t.Errorf("after aborted handler: %q %v, want v1", body, err)
	}
}

// ---------------------------------------------------------------------------
// Store failures and the error handler

func TestMiddlewareStoreErrorsDefaultHandler(t *testing.T) {
	unavailable := fmt.Errorf("%w: %w", ErrUnavailable, errMwCause)
	plain := fmt.Errorf("mw: wrapped: %w", errMwCause)
	live := mwInsecureToken(t, time.Now(), map[string]any{"user": "ann"})
	cases := []struct {
		name     string
		store    Store
		cookie   string
		action   string // set, invalidate
		wantCode int
	}{
		{"load unavailable", &mwFailStore{loadErr: unavailable}, "whatever", "set", 503},
		{"load plain error", &mwFailStore{loadErr: plain}, "whatever", "set", 500},
		{"save unavailable", &mwFailStore{saveErr: unavailable}, "", "set", 503},
		{"save plain error", &mwFailStore{saveErr: plain}, "", "set", 500},
		{"update unavailable", &mwFailStore{saveErr: unavailable}, live, "set", 503},
		{"delete unavailable", &mwFailStore{deleteErr: unavailable}, live, "invalidate", 503},
		{"server store backend plain error", func() Store {
			st, b := mwServerStore(nil)
			b.failWrite = errMwCause
			return st
		}(), "", "set", 503},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var handlerWriteErr atomic.Value
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, err := Get(r)
				if err != nil {
					// The usual handler reflex: which must not leak.
					http.Error(w, "LEAK: "+err.Error(), http.StatusInternalServerError)
					return
				}
				switch tc.action {
				case "set":
					_ = s.Set("k", "v")
				case "invalidate":
					s.Invalidate()
				}
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusCreated)
				_, werr := w.Write([]byte("<h1>SECRET-PAGE</h1>"))
				handlerWriteErr.Store(fmt.Sprint(werr))
			})
			srv := mwStart(t, tc.store, h)
			var cookies []*http.Cookie
			if tc.cookie != "" {
				cookies = append(cookies, &http.Cookie{Name: "session", Value: tc.cookie})
			}
			r := srv.do(t, mwPlain(), "/", cookies...)
			if r.status != tc.wantCode {
				t.Errorf("status %d, want %d", r.status, tc.wantCode)
			}
			if want := http.StatusText(tc.wantCode) + "\n"; r.body != want {
				t.Errorf("body %q, want exactly %q", r.body, want)
			}
			for _, leak := range []string{"SECRET", "LEAK", "exploded", "10.0.0.7", "httpsession"} {
				if strings.Contains(r.body, leak) {
					t.Errorf("body leaks %q: %q", leak, r.body)
				}
			}
			if v := r.header.Values("Set-Cookie"); len(v) != 0 {
				t.Errorf("error response carries Set-Cookie %v", v)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("error response Content-Type %q", ct)
			}
			if v, _ := handlerWriteErr.Load().(string); v == "<nil>" {
				t.Errorf("handler's Write after a failed commit succeeded")
			}
			if !strings.Contains(srv.log.String(), "level=ERROR") || !strings.Contains(srv.log.String(), "exploded") {
				t.Errorf("store failure not logged with its cause: %s", srv.log.String())
			}
		})
	}
}

func TestMiddlewareCustomErrorHandler(t *testing.T) {
	unavailable := fmt.Errorf("%w: %w", ErrUnavailable, errMwCause)
	serverStore, backend := mwServerStore(nil)
	backend.failWrite = errMwCause
	cases := []struct {
		name   string
		store  Store
		cookie bool
	}{
		{"load", &mwFailStore{loadErr: unavailable}, true},
		{"save", &mwFailStore{saveErr: unavailable}, false},
		{"server store backend", serverStore, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got atomic.Value
			eh := func(w http.ResponseWriter, r *http.Request, err error) {
				got.Store(err)
				w.WriteHeader(http.StatusTeapot)
				_, _ = io.WriteString(w, "custom")
			}
			h := mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
				_ = s.Set("k", "v")
				_, _ = io.WriteString(w, "page")
			})
			srv := mwStart(t, tc.store, h, WithErrorHandler(eh))
			var cookies []*http.Cookie
			if tc.cookie {
				cookies = append(cookies, &http.Cookie{Name: "session", Value: "x"})
			}
			r := srv.do(t, mwPlain(), "/", cookies...)
			if r.status != http.StatusTeapot || r.body != "custom" {
				t.Errorf("response %d %q, want the custom handler's 418 \"custom\"", r.status, r.body)
			}
			err, _ := got.Load().(error)
			if err == nil {
				t.Fatal("custom error handler not called")
			}
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("errors.Is(%v, ErrUnavailable) = false", err)
			}
			if !errors.Is(err, errMwCause) {
				t.Errorf("errors.Is(%v, cause) = false", err)
			}
			if v := r.header.Values("Set-Cookie"); len(v) != 0 {
				t.Errorf("error response carries Set-Cookie %v", v)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Cookie attributes

func TestMiddlewareCookieDefaults(t *testing.T) {
	clock := mwNewClock()
	key := []byte("K7w2Rm9Xt4Qz1Nb6Lc3Vp8Hy5Sd0Gj7F")
	store, err := NewNaClCookieStore(key)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/set", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("user", "ann")
	}))
	mux.Handle("/get", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		fmt.Fprint(w, s.Get("user"))
	}))
	srv := mwStart(t, store, mux, WithClock(clock.Now))
	c := mwJar(t)
	r := srv.do(t, c, "/set")
	ck, raw := r.cookie(DefaultCookieName)
	if ck == nil {
		t.Fatalf("no %q cookie in %v", DefaultCookieName, r.header)
	}
	for _, want := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age=86400", "Expires="} {
		if !strings.Contains(raw, want) {
			t.Errorf("Set-Cookie %q lacks %q", raw, want)
		}
	}
	if ck.Path != "/" || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Domain != "" {
		t.Errorf("cookie attributes %+v", ck)
	}
	if ck.MaxAge != int(DefaultLifetime/time.Second) {
		t.Errorf("Max-Age %d, want %d", ck.MaxAge, int(DefaultLifetime/time.Second))
	}
	if want := clock.Now().Add(DefaultLifetime); !ck.Expires.Equal(want) {
		t.Errorf("Expires %v, want %v", ck.Expires, want)
	}
	if strings.Contains(raw, "Partitioned") {
		t.Errorf("Partitioned set by default: %q", raw)
	}
	// The Secure cookie comes back over loopback HTTP.
	if r := srv.do(t, c, "/get"); r.body != "ann" {
		t.Errorf("second request saw %q, want ann", r.body)
	}
	// A loopback host gets no insecure-transport warning.
	if strings.Contains(srv.log.String(), "plain HTTP") {
		t.Errorf("warned about plain HTTP on loopback: %s", srv.log.String())
	}
}

func TestMiddlewareInsecureTransportWarning(t *testing.T) {
	logger, buf := mwLogger()
	mw, err := Middleware(NewInsecureCookieStore(), WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	h := mw(mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) { _ = s.Set("a", 1) }))
	for range 3 {
		req := httptest.NewRequest(http.MethodGet, "http://app.example.com/", nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if mwCountSetCookies(rec.Header(), "session") != 1 {
			t.Fatalf("no cookie: %v", rec.Header())
		}
	}
	if n := strings.Count(buf.String(), "plain HTTP"); n != 1 {
		t.Errorf("plain-HTTP warning logged %d times, want once: %s", n, buf.String())
	}
}

func TestMiddlewareCookiePersistence(t *testing.T) {
	clock := mwNewClock()
	mux := http.NewServeMux()
	mux.Handle("/set", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("n", 1)
	}))
	mux.Handle("/session-cookie", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("n", 1)
		s.SetPersistent(false)
	}))
	mux.Handle("/persistent-cookie", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("n", 1)
		s.SetPersistent(true)
	}))
	mux.Handle("/touch", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("n", 2)
		fmt.Fprint(w, strings.Join(s.Keys(), ","))
	}))
	noExpiry := func(t *testing.T, r mwResp) {
		t.Helper()
		ck, raw := r.cookie("session")
		if ck == nil {
			t.Fatalf("no cookie: %v", r.header)
		}
		if strings.Contains(raw, "Max-Age") || strings.Contains(raw, "Expires") {
			t.Errorf("browser-session cookie carries an expiry: %q", raw)
		}
	}
	hasExpiry := func(t *testing.T, r mwResp) {
		t.Helper()
		_, raw := r.cookie("session")
		if !strings.Contains(raw, "Max-Age=") || !strings.Contains(raw, "Expires=") {
			t.Errorf("persistent cookie lacks Max-Age or Expires: %q", raw)
		}
	}

	t.Run("WithPersistent(false)", func(t *testing.T) {
		srv := mwStart(t, NewInsecureCookieStore(), mux, WithClock(clock.Now), WithPersistent(false))
		b := mwNewBrowser(srv)
		noExpiry(t, b.get(t, "/set"))
		noExpiry(t, b.get(t, "/touch"))
	})
	t.Run("SetPersistent(false)", func(t *testing.T) {
		store, _ := mwServerStore(clock.Now)
		srv := mwStart(t, store, mux, WithClock(clock.Now))
		b := mwNewBrowser(srv)
		noExpiry(t, b.get(t, "/session-cookie"))
		// The choice is kept in the record: a later save still omits it.
		r := b.get(t, "/touch")
		noExpiry(t, r)
		if r.body != "n" {
			t.Errorf("keys %q: the persistence choice leaked into the user's map", r.body)
		}
	})
	t.Run("SetPersistent(true) overrides WithPersistent(false)", func(t *testing.T) {
		srv := mwStart(t, NewInsecureCookieStore(), mux, WithClock(clock.Now), WithPersistent(false))
		b := mwNewBrowser(srv)
		hasExpiry(t, b.get(t, "/persistent-cookie"))
		hasExpiry(t, b.get(t, "/touch"))
	})
}

func TestMiddlewareRememberMe(t *testing.T) {
	clock := mwNewClock()
	const month = 30 * 24 * time.Hour
	store, backend := mwServerStore(clock.Now)
	mux := http.NewServeMux()
	mux.Handle("/login", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("user", "ann")
		if r.URL.Query().Has("remember") {
			s.SetLifetime(month)
		}
	}))
	mux.Handle("/whoami", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		fmt.Fprintf(w, "%v|%s|%s", s.Get("user"), strings.Join(s.Keys(), ","), s.Expires().UTC().Format(time.RFC3339))
	}))
	mux.Handle("/touch", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("seen", true)
	}))
	srv := mwStart(t, store, mux, WithClock(clock.Now), WithLifetime(time.Hour))

	c := mwJar(t)
	start := clock.Now()
	r := srv.do(t, c, "/login?remember=1")
	ck, _ := r.cookie("session")
	if ck == nil || ck.MaxAge != int(month/time.Second) {
		t.Fatalf("remember-me cookie %+v, want Max-Age %d", ck, int(month/time.Second))
	}
	var rec struct {
		Lifetime int64          `json:"lifetime"`
		Session  map[string]any `json:"session"`
	}
	if err := json.Unmarshal([]byte(backend.lastWritten()), &rec); err != nil {
		t.Fatalf("record: %v", err)
	}
	if rec.Lifetime != int64(month/time.Second) || len(rec.Session) != 1 || rec.Session["user"] != "ann" {
		t.Errorf("lifetime not kept as record metadata apart from the user's map: %s", backend.lastWritten())
	}

	// Past the middleware's 1h lifetime, the override keeps the session.
	clock.Advance(2 * time.Hour)
	r = srv.do(t, c, "/whoami")
	want := "ann|user|" + start.Add(month).Format(time.RFC3339)
	if r.body != want {
		t.Errorf("after 2h: %q, want %q", r.body, want)
	}
	r = srv.do(t, c, "/touch")
	ck, _ = r.cookie("session")
	if ck == nil || ck.MaxAge != int((month-2*time.Hour)/time.Second) {
		t.Errorf("re-saved remember-me cookie %+v, want Max-Age %d", ck, int((month-2*time.Hour)/time.Second))
	}
	// The override still ends the session at creation + a month.
	clock.Advance(month - 2*time.Hour)
	if r := srv.do(t, c, "/whoami"); strings.HasPrefix(r.body, "ann") {
		t.Errorf("session outlived its overridden lifetime: %q", r.body)
	}

	// Without the override the 1h lifetime applies.
	c2 := mwJar(t)
	r = srv.do(t, c2, "/login")
	if ck, _ := r.cookie("session"); ck == nil || ck.MaxAge != 3600 {
		t.Errorf("default cookie %+v, want Max-Age 3600", ck)
	}
	clock.Advance(2 * time.Hour)
	if r := srv.do(t, c2, "/whoami"); strings.HasPrefix(r.body, "ann") {
		t.Errorf("session without override outlived 1h: %q", r.body)
	}
}

func TestMiddlewareCookieOptionsAndDeletion(t *testing.T) {
	logger, _ := mwLogger()
	mw, err := Middleware(NewInsecureCookieStore(), WithLogger(logger),
		WithCookieName("__Secure-sid"), WithDomain("example.com"), WithPath("/app"),
		WithPartitioned(true), WithSameSite(http.SameSiteStrictMode), WithHTTPOnly(false))
	if err != nil {
		t.Fatal(err)
	}
	h := mw(mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		if r.URL.Query().Has("logout") {
			s.Invalidate()
			return
		}
		_ = s.Set("user", "ann")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://www.example.com/app/login", nil))
	ck, raw := mwSetCookie(rec.Header(), "__Secure-sid")
	if ck == nil {
		t.Fatalf("no cookie: %v", rec.Header())
	}
	for _, want := range []string{"Domain=example.com", "Path=/app", "Partitioned", "Secure", "SameSite=Strict", "Max-Age="} {
		if !strings.Contains(raw, want) {
			t.Errorf("Set-Cookie %q lacks %q", raw, want)
		}
	}
	if strings.Contains(raw, "HttpOnly") {
		t.Errorf("WithHTTPOnly(false) still sends HttpOnly: %q", raw)
	}

	req := httptest.NewRequest(http.MethodGet, "https://www.example.com/app/logout?logout=1", nil)
	req.Header.Add("Cookie", "__Secure-sid="+ck.Value)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	del, raw := mwSetCookie(rec.Header(), "__Secure-sid")
	if del == nil {
		t.Fatalf("no deletion cookie: %v", rec.Header())
	}
	for _, want := range []string{"Max-Age=0", "Domain=example.com", "Path=/app", "Partitioned", "Secure", "Expires=Thu, 01 Jan 1970 00:00:00 GMT"} {
		if !strings.Contains(raw, want) {
			t.Errorf("deletion cookie %q lacks %q", raw, want)
		}
	}
	if del.Value != "" {
		t.Errorf("deletion cookie still carries the session: %q", del.Value)
	}
}

func TestMiddlewareInvalidConfig(t *testing.T) {
	store := NewInsecureCookieStore()
	bad := []struct {
		name  string
		store Store
		opts  []Option
	}{
		{"__Host- with Domain", store, []Option{WithCookieName("__Host-s"), WithDomain("example.com")}},
		{"__Host- with Path /app", store, []Option{WithCookieName("__Host-s"), WithPath("/app")}},
		{"__Host- not Secure", store, []Option{WithCookieName("__Host-s"), WithSecure(false)}},
		{"__Secure- not Secure", store, []Option{WithCookieName("__Secure-s"), WithSecure(false)}},
		{"SameSite=None without Secure", store, []Option{WithSameSite(http.SameSiteNoneMode), WithSecure(false)}},
		{"Partitioned without Secure", store, []Option{WithPartitioned(true), WithSecure(false)}},
		{"name with space", store, []Option{WithCookieName("my session")}},
		{"name with semicolon", store, []Option{WithCookieName("a;b")}},
		{"name with equals", store, []Option{WithCookieName("a=b")}},
		{"name with comma", store, []Option{WithCookieName("a,b")}},
		{"empty name", store, []Option{WithCookieName("")}},
		{"non-ASCII name", store, []Option{WithCookieName("séance")}},
		{"path with semicolon", store, []Option{WithPath("/a;b")}},
		{"relative path", store, []Option{WithPath("app")}},
		{"bad domain", store, []Option{WithDomain("exa mple.com")}},
		{"lifetime 0", store, []Option{WithLifetime(0)}},
		{"negative lifetime", store, []Option{WithLifetime(-time.Hour)}},
		{"negative idle timeout", store, []Option{WithIdleTimeout(-time.Minute)}},
		{"nil codec", store, []Option{WithCodec(nil)}},
		{"nil store", nil, nil},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			mw, err := Middleware(tc.store, tc.opts...)
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("err = %v, want ErrInvalidConfig", err)
			}
			if mw != nil {
				t.Errorf("invalid configuration returned a middleware")
			}
		})
	}
	good := []struct {
		name string
		opts []Option
	}{
		{"defaults", nil},
		{"__Host- defaults", []Option{WithCookieName("__Host-s")}},
		{"__Secure- with Domain", []Option{WithCookieName("__Secure-s"), WithDomain("example.com")}},
		{"SameSite=None Secure", []Option{WithSameSite(http.SameSiteNoneMode)}},
		{"Partitioned Secure", []Option{WithPartitioned(true)}},
		{"plain HTTP dev", []Option{WithSecure(false)}},
		{"browser-session cookie", []Option{WithPersistent(false)}},
	}
	for _, tc := range good {
		t.Run("valid "+tc.name, func(t *testing.T) {
			if _, err := Middleware(store, tc.opts...); err != nil {
				t.Errorf("valid configuration rejected: %v", err)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Vary and Cache-Control

func TestMiddlewareVaryCookie(t *testing.T) {
	logger, _ := mwLogger()
	mw, err := Middleware(NewInsecureCookieStore(), WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		h        http.HandlerFunc
		cookie   bool
		wantVary []string
	}{
		{"untouched", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "x") }, true, nil},
		{"read-only new", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
			_ = s.Get("x")
		}), false, []string{"Cookie"}},
		{"read-only existing", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
			_, _ = io.WriteString(w, fmt.Sprint(s.Get("user")))
		}), true, []string{"Cookie"}},
		{"modified", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
			_ = s.Set("x", 1)
		}), false, []string{"Cookie"}},
		{"handler already set Vary: Cookie", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
			w.Header().Set("Vary", "Cookie")
			_ = s.Set("x", 1)
		}), false, []string{"Cookie"}},
		{"handler sets Vary: Cookie after Get", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
			_ = s.Get("x")
			w.Header().Add("Vary", "Cookie")
			_, _ = io.WriteString(w, "x")
		}), false, []string{"Cookie"}},
		{"handler set lower-case cookie in a list", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
			w.Header().Set("Vary", "Accept-Encoding, cookie")
			_ = s.Get("x")
		}), false, []string{"Accept-Encoding, cookie"}},
		{"handler set other Vary", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
			w.Header().Set("Vary", "Accept-Encoding")
			_ = s.Get("x")
		}), false, []string{"Accept-Encoding", "Cookie"}},
		{"NewSession only", func(w http.ResponseWriter, r *http.Request) { _, _ = NewSession(r) }, true, []string{"Cookie"}},
	}
	token := mwInsecureToken(t, time.Now(), map[string]any{"user": "ann"})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
			if tc.cookie {
				req.Header.Add("Cookie", "session="+token)
			}
			rec := httptest.NewRecorder()
			mw(tc.h).ServeHTTP(rec, req)
			got := rec.Result().Header.Values("Vary")
			if strings.Join(got, "|") != strings.Join(tc.wantVary, "|") {
				t.Errorf("Vary %q, want %q", got, tc.wantVary)
			}
			if tc.wantVary != nil && mwVaryCookieCount(rec.Header()) != 1 {
				t.Errorf("Vary names Cookie %d times: %q", mwVaryCookieCount(rec.Header()), got)
			}
		})
	}
}

func TestMiddlewareCacheControl(t *testing.T) {
	logger, _ := mwLogger()
	mw, err := Middleware(NewInsecureCookieStore(), WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	token := mwInsecureToken(t, time.Now(), map[string]any{"user": "ann"})
	cases := []struct {
		name       string
		preset     []string
		action     string // set, read, invalidate
		wantCookie bool
		want       []string
	}{
		{"set, none", nil, "set", true, []string{"no-store"}},
		{"set, public max-age", []string{"public, max-age=60"}, "set", true, []string{"private, max-age=60"}},
		{"set, s-maxage", []string{"s-maxage=600, max-age=60"}, "set", true, []string{"private, max-age=60"}},
		{"set, public s-maxage only", []string{"public, s-maxage=600"}, "set", true, []string{"private"}},
		{"set, two headers", []string{"public", "max-age=60"}, "set", true, []string{"private, max-age=60"}},
		{"set, private kept", []string{"private, max-age=60"}, "set", true, []string{"private, max-age=60"}},
		{"set, no-store kept", []string{"no-store"}, "set", true, []string{"no-store"}},
		{"invalidate, none", nil, "invalidate", true, []string{"no-store"}},
		{"invalidate, public", []string{"public, max-age=60"}, "invalidate", true, []string{"private, max-age=60"}},
		{"read only keeps public", []string{"public, max-age=60"}, "read", false, []string{"public, max-age=60"}},
		{"read only adds nothing", nil, "read", false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := mw(mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
				for _, v := range tc.preset {
					w.Header().Add("Cache-Control", v)
				}
				switch tc.action {
				case "set":
					_ = s.Set("x", 1)
				case "invalidate":
					s.Invalidate()
				case "read":
					_ = s.Get("user")
				}
				_, _ = io.WriteString(w, "page")
			}))
			req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
			req.Header.Add("Cookie", "session="+token)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if got := mwCountSetCookies(rec.Header(), "session") == 1; got != tc.wantCookie {
				t.Fatalf("cookie sent = %v, want %v: %v", got, tc.wantCookie, rec.Header())
			}
			got := rec.Header().Values("Cache-Control")
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("Cache-Control %q, want %q", got, tc.want)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Expiry with an injectable clock

// mwExpiryStores returns a memory store on the fake clock and a cookie store
// (which has no expiry of its own, so only the middleware can enforce it).
func mwExpiryStores(t *testing.T, clock *mwClock) map[string]Store {
	return map[string]Store{
		"memory": NewServerStore(NewMemoryBackend(0, clock.Now)),
		"cookie": mwSigned(t),
	}
}

func mwExpiryMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/count", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		n, _ := GetAs[int](s, "n")
		_ = s.Set("n", n+1)
		fmt.Fprintf(w, "%d new=%v", n+1, s.IsNew())
	}))
	mux.Handle("/read", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		n, _ := GetAs[int](s, "n")
		fmt.Fprintf(w, "%d new=%v", n, s.IsNew())
	}))
	return mux
}

func TestMiddlewareAbsoluteLifetime(t *testing.T) {
	for name := range mwExpiryStores(t, mwNewClock()) {
		t.Run(name, func(t *testing.T) {
			clock := mwNewClock()
			store := mwExpiryStores(t, clock)[name]
			srv := mwStart(t, store, mwExpiryMux(), WithClock(clock.Now), WithLifetime(time.Hour))
			c := mwJar(t)
			if r := srv.do(t, c, "/count"); r.body != "1 new=true" {
				t.Fatalf("first: %q", r.body)
			}
			first, _ := srv.do(t, c, "/read").cookie("session") // nil: read-only sends none
			if first != nil {
				t.Errorf("read-only request re-sent the cookie without idle timeout")
			}
			// Keep using and modifying it: every response re-issues the cookie.
			var last *http.Cookie
			for i := 2; i <= 12; i++ {
				clock.Advance(5 * time.Minute)
				r := srv.do(t, c, "/count")
				if want := fmt.Sprintf("%d new=false", i); r.body != want {
					t.Fatalf("at +%dm: %q, want %q", (i-1)*5, r.body, want)
				}
				last, _ = r.cookie("session")
			}
			// +55m: the cookie's Max-Age tracks the remaining lifetime.
			if last == nil || last.MaxAge != 300 {
				t.Errorf("cookie at +55m %+v, want Max-Age 300", last)
			}
			clock.Advance(5 * time.Minute) // exactly the lifetime
			if r := srv.do(t, c, "/read"); r.body != "0 new=true" {
				t.Errorf("at the lifetime: %q, want a new session", r.body)
			}
			// Replaying the last issued cookie does not help either.
			plain := &http.Cookie{Name: "session", Value: last.Value}
			if r := srv.do(t, mwPlain(), "/read", plain); r.body != "0 new=true" {
				t.Errorf("replayed cookie after lifetime: %q, want a new session", r.body)
			}
		})
	}
}

func TestMiddlewareIdleTimeout(t *testing.T) {
	for name := range mwExpiryStores(t, mwNewClock()) {
		t.Run(name, func(t *testing.T) {
			clock := mwNewClock()
			store := mwExpiryStores(t, clock)[name]
			srv := mwStart(t, store, mwExpiryMux(), WithClock(clock.Now), WithIdleTimeout(10*time.Minute))
			c := mwJar(t)
			r := srv.do(t, c, "/count")
			firstCookie, _ := r.cookie("session")
			if firstCookie == nil || firstCookie.MaxAge != 600 {
				t.Errorf("cookie with idle timeout %+v, want Max-Age 600", firstCookie)
			}
			clock.Advance(9 * time.Minute)
			if r := srv.do(t, c, "/read"); r.body != "1 new=false" {
				t.Fatalf("after 9m idle: %q", r.body)
			}
			// The read refreshed the activity: 9 more minutes are fine (18m
			// after creation), even though the original cookie is now stale.
			clock.Advance(9 * time.Minute)
			if r := srv.do(t, c, "/read"); r.body != "1 new=false" {
				t.Fatalf("9m after the refresh: %q", r.body)
			}
			if r := srv.do(t, mwPlain(), "/read", &http.Cookie{Name: "session", Value: firstCookie.Value}); name == "cookie" && r.body != "0 new=true" {
				t.Errorf("cookie sealed 18m ago accepted with a 10m idle timeout: %q", r.body)
			}
			clock.Advance(10 * time.Minute)
			if r := srv.do(t, c, "/read"); r.body != "0 new=true" {
				t.Errorf("after 10m idle: %q, want a new session", r.body)
			}
		})
	}
}

func TestMiddlewareIdleRefreshThrottled(t *testing.T) {
	clock := mwNewClock()
	t.Run("memory", func(t *testing.T) {
		store, backend := mwServerStore(clock.Now)
		srv := mwStart(t, store, mwExpiryMux(), WithClock(clock.Now), WithIdleTimeout(10*time.Minute))
		mwThrottleFlow(t, srv, clock, func() int64 { return backend.adds.Load() + backend.replaces.Load() })
	})
	t.Run("cookie", func(t *testing.T) {
		store := &mwCountingStore{Store: mwSigned(t)}
		srv := mwStart(t, store, mwExpiryMux(), WithClock(clock.Now), WithIdleTimeout(10*time.Minute))
		mwThrottleFlow(t, srv, clock, store.saves.Load)
	})
}

func mwThrottleFlow(t *testing.T, srv *mwServer, clock *mwClock, writes func() int64) {
	t.Helper()
	c := mwJar(t)
	srv.do(t, c, "/count")
	if writes() != 1 {
		t.Fatalf("creation: %d writes", writes())
	}
	// Read-only traffic within idle/10 (1m): no store write, no cookie.
	for range 5 {
		clock.Advance(10 * time.Second)
		r := srv.do(t, c, "/read")
		if r.body != "1 new=false" {
			t.Fatalf("read: %q", r.body)
		}
		if ck, _ := r.cookie("session"); ck != nil {
			t.Errorf("read within idle/10 sent Set-Cookie")
		}
	}
	if writes() != 1 {
		t.Errorf("reads within idle/10 wrote the store %d times", writes()-1)
	}
	// Past idle/10 since the last write: exactly one refresh.
	clock.Advance(11 * time.Second) // 61s since creation
	r := srv.do(t, c, "/read")
	if ck, _ := r.cookie("session"); ck == nil || ck.MaxAge != 600 {
		t.Errorf("refresh after idle/10: cookie %+v, want one with Max-Age 600", ck)
	}
	if writes() != 2 {
		t.Errorf("refresh after idle/10: %d writes, want 2", writes())
	}
	clock.Advance(30 * time.Second)
	r = srv.do(t, c, "/read")
	if ck, _ := r.cookie("session"); ck != nil || writes() != 2 {
		t.Errorf("read 30s after a refresh: cookie %v, %d writes, want none and 2", ck != nil, writes())
	}
}

// ---------------------------------------------------------------------------
// Invalidate, NewIdentity, NewSession, logout wins

func mwIdentityMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/login", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("user", "ann")
		_ = s.Set("cart", 3)
	}))
	mux.Handle("/whoami", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		fmt.Fprintf(w, "user=%v cart=%v new=%v id=%s", s.Get("user"), s.Get("cart"), s.IsNew(), s.ID())
	}))
	mux.Handle("/logout", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		s.Invalidate()
		fmt.Fprintf(w, "len=%d user=%v", s.Len(), s.Get("user"))
	}))
	mux.Handle("/relogin", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		s.Invalidate()
		_ = s.Set("user", "bob")
		fmt.Fprintf(w, "new=%v cart=%v", s.IsNew(), s.Get("cart"))
	}))
	mux.Handle("/renew", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
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

func mwLogin(t *testing.T, srv *mwServer) *http.Cookie {
	t.Helper()
	r := srv.do(t, mwPlain(), "/login")
	ck, _ := r.cookie("session")
	if ck == nil {
		t.Fatalf("login set no cookie: %v", r.header)
	}
	return &http.Cookie{Name: "session", Value: ck.Value}
}

func TestMiddlewareInvalidate(t *testing.T) {
	store, backend := mwServerStore(nil)
	srv := mwStart(t, store, mwIdentityMux())
	old := mwLogin(t, srv)
	if backend.Len() != 1 {
		t.Fatalf("login: %d records", backend.Len())
	}
	r := srv.do(t, mwPlain(), "/logout", old)
	if r.body != "len=0 user=<nil>" {
		t.Errorf("after Invalidate in the same request: %q", r.body)
	}
	ck, raw := r.cookie("session")
	if ck == nil || !strings.Contains(raw, "Max-Age=0") || ck.Value != "" {
		t.Errorf("logout cookie %q, want a deletion cookie", raw)
	}
	if backend.Len() != 0 {
		t.Errorf("server-side record survives Invalidate (%d records)", backend.Len())
	}
	if r := srv.do(t, mwPlain(), "/whoami", old); !strings.HasPrefix(r.body, "user=<nil> cart=<nil> new=true") {
		t.Errorf("old cookie after logout: %q", r.body)
	}
	// With a jar the browser really drops it.
	c := mwJar(t)
	srv.do(t, c, "/login")
	srv.do(t, c, "/logout")
	if u, _ := url.Parse(srv.URL + "/"); len(c.Jar.Cookies(u)) != 0 {
		t.Errorf("jar still holds the session cookie after logout")
	}
}

func TestMiddlewareInvalidateThenSetNewID(t *testing.T) {
	store, backend := mwServerStore(nil)
	srv := mwStart(t, store, mwIdentityMux())
	old := mwLogin(t, srv)
	r := srv.do(t, mwPlain(), "/relogin", old)
	if r.body != "new=true cart=<nil>" {
		t.Errorf("Invalidate then Set: %q", r.body)
	}
	ck, _ := r.cookie("session")
	if ck == nil || ck.MaxAge <= 0 {
		t.Fatalf("no new session cookie: %v", r.header)
	}
	if ck.Value == old.Value {
		t.Fatalf("Invalidate then Set reused the old session ID")
	}
	if n := backend.sessions(); n != 1 {
		t.Errorf("%d records, want only the new session", n)
	}
	if r := srv.do(t, mwPlain(), "/whoami", old); !strings.Contains(r.body, "new=true") {
		t.Errorf("old ID still loads: %q", r.body)
	}
	want := "user=bob cart=<nil> new=false id=" + ck.Value
	if r := srv.do(t, mwPlain(), "/whoami", &http.Cookie{Name: "session", Value: ck.Value}); r.body != want {
		t.Errorf("new session: %q, want %q", r.body, want)
	}
}

func TestMiddlewareNewIdentity(t *testing.T) {
	t.Run("server store", func(t *testing.T) {
		store, backend := mwServerStore(nil)
		srv := mwStart(t, store, mwIdentityMux())
		old := mwLogin(t, srv)
		r := srv.do(t, mwPlain(), "/renew", old)
		ck, _ := r.cookie("session")
		if ck == nil || ck.MaxAge <= 0 || ck.Value == old.Value {
			t.Fatalf("NewIdentity cookie %+v, want a new ID (old %s)", ck, old.Value)
		}
		if n := backend.sessions(); n != 1 {
			t.Errorf("%d records after NewIdentity, want 1", n)
		}
		want := "user=ann cart=3 new=false id=" + ck.Value
		if r := srv.do(t, mwPlain(), "/whoami", &http.Cookie{Name: "session", Value: ck.Value}); r.body != want {
			t.Errorf("new identity: %q, want %q", r.body, want)
		}
		if r := srv.do(t, mwPlain(), "/whoami", old); !strings.Contains(r.body, "new=true") {
			t.Errorf("old ID still loads after NewIdentity: %q", r.body)
		}
	})
	t.Run("cookie store", func(t *testing.T) {
		store, err := NewSignedCookieStore([]byte("S3q7Nz2Wx9Tm4Lr1Vb6Kc8Hp0Yd5Gj3F"))
		if err != nil {
			t.Fatal(err)
		}
		srv := mwStart(t, store, mwIdentityMux())
		old := mwLogin(t, srv)
		r := srv.do(t, mwPlain(), "/renew", old)
		ck, _ := r.cookie("session")
		if ck == nil || ck.MaxAge <= 0 {
			t.Fatalf("NewIdentity on a cookie store sent no fresh cookie: %v", r.header)
		}
		if r := srv.do(t, mwPlain(), "/whoami", &http.Cookie{Name: "session", Value: ck.Value}); !strings.HasPrefix(r.body, "user=ann cart=3 new=false") {
			t.Errorf("after NewIdentity: %q", r.body)
		}
	})
}

func TestMiddlewareNewSession(t *testing.T) {
	store, backend := mwServerStore(nil)
	srv := mwStart(t, store, mwIdentityMux())

	old := mwLogin(t, srv)
	gets := backend.gets.Load()
	r := srv.do(t, mwPlain(), "/fresh?bob=1", old)
	if r.body != "len=0 new=true" {
		t.Errorf("NewSession: %q", r.body)
	}
	// The old session is read, so that a logout that ends it while this
	// request runs ends its replacement too.
	if got := backend.gets.Load() - gets; got != 1 {
		t.Errorf("NewSession read the store %d times, want 1", got)
	}
	ck, _ := r.cookie("session")
	if ck == nil || ck.MaxAge <= 0 || ck.Value == old.Value {
		t.Fatalf("NewSession with data: cookie %+v, want a new ID", ck)
	}
	if n := backend.sessions(); n != 1 {
		t.Errorf("%d records, want only the new one", n)
	}
	if r := srv.do(t, mwPlain(), "/whoami", old); !strings.Contains(r.body, "new=true") {
		t.Errorf("old record still loads: %q", r.body)
	}
	if r := srv.do(t, mwPlain(), "/whoami", &http.Cookie{Name: "session", Value: ck.Value}); !strings.HasPrefix(r.body, "user=bob cart=<nil> new=false") {
		t.Errorf("new session: %q", r.body)
	}

	// NewSession that stays empty: old record deleted, cookie expired.
	old = mwLogin(t, srv)
	r = srv.do(t, mwPlain(), "/fresh", old)
	if ck, raw := r.cookie("session"); ck == nil || !strings.Contains(raw, "Max-Age=0") {
		t.Errorf("empty NewSession: cookie %q, want a deletion cookie", raw)
	}
	if r := srv.do(t, mwPlain(), "/whoami", old); !strings.Contains(r.body, "new=true") {
		t.Errorf("old record still loads after empty NewSession: %q", r.body)
	}
	if n := backend.sessions(); n != 1 { // the bob session from above
		t.Errorf("%d records, want 1", n)
	}
}

// mwInFlight runs the two-request race of rack-session CVE-2025-46336:
// request A loads the session and waits; request B logs out; then A runs
// late(s). It returns A's response.
func mwInFlight(t *testing.T, late func(*Session)) (mwResp, *mwCountingBackend, *mwServer, *http.Cookie) {
	t.Helper()
	store, backend := mwServerStore(nil)
	loaded, release := make(chan struct{}), make(chan struct{})
	mux := mwIdentityMux()
	mux.Handle("/slow", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Get("user")
		close(loaded)
		<-release
		late(s)
		_, _ = io.WriteString(w, "slow done")
	}))
	srv := mwStart(t, store, mux)
	old := mwLogin(t, srv)

	type result struct {
		resp *http.Response
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/slow", nil)
		req.AddCookie(old)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{resp: resp, body: string(b), err: err}
	}()
	<-loaded
	if r := srv.do(t, mwPlain(), "/logout", old); r.status != 200 {
		t.Fatalf("logout: %d", r.status)
	}
	if backend.Len() != 0 {
		t.Fatalf("logout left %d records", backend.Len())
	}
	close(release)
	res := <-done
	srv.wait(t)
	if res.err != nil {
		t.Fatal(res.err)
	}
	return mwResp{status: res.resp.StatusCode, body: res.body, header: res.resp.Header}, backend, srv, old
}

func TestMiddlewareLogoutWins(t *testing.T) {
	r, backend, srv, old := mwInFlight(t, func(s *Session) {
		_ = s.Set("cart", 99)
	})
	if r.status != 200 || r.body != "slow done" {
		t.Errorf("in-flight request: %d %q", r.status, r.body)
	}
	if backend.Len() != 0 {
		t.Errorf("in-flight request resurrected the logged-out session (%d records)", backend.Len())
	}
	// No cookie: the logout already expired it, and a deletion cookie
	// could delete one the browser got since (a new login).
	if ck, raw := r.cookie("session"); ck != nil {
		t.Errorf("in-flight request got cookie %q, want none", raw)
	}
	if r := srv.do(t, mwPlain(), "/whoami", old); !strings.Contains(r.body, "new=true") {
		t.Errorf("old cookie loads again: %q", r.body)
	}
}

// NewIdentity at a privilege change must not resurrect a session that was
// logged out while the request was in flight: the data it would carry over
// belongs to the ended session.
func TestMiddlewareLogoutWinsOverNewIdentity(t *testing.T) {
	r, backend, _, _ := mwInFlight(t, func(s *Session) {
		s.NewIdentity()
	})
	if backend.Len() != 0 {
		t.Errorf("NewIdentity in an in-flight request re-created the logged-out session under a new ID (%d records)", backend.Len())
	}
	if ck, _ := r.cookie("session"); ck != nil && ck.MaxAge > 0 {
		t.Errorf("in-flight NewIdentity handed out a live cookie for the logged-out session")
	}
}

// ---------------------------------------------------------------------------
// Store flood and corrupt records

func TestMiddlewareAnonymousCreatesNoRecords(t *testing.T) {
	store, backend := mwServerStore(nil)
	h := mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Get("x")
		_ = s.Has("y")
		_, _ = GetAs[string](s, "z")
		_ = s.Keys()
		_ = s.Flashes()
		s.Delete("nope")
		s.Clear()
		fmt.Fprint(w, s.IsNew())
	})
	srv := mwStart(t, store, h)
	c := mwPlain()
	cookies := [][]*http.Cookie{
		nil,
		{{Name: "session", Value: newID()}},   // well-formed, unknown
		{{Name: "session", Value: "garbage"}}, // malformed
	}
	gets := backend.gets.Load()
	for i := range 1000 {
		r := srv.do(t, c, "/", cookies[i%len(cookies)]...)
		if r.status != 200 || r.body != "true" {
			t.Fatalf("request %d: %d %q", i, r.status, r.body)
		}
		// Never a live cookie; a dead cookie is expired so the browser
		// stops sending it; no cookie at all gets no Set-Cookie.
		ck, raw := r.cookie("session")
		if sent := len(cookies[i%len(cookies)]) > 0; !sent && ck != nil || sent && (ck == nil || ck.MaxAge >= 0) {
			t.Fatalf("anonymous read-only request %d (cookie sent: %v) got Set-Cookie %q", i, sent, raw)
		}
		if mwVaryCookieCount(r.header) != 1 {
			t.Fatalf("request %d lacks Vary: Cookie", i)
		}
	}
	if backend.Len() != 0 || backend.adds.Load() != 0 || backend.replaces.Load() != 0 {
		t.Errorf("anonymous traffic wrote the store: %d records, %d adds, %d replaces",
			backend.Len(), backend.adds.Load(), backend.replaces.Load())
	}
	// Only well-formed IDs reach the backend.
	if got := backend.gets.Load() - gets; got != 333 {
		t.Errorf("%d backend reads, want 333 (one per well-formed cookie)", got)
	}
}

func TestMiddlewareCorruptRecord(t *testing.T) {
	now := time.Now().Unix()
	cases := []struct {
		name string
		data string
		live bool
	}{
		{"not json", "\x00\xffnot json", false},
		{"empty", "", false},
		{"aiohttp invalidated {}", "{}", false},
		{"no created", `{"session":{"user":"ann"}}`, false},
		{"created is a string", `{"created":"yesterday","session":{"user":"ann"}}`, false},
		{"created negative float", `{"created":-1.5,"session":{"user":"ann"}}`, false},
		{"null", "null", false},
		{"array", `[1,2,3]`, false},
		{"truncated", fmt.Sprintf(`{"created":%d,"session":{"user":"an`, now), false},
		{"session not an object", fmt.Sprintf(`{"created":%d,"session":[1]}`, now), false},
		{"expired", `{"created":1,"session":{"user":"ann"}}`, false},
		{"valid control", fmt.Sprintf(`{"created":%d,"session":{"user":"ann"}}`, now), true},
		{"valid float created", fmt.Sprintf(`{"created":%d.25,"session":{"user":"ann"}}`, now), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := &mwFixedStore{data: []byte(tc.data)}
			srv := mwStart(t, store, mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
				msg := fmt.Sprintf("new=%v user=%v len=%d", s.IsNew(), s.Get("user"), s.Len())
				_ = s.Set("k", "v")
				_, _ = io.WriteString(w, msg)
			}))
			r := srv.do(t, mwPlain(), "/", &http.Cookie{Name: "session", Value: "tok"})
			if r.status != 200 {
				t.Fatalf("status %d %q, want 200", r.status, r.body)
			}
			want := "new=true user=<nil> len=0"
			if tc.live {
				want = "new=false user=ann len=1"
			}
			if r.body != want {
				t.Errorf("body %q, want %q", r.body, want)
			}
			store.mu.Lock()
			defer store.mu.Unlock()
			if len(store.saveToken) != 1 {
				t.Fatalf("%d saves, want 1", len(store.saveToken))
			}
			if tc.live != (store.saveToken[0] == "tok") {
				t.Errorf("save token %q: a corrupt record must start a new session, a live one update itself", store.saveToken[0])
			}
		})
	}
}

// A client-chosen session ID (unknown to the store, or in the query
// string) is never adopted: a new session always gets a fresh ID.
func TestMiddlewareUnknownIDNotAdopted(t *testing.T) {
	store, backend := mwServerStore(nil)
	srv := mwStart(t, store, mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		msg := fmt.Sprintf("new=%v", s.IsNew())
		_ = s.Set("user", "victim")
		_, _ = io.WriteString(w, msg)
	}))
	planted := newID()
	r := srv.do(t, mwPlain(), "/", &http.Cookie{Name: "session", Value: planted})
	ck, _ := r.cookie("session")
	if r.body != "new=true" || ck == nil || ck.Value == planted || ck.Value == "" {
		t.Errorf("planted ID: body %q, cookie %+v: the planted ID %s was adopted", r.body, ck, planted)
	}
	planted = newID()
	r = srv.do(t, mwPlain(), "/?session="+planted)
	if ck, _ := r.cookie("session"); r.body != "new=true" || ck == nil || ck.Value == planted {
		t.Errorf("query-string ID: body %q, cookie %+v", r.body, ck)
	}
	if backend.Len() != 2 {
		t.Errorf("%d records, want 2", backend.Len())
	}
}

// Browsers send several cookies of one name (different Paths or Domains);
// a stale or garbage one first must not hide the live one.
func TestMiddlewareSeveralCookies(t *testing.T) {
	store, _ := mwServerStore(nil)
	mux := mwIdentityMux()
	srv := mwStart(t, store, mux)
	live := mwLogin(t, srv)
	r := srv.do(t, mwPlain(), "/whoami",
		&http.Cookie{Name: "session", Value: "garbage"},
		&http.Cookie{Name: "session", Value: newID()},
		live)
	if !strings.HasPrefix(r.body, "user=ann cart=3 new=false id="+live.Value) {
		t.Errorf("live cookie behind stale ones not found: %q", r.body)
	}
}

// A session whose absolute deadline passes while the request runs (a slow
// handler, or SetLifetime shortening an old session) must not be written
// back with a non-positive TTL: the memory backend (and Redis) read that
// as "never expires", leaving an immortal record behind.
func TestMiddlewareSaveAfterDeadline(t *testing.T) {
	cases := []struct {
		name string
		wait time.Duration // before the request
		late func(s *Session, clock *mwClock)
	}{
		{"deadline passes during the handler", 59 * time.Minute, func(s *Session, clock *mwClock) {
			clock.Advance(2 * time.Minute)
			_ = s.Set("b", 2)
		}},
		{"SetLifetime shorter than the session's age", 45 * time.Minute, func(s *Session, clock *mwClock) {
			s.SetLifetime(30 * time.Minute)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := mwNewClock()
			store, backend := mwServerStore(clock.Now)
			mux := http.NewServeMux()
			mux.Handle("/set", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
				_ = s.Set("a", 1)
			}))
			mux.Handle("/late", mwSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
				if s.IsNew() {
					http.Error(w, "session lost before the test", 599)
					return
				}
				tc.late(s, clock)
			}))
			srv := mwStart(t, store, mux, WithClock(clock.Now), WithLifetime(time.Hour))
			b := mwNewBrowser(srv)
			b.get(t, "/set")
			clock.Advance(tc.wait)
			r := b.get(t, "/late")
			if r.status != 200 {
				t.Fatalf("late: %d %q", r.status, r.body)
			}
			if ck, raw := r.cookie("session"); ck != nil && ck.MaxAge > 0 {
				t.Errorf("expired session got a live cookie %q", raw)
			}
			clock.Advance(365 * 24 * time.Hour)
			if n := backend.Len(); n != 0 {
				t.Errorf("a year later %d record(s) still live: saved with a non-positive TTL, which means no expiry", n)
			}
		})
	}
}

// TestMiddlewareRejectsNilClient: a Redis or Memcached store built on a nil
// client (or a server store on a nil backend) cannot serve one request, so
// Middleware refuses it with ErrInvalidConfig instead of letting the first
// request panic, whether the client is a nil interface or a nil pointer in
// one, and through a Store wrapper too. A client that merely cannot
// connect yet is not refused: Middleware makes no network call.
func TestMiddlewareRejectsNilClient(t *testing.T) {
	var nilClient *redis.Client
	var nilCluster *redis.ClusterClient
	for name, store := range map[string]Store{
		"NewRedisStore(nil)":                      NewRedisStore(nil),
		"NewRedisStore(nil *redis.Client)":        NewRedisStore(nilClient),
		"NewRedisStore(nil *redis.ClusterClient)": NewRedisStore(nilCluster),
		"NewRedisBackend(nil)":                    NewServerStore(NewRedisBackend(nil)),
		"NewMemcachedStore(nil)":                  NewMemcachedStore(nil),
		"NewMemcachedBackend(nil)":                NewServerStore(NewMemcachedBackend(nil)),
		"NewServerStore(nil)":                     NewServerStore(nil),
		"wrapped NewRedisStore(nil)":              unwrappingStore{NewRedisStore(nil)},
	} {
		mw, err := Middleware(store)
		if !errors.Is(err, ErrInvalidConfig) || mw != nil {
			t.Errorf("Middleware(%s): err %v, want ErrInvalidConfig", name, err)
		}
	}
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer rc.Close()
	for name, store := range map[string]Store{
		"redis":     NewRedisStore(rc),
		"memcached": NewMemcachedStore(memcache.New("127.0.0.1:1")),
	} {
		if _, err := Middleware(store); err != nil {
			t.Errorf("Middleware(%s store with a client): %v", name, err)
		}
	}
}

// unwrappingStore is a Store wrapper that exposes the store it wraps.
type unwrappingStore struct{ Store }

func (u unwrappingStore) Unwrap() Store { return u.Store }
