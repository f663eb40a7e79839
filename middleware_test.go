package httpsession

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// Shared test helpers (used by middleware_test.go, writer_test.go,
// session_test.go, and the clock and log buffer by the cookie store and
// interop tests too). Every file-scope name starts with "mw".

// errCause is the root cause the failing stores report.
var errCause = errors.New("backend exploded at 10.0.0.7:6379")

// failStore fails the calls it is told to fail and delegates the others
// to inner (an insecure cookie store when nil).
type failStore struct {
	inner                       Store
	loadErr, saveErr, deleteErr error
}

func (s *failStore) in() Store {
	if s.inner == nil {
		return NewInsecureCookieStore()
	}
	return s.inner
}

func (s *failStore) Load(ctx context.Context, token string) ([]byte, error) {
	if s.loadErr != nil {
		return nil, s.loadErr
	}
	return s.in().Load(ctx, token)
}

func (s *failStore) Save(ctx context.Context, token string, data []byte, ttl time.Duration) (string, error) {
	if s.saveErr != nil {
		return "", s.saveErr
	}
	return s.in().Save(ctx, token, data, ttl)
}

func (s *failStore) Delete(ctx context.Context, token string) error {
	if s.deleteErr != nil {
		return s.deleteErr
	}
	return s.in().Delete(ctx, token)
}

// fixedStore answers every Load with fixed bytes and records Saves.
type fixedStore struct {
	data      []byte
	mu        sync.Mutex
	saveToken []string
}

func (s *fixedStore) Load(context.Context, string) ([]byte, error) { return bytes.Clone(s.data), nil }

func (s *fixedStore) Save(_ context.Context, token string, _ []byte, _ time.Duration) (string, error) {
	s.mu.Lock()
	s.saveToken = append(s.saveToken, token)
	s.mu.Unlock()
	return "fresh-token", nil
}

func (s *fixedStore) Delete(context.Context, string) error { return nil }

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

// rawGet sends one GET over a fresh TCP connection and returns every
// response read from it: the 1xx interim responses, then the final one.
func rawGet(t *testing.T, addr, path string, cookies ...*http.Cookie) []response {
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
	var out []response
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
		out = append(out, response{status: resp.StatusCode, header: resp.Header, body: string(body)})
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return out
		}
	}
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

// ---------------------------------------------------------------------------
// Laziness

func TestMiddlewareLazyUntouched(t *testing.T) {
	for name, server := range map[string]bool{"cookie": false, "server": true} {
		t.Run(name, func(t *testing.T) {
			var st Store
			var counting *countingStore
			var backend *countingBackend
			if server {
				st, backend = countedMemoryStore(nil)
			} else {
				counting = &countingStore{Store: mustStore(t, kindNamed("signed"))}
				st = counting
			}
			mux := http.NewServeMux()
			mux.Handle("/set", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
				_ = s.Set("user", "ann")
			}))
			mux.HandleFunc("/untouched", func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, "plain page")
			})
			app := startApp(t, st, mux)
			c := jarClient(t)
			if r := app.do(t, c, "/set"); countSetCookies(r.header, "session") != 1 {
				t.Fatalf("setup: no session cookie: %v", r.header)
			}
			calls := func() int64 {
				if server {
					return backend.total()
				}
				return counting.calls()
			}
			before := calls()
			for range 3 {
				r := app.do(t, c, "/untouched")
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
	store := &countingStore{Store: NewInsecureCookieStore()}
	mw := newMiddleware(t, store)
	wrapped := mw(next)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Cookie", "session="+insecureToken(t, time.Now(), map[string]any{"a": 1}))
	w := &discardWriter{h: make(http.Header)}
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
	if n := store.calls(); n != 0 {
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

type ctxKey struct{}

func TestGetReturnsSameSession(t *testing.T) {
	store, _ := countedMemoryStore(nil)
	chk := &handlerErrors{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s1, err1 := Get(r)
		s2, err2 := Get(r)
		if err1 != nil || err2 != nil || s1 == nil || s1 != s2 {
			chk.errorf("Get twice: %p %v, %p %v", s1, err1, s2, err2)
			return
		}
		// A request derived by a later middleware still finds the session.
		r2 := r.WithContext(context.WithValue(r.Context(), ctxKey{}, 1))
		if s3, err := Get(r2); err != nil || s3 != s1 {
			chk.errorf("Get on derived request: %p %v, want %p", s3, err, s1)
		}
		_ = s1.Set("k", "v")
		if got := s2.Get("k"); got != "v" {
			chk.errorf("value set through one pointer not seen through the other: %v", got)
		}
		if s4, err := NewSession(r); err != nil || s4 != s1 {
			chk.errorf("NewSession after Get: %p %v, want the same *Session %p", s4, err, s1)
		} else if s1.Len() != 0 {
			chk.errorf("NewSession did not discard data: %v", s1.Keys())
		}
	})
	app := startApp(t, store, h)
	app.do(t, nil, "/")
	chk.report(t)
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
	store, backend := countedMemoryStore(nil)
	mw := newMiddleware(t, store)
	mux := http.NewServeMux()
	mux.Handle("/set", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("k", "v1")
	}))
	mux.Handle("/get", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		fmt.Fprint(w, s.Get("k"))
	}))
	mux.Handle("/panic", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("k", "v2")
		_ = s.Set("other", 1)
		panic("boom")
	}))
	mux.Handle("/abort", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("k", "v3")
		panic(http.ErrAbortHandler)
	}))
	inner := mw(mux)
	recovered := make(chan any, 10)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	defer ts.Close()
	get := func(c *http.Client, path string) (*http.Response, string, error) {
		resp, err := c.Get(ts.URL + path)
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
	resp, _, err := get(http.DefaultClient, "/panic")
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
	c := jarClient(t)
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
	unavailable := fmt.Errorf("%w: %w", ErrUnavailable, errCause)
	plain := fmt.Errorf("wrapped: %w", errCause)
	live := insecureToken(t, time.Now(), map[string]any{"user": "ann"})
	cases := []struct {
		name     string
		store    Store
		cookie   string
		action   string // set, invalidate
		wantCode int
	}{
		{"load unavailable", &failStore{loadErr: unavailable}, "whatever", "set", 503},
		{"load plain error", &failStore{loadErr: plain}, "whatever", "set", 500},
		{"save unavailable", &failStore{saveErr: unavailable}, "", "set", 503},
		{"save plain error", &failStore{saveErr: plain}, "", "set", 500},
		{"update unavailable", &failStore{saveErr: unavailable}, live, "set", 503},
		{"delete unavailable", &failStore{deleteErr: unavailable}, live, "invalidate", 503},
		{"server store backend plain error", func() Store {
			st, b := countedMemoryStore(nil)
			b.failWrite = errCause
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
			app := startApp(t, tc.store, h)
			var cookies []*http.Cookie
			if tc.cookie != "" {
				cookies = append(cookies, &http.Cookie{Name: "session", Value: tc.cookie})
			}
			r := app.do(t, nil, "/", cookies...)
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
			if !strings.Contains(app.log.String(), "level=ERROR") || !strings.Contains(app.log.String(), "exploded") {
				t.Errorf("store failure not logged with its cause: %s", app.log.String())
			}
		})
	}
}

func TestMiddlewareCustomErrorHandler(t *testing.T) {
	unavailable := fmt.Errorf("%w: %w", ErrUnavailable, errCause)
	serverStore, backend := countedMemoryStore(nil)
	backend.failWrite = errCause
	cases := []struct {
		name   string
		store  Store
		cookie bool
	}{
		{"load", &failStore{loadErr: unavailable}, true},
		{"save", &failStore{saveErr: unavailable}, false},
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
			h := withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
				_ = s.Set("k", "v")
				_, _ = io.WriteString(w, "page")
			})
			app := startApp(t, tc.store, h, WithErrorHandler(eh))
			var cookies []*http.Cookie
			if tc.cookie {
				cookies = append(cookies, &http.Cookie{Name: "session", Value: "x"})
			}
			r := app.do(t, nil, "/", cookies...)
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
			if !errors.Is(err, errCause) {
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
	clock := newTestClock()
	key := bytes.Repeat([]byte{7}, 32)
	store, err := NewNaClCookieStore(key)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/set", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("user", "ann")
	}))
	mux.Handle("/get", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		fmt.Fprint(w, s.Get("user"))
	}))
	app := startApp(t, store, mux, WithClock(clock.Now))
	c := jarClient(t)
	r := app.do(t, c, "/set")
	ck, raw := r.setCookie(DefaultCookieName)
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
	if r := app.do(t, c, "/get"); r.body != "ann" {
		t.Errorf("second request saw %q, want ann", r.body)
	}
	// A loopback host gets no insecure-transport warning.
	if strings.Contains(app.log.String(), "plain HTTP") {
		t.Errorf("warned about plain HTTP on loopback: %s", app.log.String())
	}
}

func TestMiddlewareInsecureTransportWarning(t *testing.T) {
	logger, buf := newLogger()
	mw := newMiddleware(t, NewInsecureCookieStore(), WithLogger(logger))
	h := mw(withSession(func(w http.ResponseWriter, r *http.Request, s *Session) { _ = s.Set("a", 1) }))
	for range 3 {
		req := httptest.NewRequest(http.MethodGet, "http://app.example.com/", nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if countSetCookies(rec.Header(), "session") != 1 {
			t.Fatalf("no cookie: %v", rec.Header())
		}
	}
	if n := strings.Count(buf.String(), "plain HTTP"); n != 1 {
		t.Errorf("plain-HTTP warning logged %d times, want once: %s", n, buf.String())
	}
}

func TestMiddlewareCookiePersistence(t *testing.T) {
	clock := newTestClock()
	mux := http.NewServeMux()
	mux.Handle("/set", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("n", 1)
	}))
	mux.Handle("/session-cookie", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("n", 1)
		s.SetPersistent(false)
	}))
	mux.Handle("/persistent-cookie", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("n", 1)
		s.SetPersistent(true)
	}))
	mux.Handle("/touch", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("n", 2)
		fmt.Fprint(w, strings.Join(s.Keys(), ","))
	}))
	noExpiry := func(t *testing.T, r response) {
		t.Helper()
		ck, raw := r.setCookie("session")
		if ck == nil {
			t.Fatalf("no cookie: %v", r.header)
		}
		if strings.Contains(raw, "Max-Age") || strings.Contains(raw, "Expires") {
			t.Errorf("browser-session cookie carries an expiry: %q", raw)
		}
	}
	hasExpiry := func(t *testing.T, r response) {
		t.Helper()
		_, raw := r.setCookie("session")
		if !strings.Contains(raw, "Max-Age=") || !strings.Contains(raw, "Expires=") {
			t.Errorf("persistent cookie lacks Max-Age or Expires: %q", raw)
		}
	}

	t.Run("WithPersistent(false)", func(t *testing.T) {
		app := startApp(t, NewInsecureCookieStore(), mux, WithClock(clock.Now), WithPersistent(false))
		b := app.visitor(true)
		noExpiry(t, b.get(t, "/set"))
		noExpiry(t, b.get(t, "/touch"))
	})
	t.Run("SetPersistent(false)", func(t *testing.T) {
		store, _ := countedMemoryStore(clock.Now)
		app := startApp(t, store, mux, WithClock(clock.Now))
		b := app.visitor(true)
		noExpiry(t, b.get(t, "/session-cookie"))
		// The choice is kept in the record: a later save still omits it.
		r := b.get(t, "/touch")
		noExpiry(t, r)
		if r.body != "n" {
			t.Errorf("keys %q: the persistence choice leaked into the user's map", r.body)
		}
	})
	t.Run("SetPersistent(true) overrides WithPersistent(false)", func(t *testing.T) {
		app := startApp(t, NewInsecureCookieStore(), mux, WithClock(clock.Now), WithPersistent(false))
		b := app.visitor(true)
		hasExpiry(t, b.get(t, "/persistent-cookie"))
		hasExpiry(t, b.get(t, "/touch"))
	})
}

func TestMiddlewareRememberMe(t *testing.T) {
	clock := newTestClock()
	const month = 30 * 24 * time.Hour
	store, backend := countedMemoryStore(clock.Now)
	mux := http.NewServeMux()
	mux.Handle("/login", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("user", "ann")
		if r.URL.Query().Has("remember") {
			s.SetLifetime(month)
		}
	}))
	mux.Handle("/whoami", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		fmt.Fprintf(w, "%v|%s|%s", s.Get("user"), strings.Join(s.Keys(), ","), s.Expires().UTC().Format(time.RFC3339))
	}))
	mux.Handle("/touch", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("seen", true)
	}))
	app := startApp(t, store, mux, WithClock(clock.Now), WithLifetime(time.Hour))

	c := jarClient(t)
	start := clock.Now()
	r := app.do(t, c, "/login?remember=1")
	ck, _ := r.setCookie("session")
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
	r = app.do(t, c, "/whoami")
	want := "ann|user|" + start.Add(month).Format(time.RFC3339)
	if r.body != want {
		t.Errorf("after 2h: %q, want %q", r.body, want)
	}
	r = app.do(t, c, "/touch")
	ck, _ = r.setCookie("session")
	if ck == nil || ck.MaxAge != int((month-2*time.Hour)/time.Second) {
		t.Errorf("re-saved remember-me cookie %+v, want Max-Age %d", ck, int((month-2*time.Hour)/time.Second))
	}
	// The override still ends the session at creation + a month.
	clock.Advance(month - 2*time.Hour)
	if r := app.do(t, c, "/whoami"); strings.HasPrefix(r.body, "ann") {
		t.Errorf("session outlived its overridden lifetime: %q", r.body)
	}

	// Without the override the 1h lifetime applies.
	c2 := jarClient(t)
	r = app.do(t, c2, "/login")
	if ck, _ := r.setCookie("session"); ck == nil || ck.MaxAge != 3600 {
		t.Errorf("default cookie %+v, want Max-Age 3600", ck)
	}
	clock.Advance(2 * time.Hour)
	if r := app.do(t, c2, "/whoami"); strings.HasPrefix(r.body, "ann") {
		t.Errorf("session without override outlived 1h: %q", r.body)
	}
}

func TestMiddlewareCookieOptionsAndDeletion(t *testing.T) {
	mw := newMiddleware(t, NewInsecureCookieStore(),
		WithCookieName("__Secure-sid"), WithDomain("example.com"), WithPath("/app"),
		WithPartitioned(true), WithSameSite(http.SameSiteStrictMode), WithHTTPOnly(false))
	h := mw(withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		if r.URL.Query().Has("logout") {
			s.Invalidate()
			return
		}
		_ = s.Set("user", "ann")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://www.example.com/app/login", nil))
	ck, raw := setCookie(rec.Header(), "__Secure-sid")
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
	del, raw := setCookie(rec.Header(), "__Secure-sid")
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
	mw := newMiddleware(t, NewInsecureCookieStore())
	cases := []struct {
		name     string
		h        http.HandlerFunc
		cookie   bool
		wantVary []string
	}{
		{"untouched", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "x") }, true, nil},
		{"read-only new", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
			_ = s.Get("x")
		}), false, []string{"Cookie"}},
		{"read-only existing", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
			_, _ = io.WriteString(w, fmt.Sprint(s.Get("user")))
		}), true, []string{"Cookie"}},
		{"modified", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
			_ = s.Set("x", 1)
		}), false, []string{"Cookie"}},
		{"handler already set Vary: Cookie", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
			w.Header().Set("Vary", "Cookie")
			_ = s.Set("x", 1)
		}), false, []string{"Cookie"}},
		{"handler sets Vary: Cookie after Get", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
			_ = s.Get("x")
			w.Header().Add("Vary", "Cookie")
			_, _ = io.WriteString(w, "x")
		}), false, []string{"Cookie"}},
		{"handler set lower-case cookie in a list", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
			w.Header().Set("Vary", "Accept-Encoding, cookie")
			_ = s.Get("x")
		}), false, []string{"Accept-Encoding, cookie"}},
		{"handler set other Vary", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
			w.Header().Set("Vary", "Accept-Encoding")
			_ = s.Get("x")
		}), false, []string{"Accept-Encoding", "Cookie"}},
		{"NewSession only", func(w http.ResponseWriter, r *http.Request) { _, _ = NewSession(r) }, true, []string{"Cookie"}},
	}
	token := insecureToken(t, time.Now(), map[string]any{"user": "ann"})
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
			if tc.wantVary != nil && varyCookieCount(rec.Header()) != 1 {
				t.Errorf("Vary names Cookie %d times: %q", varyCookieCount(rec.Header()), got)
			}
		})
	}
}

func TestMiddlewareCacheControl(t *testing.T) {
	mw := newMiddleware(t, NewInsecureCookieStore())
	token := insecureToken(t, time.Now(), map[string]any{"user": "ann"})
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
			h := mw(withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
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
			if got := countSetCookies(rec.Header(), "session") == 1; got != tc.wantCookie {
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

// expiryStores returns a memory store on the fake clock and a cookie store
// (which has no expiry of its own, so only the middleware can enforce it).
func expiryStores(t *testing.T, clock *testClock) map[string]Store {
	return map[string]Store{
		"memory": mustStoreAt(t, kindNamed("memory"), clock.Now),
		"cookie": mustStore(t, kindNamed("signed")),
	}
}

func expiryRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/count", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		n, _ := GetAs[int](s, "n")
		_ = s.Set("n", n+1)
		fmt.Fprintf(w, "%d new=%v", n+1, s.IsNew())
	}))
	mux.Handle("/read", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		n, _ := GetAs[int](s, "n")
		fmt.Fprintf(w, "%d new=%v", n, s.IsNew())
	}))
	return mux
}

func TestMiddlewareAbsoluteLifetime(t *testing.T) {
	for name := range expiryStores(t, newTestClock()) {
		t.Run(name, func(t *testing.T) {
			clock := newTestClock()
			store := expiryStores(t, clock)[name]
			app := startApp(t, store, expiryRoutes(), WithClock(clock.Now), WithLifetime(time.Hour))
			c := jarClient(t)
			if r := app.do(t, c, "/count"); r.body != "1 new=true" {
				t.Fatalf("first: %q", r.body)
			}
			first, _ := app.do(t, c, "/read").setCookie("session") // nil: read-only sends none
			if first != nil {
				t.Errorf("read-only request re-sent the cookie without idle timeout")
			}
			// Keep using and modifying it: every response re-issues the cookie.
			var last *http.Cookie
			for i := 2; i <= 12; i++ {
				clock.Advance(5 * time.Minute)
				r := app.do(t, c, "/count")
				if want := fmt.Sprintf("%d new=false", i); r.body != want {
					t.Fatalf("at +%dm: %q, want %q", (i-1)*5, r.body, want)
				}
				last, _ = r.setCookie("session")
			}
			// +55m: the cookie's Max-Age tracks the remaining lifetime.
			if last == nil || last.MaxAge != 300 {
				t.Errorf("cookie at +55m %+v, want Max-Age 300", last)
			}
			clock.Advance(5 * time.Minute) // exactly the lifetime
			if r := app.do(t, c, "/read"); r.body != "0 new=true" {
				t.Errorf("at the lifetime: %q, want a new session", r.body)
			}
			// Replaying the last issued cookie does not help either.
			plain := &http.Cookie{Name: "session", Value: last.Value}
			if r := app.do(t, nil, "/read", plain); r.body != "0 new=true" {
				t.Errorf("replayed cookie after lifetime: %q, want a new session", r.body)
			}
		})
	}
}

func TestMiddlewareIdleTimeout(t *testing.T) {
	for name := range expiryStores(t, newTestClock()) {
		t.Run(name, func(t *testing.T) {
			clock := newTestClock()
			store := expiryStores(t, clock)[name]
			app := startApp(t, store, expiryRoutes(), WithClock(clock.Now), WithIdleTimeout(10*time.Minute))
			c := jarClient(t)
			r := app.do(t, c, "/count")
			firstCookie, _ := r.setCookie("session")
			if firstCookie == nil || firstCookie.MaxAge != 600 {
				t.Errorf("cookie with idle timeout %+v, want Max-Age 600", firstCookie)
			}
			clock.Advance(9 * time.Minute)
			if r := app.do(t, c, "/read"); r.body != "1 new=false" {
				t.Fatalf("after 9m idle: %q", r.body)
			}
			// The read refreshed the activity: 9 more minutes are fine (18m
			// after creation), even though the original cookie is now stale.
			clock.Advance(9 * time.Minute)
			if r := app.do(t, c, "/read"); r.body != "1 new=false" {
				t.Fatalf("9m after the refresh: %q", r.body)
			}
			if r := app.do(t, nil, "/read", &http.Cookie{Name: "session", Value: firstCookie.Value}); name == "cookie" && r.body != "0 new=true" {
				t.Errorf("cookie sealed 18m ago accepted with a 10m idle timeout: %q", r.body)
			}
			clock.Advance(10 * time.Minute)
			if r := app.do(t, c, "/read"); r.body != "0 new=true" {
				t.Errorf("after 10m idle: %q, want a new session", r.body)
			}
		})
	}
}

func TestMiddlewareIdleRefreshThrottled(t *testing.T) {
	clock := newTestClock()
	t.Run("memory", func(t *testing.T) {
		store, backend := countedMemoryStore(clock.Now)
		app := startApp(t, store, expiryRoutes(), WithClock(clock.Now), WithIdleTimeout(10*time.Minute))
		throttleFlow(t, app, clock, func() int64 { return backend.adds.Load() + backend.replaces.Load() })
	})
	t.Run("cookie", func(t *testing.T) {
		store := &countingStore{Store: mustStore(t, kindNamed("signed"))}
		app := startApp(t, store, expiryRoutes(), WithClock(clock.Now), WithIdleTimeout(10*time.Minute))
		throttleFlow(t, app, clock, store.saves.Load)
	})
}

func throttleFlow(t *testing.T, app *testApp, clock *testClock, writes func() int64) {
	t.Helper()
	c := jarClient(t)
	app.do(t, c, "/count")
	if writes() != 1 {
		t.Fatalf("creation: %d writes", writes())
	}
	// Read-only traffic within idle/10 (1m): no store write, no cookie.
	for range 5 {
		clock.Advance(10 * time.Second)
		r := app.do(t, c, "/read")
		if r.body != "1 new=false" {
			t.Fatalf("read: %q", r.body)
		}
		if ck, _ := r.setCookie("session"); ck != nil {
			t.Errorf("read within idle/10 sent Set-Cookie")
		}
	}
	if writes() != 1 {
		t.Errorf("reads within idle/10 wrote the store %d times", writes()-1)
	}
	// Past idle/10 since the last write: exactly one refresh.
	clock.Advance(11 * time.Second) // 61s since creation
	r := app.do(t, c, "/read")
	if ck, _ := r.setCookie("session"); ck == nil || ck.MaxAge != 600 {
		t.Errorf("refresh after idle/10: cookie %+v, want one with Max-Age 600", ck)
	}
	if writes() != 2 {
		t.Errorf("refresh after idle/10: %d writes, want 2", writes())
	}
	clock.Advance(30 * time.Second)
	r = app.do(t, c, "/read")
	if ck, _ := r.setCookie("session"); ck != nil || writes() != 2 {
		t.Errorf("read 30s after a refresh: cookie %v, %d writes, want none and 2", ck != nil, writes())
	}
}

// ---------------------------------------------------------------------------
// Invalidate, NewIdentity, NewSession, logout wins

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

func TestMiddlewareInvalidate(t *testing.T) {
	store, backend := countedMemoryStore(nil)
	app := startApp(t, store, identityRoutes())
	old := loginCookie(t, app)
	if backend.Len() != 1 {
		t.Fatalf("login: %d records", backend.Len())
	}
	r := app.do(t, nil, "/logout", old)
	if r.body != "len=0 user=<nil>" {
		t.Errorf("after Invalidate in the same request: %q", r.body)
	}
	ck, raw := r.setCookie("session")
	if ck == nil || !strings.Contains(raw, "Max-Age=0") || ck.Value != "" {
		t.Errorf("logout cookie %q, want a deletion cookie", raw)
	}
	if backend.Len() != 0 {
		t.Errorf("server-side record survives Invalidate (%d records)", backend.Len())
	}
	if r := app.do(t, nil, "/whoami", old); !strings.HasPrefix(r.body, "user=<nil> cart=<nil> new=true") {
		t.Errorf("old cookie after logout: %q", r.body)
	}
	// With a jar the browser really drops it.
	c := jarClient(t)
	app.do(t, c, "/login")
	app.do(t, c, "/logout")
	if u, _ := url.Parse(app.srv.URL + "/"); len(c.Jar.Cookies(u)) != 0 {
		t.Errorf("jar still holds the session cookie after logout")
	}
}

func TestMiddlewareInvalidateThenSetNewID(t *testing.T) {
	store, backend := countedMemoryStore(nil)
	app := startApp(t, store, identityRoutes())
	old := loginCookie(t, app)
	r := app.do(t, nil, "/relogin", old)
	if r.body != "new=true cart=<nil>" {
		t.Errorf("Invalidate then Set: %q", r.body)
	}
	ck, _ := r.setCookie("session")
	if ck == nil || ck.MaxAge <= 0 {
		t.Fatalf("no new session cookie: %v", r.header)
	}
	if ck.Value == old.Value {
		t.Fatalf("Invalidate then Set reused the old session ID")
	}
	if n := backend.sessions(); n != 1 {
		t.Errorf("%d records, want only the new session", n)
	}
	if r := app.do(t, nil, "/whoami", old); !strings.Contains(r.body, "new=true") {
		t.Errorf("old ID still loads: %q", r.body)
	}
	want := "user=bob cart=<nil> new=false id=" + ck.Value
	if r := app.do(t, nil, "/whoami", &http.Cookie{Name: "session", Value: ck.Value}); r.body != want {
		t.Errorf("new session: %q, want %q", r.body, want)
	}
}

func TestMiddlewareNewIdentity(t *testing.T) {
	t.Run("server store", func(t *testing.T) {
		store, backend := countedMemoryStore(nil)
		app := startApp(t, store, identityRoutes())
		old := loginCookie(t, app)
		r := app.do(t, nil, "/renew", old)
		ck, _ := r.setCookie("session")
		if ck == nil || ck.MaxAge <= 0 || ck.Value == old.Value {
			t.Fatalf("NewIdentity cookie %+v, want a new ID (old %s)", ck, old.Value)
		}
		if n := backend.sessions(); n != 1 {
			t.Errorf("%d records after NewIdentity, want 1", n)
		}
		want := "user=ann cart=3 new=false id=" + ck.Value
		if r := app.do(t, nil, "/whoami", &http.Cookie{Name: "session", Value: ck.Value}); r.body != want {
			t.Errorf("new identity: %q, want %q", r.body, want)
		}
		if r := app.do(t, nil, "/whoami", old); !strings.Contains(r.body, "new=true") {
			t.Errorf("old ID still loads after NewIdentity: %q", r.body)
		}
	})
	t.Run("cookie store", func(t *testing.T) {
		store, err := NewSignedCookieStore(bytes.Repeat([]byte{3}, 32))
		if err != nil {
			t.Fatal(err)
		}
		app := startApp(t, store, identityRoutes())
		old := loginCookie(t, app)
		r := app.do(t, nil, "/renew", old)
		ck, _ := r.setCookie("session")
		if ck == nil || ck.MaxAge <= 0 {
			t.Fatalf("NewIdentity on a cookie store sent no fresh cookie: %v", r.header)
		}
		if r := app.do(t, nil, "/whoami", &http.Cookie{Name: "session", Value: ck.Value}); !strings.HasPrefix(r.body, "user=ann cart=3 new=false") {
			t.Errorf("after NewIdentity: %q", r.body)
		}
	})
}

func TestMiddlewareNewSession(t *testing.T) {
	store, backend := countedMemoryStore(nil)
	app := startApp(t, store, identityRoutes())

	old := loginCookie(t, app)
	gets := backend.gets.Load()
	r := app.do(t, nil, "/fresh?bob=1", old)
	if r.body != "len=0 new=true" {
		t.Errorf("NewSession: %q", r.body)
	}
	// The old session is read, so that a logout that ends it while this
	// request runs ends its replacement too.
	if got := backend.gets.Load() - gets; got != 1 {
		t.Errorf("NewSession read the store %d times, want 1", got)
	}
	ck, _ := r.setCookie("session")
	if ck == nil || ck.MaxAge <= 0 || ck.Value == old.Value {
		t.Fatalf("NewSession with data: cookie %+v, want a new ID", ck)
	}
	if n := backend.sessions(); n != 1 {
		t.Errorf("%d records, want only the new one", n)
	}
	if r := app.do(t, nil, "/whoami", old); !strings.Contains(r.body, "new=true") {
		t.Errorf("old record still loads: %q", r.body)
	}
	if r := app.do(t, nil, "/whoami", &http.Cookie{Name: "session", Value: ck.Value}); !strings.HasPrefix(r.body, "user=bob cart=<nil> new=false") {
		t.Errorf("new session: %q", r.body)
	}

	// NewSession that stays empty: old record deleted, cookie expired.
	old = loginCookie(t, app)
	r = app.do(t, nil, "/fresh", old)
	if ck, raw := r.setCookie("session"); ck == nil || !strings.Contains(raw, "Max-Age=0") {
		t.Errorf("empty NewSession: cookie %q, want a deletion cookie", raw)
	}
	if r := app.do(t, nil, "/whoami", old); !strings.Contains(r.body, "new=true") {
		t.Errorf("old record still loads after empty NewSession: %q", r.body)
	}
	if n := backend.sessions(); n != 1 { // the bob session from above
		t.Errorf("%d records, want 1", n)
	}
}

// inFlight runs the two-request race of rack-session CVE-2025-46336:
// request A loads the session and waits; request B logs out; then A runs
// late(s). It returns A's response.
func inFlight(t *testing.T, late func(*Session)) (response, *countingBackend, *testApp, *http.Cookie) {
	t.Helper()
	store, backend := countedMemoryStore(nil)
	loaded, release := make(chan struct{}), make(chan struct{})
	mux := identityRoutes()
	mux.Handle("/slow", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Get("user")
		close(loaded)
		<-release
		late(s)
		_, _ = io.WriteString(w, "slow done")
	}))
	app := startApp(t, store, mux)
	old := loginCookie(t, app)

	done := make(chan response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, app.srv.URL+"/slow", nil)
		req.AddCookie(old)
		done <- readResponse(http.DefaultClient.Do(req))
	}()
	<-loaded
	if r := app.do(t, nil, "/logout", old); r.status != 200 {
		t.Fatalf("logout: %d", r.status)
	}
	if backend.Len() != 0 {
		t.Fatalf("logout left %d records", backend.Len())
	}
	close(release)
	res := <-done
	app.wait(t)
	if res.err != nil {
		t.Fatal(res.err)
	}
	return res, backend, app, old
}

func TestMiddlewareLogoutWins(t *testing.T) {
	r, backend, app, old := inFlight(t, func(s *Session) {
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
	if ck, raw := r.setCookie("session"); ck != nil {
		t.Errorf("in-flight request got cookie %q, want none", raw)
	}
	if r := app.do(t, nil, "/whoami", old); !strings.Contains(r.body, "new=true") {
		t.Errorf("old cookie loads again: %q", r.body)
	}
}

// NewIdentity at a privilege change must not resurrect a session that was
// logged out while the request was in flight: the data it would carry over
// belongs to the ended session.
func TestMiddlewareLogoutWinsOverNewIdentity(t *testing.T) {
	r, backend, _, _ := inFlight(t, func(s *Session) {
		s.NewIdentity()
	})
	if backend.Len() != 0 {
		t.Errorf("NewIdentity in an in-flight request re-created the logged-out session under a new ID (%d records)", backend.Len())
	}
	if ck, _ := r.setCookie("session"); ck != nil && ck.MaxAge > 0 {
		t.Errorf("in-flight NewIdentity handed out a live cookie for the logged-out session")
	}
}

// ---------------------------------------------------------------------------
// Store flood and corrupt records

func TestMiddlewareAnonymousCreatesNoRecords(t *testing.T) {
	store, backend := countedMemoryStore(nil)
	h := withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Get("x")
		_ = s.Has("y")
		_, _ = GetAs[string](s, "z")
		_ = s.Keys()
		_ = s.Flashes()
		s.Delete("nope")
		s.Clear()
		fmt.Fprint(w, s.IsNew())
	})
	app := startApp(t, store, h)
	var c *http.Client // the server's own, without a jar
	cookies := [][]*http.Cookie{
		nil,
		{{Name: "session", Value: newID()}},   // well-formed, unknown
		{{Name: "session", Value: "garbage"}}, // malformed
	}
	gets := backend.gets.Load()
	for i := range 1000 {
		r := app.do(t, c, "/", cookies[i%len(cookies)]...)
		if r.status != 200 || r.body != "true" {
			t.Fatalf("request %d: %d %q", i, r.status, r.body)
		}
		// Never a live cookie; a dead cookie is expired so the browser
		// stops sending it; no cookie at all gets no Set-Cookie.
		ck, raw := r.setCookie("session")
		if sent := len(cookies[i%len(cookies)]) > 0; !sent && ck != nil || sent && (ck == nil || ck.MaxAge >= 0) {
			t.Fatalf("anonymous read-only request %d (cookie sent: %v) got Set-Cookie %q", i, sent, raw)
		}
		if varyCookieCount(r.header) != 1 {
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
			store := &fixedStore{data: []byte(tc.data)}
			app := startApp(t, store, withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
				msg := fmt.Sprintf("new=%v user=%v len=%d", s.IsNew(), s.Get("user"), s.Len())
				_ = s.Set("k", "v")
				_, _ = io.WriteString(w, msg)
			}))
			r := app.do(t, nil, "/", &http.Cookie{Name: "session", Value: "tok"})
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
	store, backend := countedMemoryStore(nil)
	app := startApp(t, store, withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		msg := fmt.Sprintf("new=%v", s.IsNew())
		_ = s.Set("user", "victim")
		_, _ = io.WriteString(w, msg)
	}))
	planted := newID()
	r := app.do(t, nil, "/", &http.Cookie{Name: "session", Value: planted})
	ck, _ := r.setCookie("session")
	if r.body != "new=true" || ck == nil || ck.Value == planted || ck.Value == "" {
		t.Errorf("planted ID: body %q, cookie %+v: the planted ID %s was adopted", r.body, ck, planted)
	}
	planted = newID()
	r = app.do(t, nil, "/?session="+planted)
	if ck, _ := r.setCookie("session"); r.body != "new=true" || ck == nil || ck.Value == planted {
		t.Errorf("query-string ID: body %q, cookie %+v", r.body, ck)
	}
	if backend.Len() != 2 {
		t.Errorf("%d records, want 2", backend.Len())
	}
}

// Browsers send several cookies of one name (different Paths or Domains);
// a stale or garbage one first must not hide the live one.
func TestMiddlewareSeveralCookies(t *testing.T) {
	store, _ := countedMemoryStore(nil)
	mux := identityRoutes()
	app := startApp(t, store, mux)
	live := loginCookie(t, app)
	r := app.do(t, nil, "/whoami",
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
		late func(s *Session, clock *testClock)
	}{
		{"deadline passes during the handler", 59 * time.Minute, func(s *Session, clock *testClock) {
			clock.Advance(2 * time.Minute)
			_ = s.Set("b", 2)
		}},
		{"SetLifetime shorter than the session's age", 45 * time.Minute, func(s *Session, clock *testClock) {
			s.SetLifetime(30 * time.Minute)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newTestClock()
			store, backend := countedMemoryStore(clock.Now)
			mux := http.NewServeMux()
			mux.Handle("/set", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
				_ = s.Set("a", 1)
			}))
			mux.Handle("/late", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
				if s.IsNew() {
					http.Error(w, "session lost before the test", 599)
					return
				}
				tc.late(s, clock)
			}))
			app := startApp(t, store, mux, WithClock(clock.Now), WithLifetime(time.Hour))
			b := app.visitor(true)
			b.get(t, "/set")
			clock.Advance(tc.wait)
			r := b.get(t, "/late")
			if r.status != 200 {
				t.Fatalf("late: %d %q", r.status, r.body)
			}
			if ck, raw := r.setCookie("session"); ck != nil && ck.MaxAge > 0 {
				t.Errorf("expired session got a live cookie %q", raw)
			}
			clock.Advance(365 * 24 * time.Hour)
			if n := backend.Len(); n != 0 {
				t.Errorf("a year later %d record(s) still live: saved with a non-positive TTL, which means no expiry", n)
			}
		})
	}
}
