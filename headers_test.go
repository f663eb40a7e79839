package httpsession

// Tests of headers.go: Vary, Cache-Control, the cookie's Max-Age and the
// insecure-transport warning.

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

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

// The headers a session adds are written without an allocation when the
// response has none of them yet: their storage is the request's state's.
func TestAddedHeadersAllocateNothing(t *testing.T) {
	h := http.Header{}
	var spare [3][1]string
	allocs := testing.AllocsPerRun(100, func() {
		clear(h)
		addVaryCookie(h, &spare[0])
		addHeader(h, "Set-Cookie", "session=x", &spare[1])
		makePrivate(h, &spare[2])
	})
	if allocs != 0 {
		t.Errorf("Vary, Set-Cookie and Cache-Control: %v allocations, want 0", allocs)
	}
	want := http.Header{"Vary": {"Cookie"}, "Set-Cookie": {"session=x"}, "Cache-Control": {"no-store"}}
	if fmt.Sprint(h) != fmt.Sprint(want) {
		t.Errorf("headers %v, want %v", h, want)
	}
	h = http.Header{"Vary": {"Accept"}, "Cache-Control": {"max-age=60"}}
	addVaryCookie(h, &spare[0])
	makePrivate(h, &spare[2])
	if got := h.Values("Vary"); len(got) != 2 || got[1] != "Cookie" || h.Get("Cache-Control") != "private, max-age=60" {
		t.Errorf("on a response's own headers: Vary %q, Cache-Control %q", got, h.Get("Cache-Control"))
	}
}
