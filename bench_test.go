package httpsession

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// csBenchStores are the stores benchmarked, in the order reported.
var csBenchStores = []string{"nacl", "encrypted", "signed", "memory"}

// csBenchPayload is the session every benchmark request carries: five
// short strings and a counter.
func csBenchPayload(s *Session) {
	s.Set("user", "alice")
	s.Set("role", "admin")
	s.Set("lang", "en-GB")
	s.Set("theme", "dark")
	s.Set("csrf", "c5f3e1a0b9d2")
	s.Set("n", 0)
}

// csBenchSetup returns the middleware around next and a request that
// carries a valid session cookie with csBenchPayload.
func csBenchSetup(b *testing.B, storeName string, next http.Handler) (http.Handler, *http.Request) {
	b.Helper()
	store := mustStore(b, kindNamed(storeName))
	mw := newMiddleware(b, store)
	seed := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Get(r)
		if err != nil {
			b.Fatal(err)
		}
		csBenchPayload(s)
	}))
	w := httptest.NewRecorder()
	seed.ServeHTTP(w, httptest.NewRequest("GET", "https://example.com/", nil))
	c, _ := setCookie(w.Header(), DefaultCookieName)
	if c == nil {
		b.Fatalf("%s: no session cookie", storeName)
	}
	req := httptest.NewRequest("GET", "https://example.com/", nil)
	req.Header.Set("Cookie", DefaultCookieName+"="+c.Value)
	return mw(next), req
}

func csBenchRun(b *testing.B, h http.Handler, req *http.Request, wantCookie bool) {
	w := &discardWriter{h: make(http.Header)}
	h.ServeHTTP(w, req) // warm up, and check
	if w.code != http.StatusOK {
		b.Fatalf("status %d", w.code)
	}
	if c, _ := setCookie(w.h, DefaultCookieName); (c != nil) != wantCookie {
		b.Fatalf("Set-Cookie sent: %v, want %v", c != nil, wantCookie)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, req)
	}
}

var csOK = []byte("ok")

// csUntouched never calls Get.
var csUntouched = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	w.Write(csOK)
})

// csRead reads one key.
var csRead = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	s, err := Get(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if u, _ := GetAs[string](s, "user"); u != "alice" {
		http.Error(w, "lost the session", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
	w.Write(csOK)
})

// csModify increments the counter.
var csModify = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	s, err := Get(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	n, err := GetAs[int](s, "n")
	if err != nil {
		http.Error(w, "lost the session", http.StatusInternalServerError)
		return
	}
	if err := s.Set("n", n+1); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
	w.Write(csOK)
})

// BenchmarkUntouched: a request with a session cookie whose handler never
// calls Get, against the bare handler ("floor").
func BenchmarkUntouched(b *testing.B) {
	b.Run("floor", func(b *testing.B) {
		csBenchRun(b, csUntouched, httptest.NewRequest("GET", "https://example.com/", nil), false)
	})
	for _, name := range csBenchStores {
		b.Run(name, func(b *testing.B) {
			h, req := csBenchSetup(b, name, csUntouched)
			csBenchRun(b, h, req, false)
		})
	}
}

// BenchmarkRead: the handler reads one key of the six.
func BenchmarkRead(b *testing.B) {
	for _, name := range csBenchStores {
		b.Run(name, func(b *testing.B) {
			h, req := csBenchSetup(b, name, csRead)
			csBenchRun(b, h, req, false)
		})
	}
}

// BenchmarkModify: the handler increments the counter, so the session is
// saved and a cookie sent.
func BenchmarkModify(b *testing.B) {
	for _, name := range csBenchStores {
		b.Run(name, func(b *testing.B) {
			h, req := csBenchSetup(b, name, csModify)
			csBenchRun(b, h, req, true)
		})
	}
}

// TestCSUntouchedIsFree: with a valid cookie, a handler that never calls
// Get causes no store call, no session header, and at most 2 allocations
// more than the bare handler (issue 2's acceptance bar).
func TestCSUntouchedIsFree(t *testing.T) {
	floorReq := httptest.NewRequest("GET", "https://example.com/", nil)
	w := &discardWriter{h: make(http.Header)}
	floor := testing.AllocsPerRun(200, func() {
		w.reset()
		csUntouched.ServeHTTP(w, floorReq)
	})
	for _, name := range csBenchStores {
		t.Run(name, func(t *testing.T) {
			counting := &countingStore{Store: mustStore(t, kindNamed(name))}
			mw := newMiddleware(t, counting)
			rec := httptest.NewRecorder()
			mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, _ := Get(r)
				csBenchPayload(s)
			})).ServeHTTP(rec, httptest.NewRequest("GET", "https://example.com/", nil))
			c, _ := setCookie(rec.Header(), DefaultCookieName)
			if c == nil {
				t.Fatal("no cookie")
			}
			req := httptest.NewRequest("GET", "https://example.com/", nil)
			req.Header.Set("Cookie", DefaultCookieName+"="+c.Value)
			h := mw(csUntouched)
			before := counting.calls()

			w := &discardWriter{h: make(http.Header)}
			allocs := testing.AllocsPerRun(200, func() {
				w.reset()
				h.ServeHTTP(w, req)
			})
			if n := counting.calls() - before; n != 0 {
				t.Errorf("untouched requests reached the store %d times", n)
			}
			if len(w.h) != 0 {
				t.Errorf("untouched request got headers %v", w.h)
			}
			if allocs > floor+2 {
				t.Errorf("untouched: %.0f allocs, bare handler %.0f: more than 2 extra", allocs, floor)
			}
		})
	}
}
