package httpsession

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// benchStores are the stores benchmarked, in the order reported.
var benchStores = []string{"nacl", "encrypted", "signed", "memory"}

// benchValues is the session every benchmark request carries: five short
// strings and a counter.
var benchValues = map[string]any{"user": "alice", "role": "admin", "lang": "en-GB", "theme": "dark", "csrf": "c5f3e1a0b9d2", "n": 0}

// setBenchPayload fills s with benchValues.
func setBenchPayload(s *Session) {
	for k, v := range benchValues {
		s.Set(k, v)
	}
}

// benchSetup returns the middleware around next and a request that
// carries a valid session cookie with setBenchPayload.
func benchSetup(b *testing.B, storeName string, next http.Handler) (http.Handler, *http.Request) {
	b.Helper()
	store := mustStore(b, kindNamed(storeName))
	mw := newMiddleware(b, store)
	seed := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Get(r)
		if err != nil {
			b.Fatal(err)
		}
		setBenchPayload(s)
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

func benchRun(b *testing.B, h http.Handler, req *http.Request, wantCookie bool) {
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

var okBody = []byte("ok")

// untouchedHandler never calls Get.
var untouchedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	w.Write(okBody)
})

// readHandler reads one key.
var readHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	w.Write(okBody)
})

// modifyHandler increments the counter.
var modifyHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	w.Write(okBody)
})

// BenchmarkUntouched: a request with a session cookie whose handler never
// calls Get, against the bare handler ("floor").
func BenchmarkUntouched(b *testing.B) {
	b.Run("floor", func(b *testing.B) {
		benchRun(b, untouchedHandler, httptest.NewRequest("GET", "https://example.com/", nil), false)
	})
	for _, name := range benchStores {
		b.Run(name, func(b *testing.B) {
			h, req := benchSetup(b, name, untouchedHandler)
			benchRun(b, h, req, false)
		})
	}
}

// BenchmarkRead: the handler reads one key of the six.
func BenchmarkRead(b *testing.B) {
	for _, name := range benchStores {
		b.Run(name, func(b *testing.B) {
			h, req := benchSetup(b, name, readHandler)
			benchRun(b, h, req, false)
		})
	}
}

// BenchmarkModify: the handler increments the counter, so the session is
// saved and a cookie sent.
func BenchmarkModify(b *testing.B) {
	for _, name := range benchStores {
		b.Run(name, func(b *testing.B) {
			h, req := benchSetup(b, name, modifyHandler)
			benchRun(b, h, req, true)
		})
	}
}

// benchRecord is benchValues as a Record, saved at accessed.
func benchRecord(b *testing.B, accessed time.Time) *Record {
	b.Helper()
	rec := &Record{Created: time.Unix(1700000000, 0), Accessed: accessed, Values: map[string][]byte{}}
	for k, v := range benchValues {
		raw, err := JSONCodec{}.EncodeValue(v)
		if err != nil {
			b.Fatal(err)
		}
		rec.Values[k] = raw
	}
	return rec
}

// BenchmarkEncodeRecord: the envelope of a six-key session, saved on a
// whole second and on a fraction of one.
func BenchmarkEncodeRecord(b *testing.B) {
	for _, bc := range []struct {
		name     string
		accessed time.Time
	}{
		{"sec", time.Unix(1700000100, 0)},
		{"ms", time.Unix(1700000100, 123e6)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rec := benchRecord(b, bc.accessed)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := (JSONCodec{}).EncodeRecord(rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeRecord: the envelope of a six-key session, with accessed
// in whole seconds (every record before millisecond precision) and, when
// the codec writes them, with milliseconds.
func BenchmarkDecodeRecord(b *testing.B) {
	for _, name := range []string{"sec", "ms"} {
		b.Run(name, func(b *testing.B) {
			accessed := time.Unix(1700000100, 0)
			if name == "ms" {
				accessed = time.Unix(1700000100, 123e6)
			}
			data, err := JSONCodec{}.EncodeRecord(benchRecord(b, accessed))
			if err != nil {
				b.Fatal(err)
			}
			if name == "ms" && !bytes.Contains(data, []byte(`"accessed":1700000100.123`)) {
				b.Skipf("the codec writes %s", data)
			}
			b.ReportAllocs()
			for b.Loop() {
				var rec Record
				if err := (JSONCodec{}).DecodeRecord(data, &rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeSession: the same six-key record as a session load
// decodes it, its values read in place (values.go) instead of into the
// map a Record holds (BenchmarkDecodeRecord/ms).
func BenchmarkDecodeSession(b *testing.B) {
	data, err := JSONCodec{}.EncodeRecord(benchRecord(b, time.Unix(1700000100, 123e6)))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var rec Record
		var vals values
		if err := decodeSession(JSONCodec{}, data, &rec, &vals); err != nil {
			b.Fatal(err)
		}
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
		untouchedHandler.ServeHTTP(w, floorReq)
	})
	for _, name := range benchStores {
		t.Run(name, func(t *testing.T) {
			counting := &countingStore{Store: mustStore(t, kindNamed(name))}
			mw := newMiddleware(t, counting)
			rec := httptest.NewRecorder()
			mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, _ := Get(r)
				setBenchPayload(s)
			})).ServeHTTP(rec, httptest.NewRequest("GET", "https://example.com/", nil))
			c, _ := setCookie(rec.Header(), DefaultCookieName)
			if c == nil {
				t.Fatal("no cookie")
			}
			req := httptest.NewRequest("GET", "https://example.com/", nil)
			req.Header.Set("Cookie", DefaultCookieName+"="+c.Value)
			h := mw(untouchedHandler)
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

// BenchmarkMemoryFlood: reads of owned sessions (GetVersion of keys that
// contain '{', as ServerStore's loads do) on a MemoryBackend bounded at
// DefaultMaxSessions, in these states:
//
//   - state=empty: the backend holds only the owned sessions, no flood;
//   - state=full-static: the backend is full of anonymous sessions, no
//     flood: what the size alone costs a read (caches, garbage collection);
//   - state=full-stream: the backend is full, and another goroutine
//     creates anonymous sessions in it through ServerStore.Save at a steady
//     20,000 a second (20 a millisecond), each evicting one: a client that
//     keeps asking for new sessions;
//   - state=flood-elsewhere: the backend is full, no flood into it,
//     while another goroutine creates sessions through ServerStore.Save
//     as fast as it can in another, full, backend: the reads compete for
//     the two cores and the garbage collector with the flood, not for the
//     backend (and they read a backend as large as full-flooded's: a
//     large map costs a read cache misses, as full-static shows);
//   - state=full-flooded: the same flood goes to the full backend, each
//     new session evicting an anonymous one;
//   - state=add-elsewhere and state=full-adding: the same two with a flood
//     that calls Add in a tight loop, the most write pressure one
//     goroutine can put on the backend.
//
// The target: full-stream within 1.5× of empty. Under a flood as
// fast as one goroutine can go, the store's own cost is full-flooded over
// flood-elsewhere (the same flood, the same machine load): over empty it
// adds the flood's use of the CPU, on a two-core machine half of it.
// creates/s is the flood's rate while the reads were timed.
func BenchmarkMemoryFlood(b *testing.B) {
	const owned = 1000
	record := []byte(`{"created":1800000000,"session":{"user":"alice","n":1}}`)
	fill := func(b *testing.B, be *MemoryBackend) {
		for i := be.Len(); i < DefaultMaxSessions; i++ {
			if err := be.Add(b.Context(), "httpsession:fill-"+strconv.Itoa(i), record, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, state := range []string{"empty", "full-static", "full-stream", "flood-elsewhere", "full-flooded", "add-elsewhere", "full-adding"} {
		b.Run("state="+state, func(b *testing.B) {
			ctx := b.Context()
			be := NewMemoryBackend(DefaultMaxSessions, nil)
			keys := make([]string, owned)
			for i := range keys {
				keys[i] = fmt.Sprintf("httpsession:{u%d}:%064x", i, i)
				if err := be.Add(ctx, keys[i], record, time.Hour); err != nil {
					b.Fatal(err)
				}
			}
			target := be // the flood's
			if strings.HasSuffix(state, "elsewhere") {
				target = NewMemoryBackend(DefaultMaxSessions, nil)
			}
			stop, done := make(chan struct{}), make(chan struct{})
			var created atomic.Int64
			if state == "full-static" || strings.HasSuffix(state, "elsewhere") {
				fill(b, be) // elsewhere: the read backend as full as the flooded one
			}
			if state == "empty" || state == "full-static" {
				close(done)
			} else {
				fill(b, target)
				create := func(i int) error {
					return target.Add(ctx, "httpsession:flood-"+strconv.Itoa(i), record, time.Hour)
				}
				if state == "full-stream" || state == "flood-elsewhere" || state == "full-flooded" {
					anon := NewServerStore(target)
					create = func(int) error {
						_, err := anon.Save(ctx, "", record, time.Hour)
						return err
					}
				}
				go func() {
					defer close(done)
					var tick <-chan time.Time
					if state == "full-stream" {
						t := time.NewTicker(time.Millisecond)
						defer t.Stop()
						tick = t.C
					}
					for i := 0; ; i++ {
						if tick != nil && i%20 == 0 {
							select {
							case <-stop:
								return
							case <-tick:
							}
						}
						select {
						case <-stop:
							return
						default:
						}
						if err := create(i); err != nil {
							b.Error(err)
							return
						}
						created.Add(1)
					}
				}()
				for created.Load() < 100 { // the flood is under way
					runtime.Gosched()
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			start, before := time.Now(), created.Load()
			i := 0
			for b.Loop() {
				v, _, err := be.GetVersion(ctx, keys[i%owned])
				if err != nil || len(v) != len(record) {
					b.Fatalf("GetVersion(%q) = %q, %v", keys[i%owned], v, err)
				}
				i++
			}
			n, elapsed := created.Load()-before, time.Since(start)
			b.StopTimer()
			close(stop)
			<-done
			b.ReportMetric(float64(n)/elapsed.Seconds(), "creates/s")
			if n := target.Len(); state != "empty" && state != "full-static" && n != DefaultMaxSessions {
				b.Errorf("the flooded backend holds %d sessions, want %d", n, DefaultMaxSessions)
			}
		})
	}
}
