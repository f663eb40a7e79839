package httpsession

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

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
