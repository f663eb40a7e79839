package httpsession

// Tests of options.go: the defaults, the options' effect on the cookie and
// the configurations Middleware refuses.

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestMiddlewareCookieDefaults(t *testing.T) {
	clock := newTestClock()
	key := []byte("K7w2Rm9Xt4Qz1Nb6Lc3Vp8Hy5Sd0Gj7F")
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

// TestWithSameSiteModes: Lax, Strict and None reach the cookie;
// SameSiteDefaultMode (and any other value), for which net/http writes no
// attribute at all and leaves the policy to each browser, is refused
// rather than silently dropped.
func TestWithSameSiteModes(t *testing.T) {
	for _, mode := range []http.SameSite{http.SameSiteDefaultMode, 0, http.SameSite(99)} {
		mw, err := Middleware(NewInsecureCookieStore(), WithSameSite(mode))
		if !errors.Is(err, ErrInvalidConfig) || mw != nil {
			t.Errorf("WithSameSite(%d): err %v, want ErrInvalidConfig", mode, err)
		}
	}
	for mode, attr := range map[http.SameSite]string{
		http.SameSiteLaxMode:    "SameSite=Lax",
		http.SameSiteStrictMode: "SameSite=Strict",
		http.SameSiteNoneMode:   "SameSite=None",
	} {
		mw, err := Middleware(NewInsecureCookieStore(), WithSameSite(mode))
		if err != nil {
			t.Fatalf("WithSameSite(%d): %v", mode, err)
		}
		h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, err := Get(r)
			if err == nil {
				err = s.Set("k", "v")
			}
			if err != nil {
				t.Error(err)
			}
		}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "https://example.com/", nil))
		if sc := w.Header().Get("Set-Cookie"); !strings.Contains(sc, "; "+attr) {
			t.Errorf("WithSameSite(%d): Set-Cookie %q, want %s", mode, sc, attr)
		}
	}
}
