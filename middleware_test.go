package httpsession

// Tests of middleware.go: Middleware's wrapping (nothing is saved after a
// panic) and the error handler that answers for a failing store.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"
)

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

// TestDefaultLoggerResolvedWhenLogging: without WithLogger the middleware
// logs through slog.Default() as it is when it logs, so a main that calls
// slog.SetDefault after building the middleware gets its records, with
// their level and fields, in its handler.
func TestDefaultLoggerResolvedWhenLogging(t *testing.T) {
	old := slog.Default()
	t.Cleanup(func() { slog.SetDefault(old) })
	mw, err := Middleware(NewMemoryStore(), WithSecure(false))
	if err != nil {
		t.Fatal(err)
	}
	var buf logBuffer
	slog.SetDefault(slog.New(slog.NewJSONHandler(&buf, nil)))
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Get(r)
		if err != nil {
			return
		}
		_, _ = io.WriteString(w, "x")
		_ = s.Set("late", 1) // after the headers: logged as a lost change
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/p", nil))
	got := buf.String()
	if !strings.Contains(got, `"level":"ERROR"`) || !strings.Contains(got, `"msg":"httpsession: session change lost"`) ||
		!strings.Contains(got, `"path":"/p"`) {
		t.Fatalf("slog.Default set after Middleware got %q", got)
	}
}
