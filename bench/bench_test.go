package bench

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// cookiePad is the Cookie header size of BenchmarkMiddleware's and
// BenchmarkParallel's requests: the largest session cookie of the 5-key
// payload (gorilla-cookie's, 480 bytes) fits in it.
const cookiePad = 512

// BenchmarkMiddleware is the comparison of the issue: one sub-benchmark per
// scenario and library, named scenario=<S>/lib=<L>, on the payload of five
// short string keys plus the counter.
func BenchmarkMiddleware(b *testing.B) {
	e := newEnv()
	for _, sc := range scenarios {
		b.Run("scenario="+sc, func(b *testing.B) {
			for _, l := range libs {
				b.Run("lib="+l.name, func(b *testing.B) {
					s, err := prepare(b, e, l, sc, payload(5), cookiePad)
					if err != nil {
						b.Fatalf("%s: %v", l.name, err)
					}
					runSerial(b, s)
				})
			}
		})
	}
}

// runSerial times one request per iteration: a fresh parsed request, the
// reused writer reset, the handler chain.
//
// Besides wall time it reports cpu-ns/op, the process's CPU time (every
// thread, so the garbage collector's share too) per request: on a machine
// that other work shares, wall time stretches while CPU time stays. For
// the in-process libraries the two agree on a quiet machine; for the
// server stores cpu-ns/op leaves out the wait for Redis or Memcached.
func runSerial(b *testing.B, s *setup) {
	src, w := newReqSource(s.raw), newBenchWriter()
	cpu := startCPU()
	for b.Loop() {
		w.reset()
		s.h.ServeHTTP(w, src.next())
	}
	cpu.report(b)
	s.postCheck(b)
}

type cpuMeter struct {
	start time.Duration
	ok    bool
}

func startCPU() cpuMeter {
	t, ok := cpuTime()
	return cpuMeter{t, ok}
}

func (c cpuMeter) report(b *testing.B) {
	if t, ok := cpuTime(); ok && c.ok && b.N > 0 {
		b.ReportMetric(float64(t-c.start)/float64(b.N), "cpu-ns/op")
	}
}

// scaleLibs are the in-process libraries BenchmarkScale varies the payload
// for; the 4 KB case keeps only floor and the cookie libraries.
var scaleLibs = []string{
	"floor", "httpsession-signed", "httpsession-encrypted", "httpsession-nacl", "httpsession-memory",
	"gorilla-cookie", "scs-memory",
}

// BenchmarkScale runs read and modify with 1, 10 and 100 string keys (plus
// the counter), and with the payload of BenchmarkMiddleware plus one string
// sized so that every cookie library's cookie is just under 4000 bytes
// (keys=near4KB, cookie libraries only).
func BenchmarkScale(b *testing.B) {
	e := newEnv()
	for _, sc := range []string{"read", "modify"} {
		b.Run("scenario="+sc, func(b *testing.B) {
			for _, size := range []string{"1", "10", "100", "near4KB"} {
				b.Run("keys="+size, func(b *testing.B) {
					for _, name := range scaleLibs {
						l := libNamed(name)
						if size == "near4KB" && !l.cookie && l.sessions() {
							continue
						}
						b.Run("lib="+name, func(b *testing.B) {
							kvs, padTo := scalePayload(b, e, size)
							s, err := prepare(b, e, l, sc, kvs, padTo)
							if err != nil {
								b.Skipf("%s cannot keep this payload in its cookie: %v", name, err)
							}
							runSerial(b, s)
						})
					}
				})
			}
		})
	}
}

// nearLimit is the length of the extra string of the near4KB payload.
var nearLimit struct {
	once sync.Once
	n    int
	err  error
}

// maxCookie is the cookie size (name=value) the near4KB payload aims under.
const maxCookie = 4000

// scalePayload returns the payload for size and the Cookie header size the
// requests are padded to (the largest session cookie of that size, rounded
// up; see cookieHeader).
func scalePayload(tb testing.TB, e *env, size string) ([]kv, int) {
	switch size {
	case "1":
		return payload(1), 512
	case "10":
		return payload(10), 768
	case "100":
		return payload(100), 2560
	}
	nearLimit.once.Do(func() { nearLimit.n, nearLimit.err = findNearLimit(tb, e) })
	if nearLimit.err != nil {
		tb.Fatal(nearLimit.err)
	}
	return withBlob(nearLimit.n), 4096
}

func withBlob(n int) []kv {
	return append(payload(5), kv{"blob", strings.Repeat("x", n)})
}

// findNearLimit finds, for each cookie library, the longest extra string
// whose cookie stays within maxCookie bytes, and returns the smallest, so
// that every cookie library carries the same payload.
func findNearLimit(tb testing.TB, e *env) (int, error) {
	best := maxCookie
	for _, l := range libs {
		if !l.cookie {
			continue
		}
		sl := l.open(tb, e)
		fits := func(n int) bool {
			c, err := seed(sl, withBlob(n))
			return err == nil && len(c) <= maxCookie
		}
		lo, hi := 0, maxCookie // fits(lo) must hold
		if !fits(lo) {
			return 0, fmt.Errorf("near4KB: %s cannot keep the base payload", l.name)
		}
		for lo < hi {
			mid := (lo + hi + 1) / 2
			if fits(mid) {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		c, _ := seed(sl, withBlob(lo))
		tb.Logf("near4KB: %s fits a %d-byte string (cookie %d bytes)", l.name, lo, len(c))
		best = min(best, lo)
	}
	return best, nil
}

// BenchmarkParallel is BenchmarkMiddleware under b.RunParallel (GOMAXPROCS
// goroutines sharing one library instance and, for server stores, one
// session).
func BenchmarkParallel(b *testing.B) {
	e := newEnv()
	for _, sc := range scenarios {
		b.Run("scenario="+sc, func(b *testing.B) {
			for _, l := range libs {
				b.Run("lib="+l.name, func(b *testing.B) {
					s, err := prepare(b, e, l, sc, payload(5), cookiePad)
					if err != nil {
						b.Fatalf("%s: %v", l.name, err)
					}
					b.ResetTimer()
					cpu := startCPU()
					b.RunParallel(func(pb *testing.PB) {
						src, w := newReqSource(s.raw), newBenchWriter()
						for pb.Next() {
							w.reset()
							s.h.ServeHTTP(w, src.next())
						}
					})
					b.StopTimer()
					cpu.report(b)
					s.postCheck(b)
				})
			}
		})
	}
}

// untouchedChunk is how many requests one side of a pair in
// BenchmarkUntouchedPaired serves before the other side's turn: a fraction
// of a millisecond for the in-process chains, short next to the bursts of
// load a shared VM sees (chunks of 500 left gorilla, whose chain is
// floor's, ±0.1 µs from zero; chunks of 64, ±0.01 µs).
const untouchedChunk = 64

// BenchmarkUntouchedPaired measures what each library adds to floor in the
// untouched scenario, with the two chains interleaved: chunks of
// untouchedChunk requests alternate between floor and the library (which
// goes first alternates too), and over-floor-ns/op is the median over the
// chunk pairs of the library's time per request minus floor's. A burst of
// load from elsewhere then slows both sides of a pair instead of one whole
// sub-benchmark, as it can in BenchmarkMiddleware, where differences of a
// few hundred nanoseconds on a request of several microseconds drown in the
// run-to-run noise. Its ns/op is the mean of both chains and means nothing
// on its own.
func BenchmarkUntouchedPaired(b *testing.B) {
	e := newEnv()
	for _, l := range libs {
		if l.name == "floor" {
			continue
		}
		b.Run("lib="+l.name, func(b *testing.B) {
			floor, err := prepare(b, e, libNamed("floor"), "untouched", payload(5), cookiePad)
			if err != nil {
				b.Fatal(err)
			}
			s, err := prepare(b, e, l, "untouched", payload(5), cookiePad)
			if err != nil {
				b.Fatalf("%s: %v", l.name, err)
			}
			chains := [2]*setup{floor, s}
			srcs := [2]*reqSource{newReqSource(floor.raw), newReqSource(s.raw)}
			w := newBenchWriter()
			var diffs []float64
			b.ResetTimer()
			for done := 0; done < b.N; {
				n := min(untouchedChunk, b.N-done)
				var perReq [2]float64
				for k := range 2 {
					side := (k + len(diffs)) % 2
					start := time.Now()
					for range n {
						w.reset()
						chains[side].h.ServeHTTP(w, srcs[side].next())
					}
					perReq[side] = float64(time.Since(start).Nanoseconds()) / float64(n)
				}
				diffs = append(diffs, perReq[1]-perReq[0])
				done += n
			}
			b.StopTimer()
			slices.Sort(diffs)
			b.ReportMetric(diffs[len(diffs)/2], "over-floor-ns/op")
			s.postCheck(b)
		})
	}
}

// BenchmarkRawRoundTrip is one GET of a session-sized value with the same
// client settings the libraries get: the network part of a server-side
// read, for the httpsession-redis target.
func BenchmarkRawRoundTrip(b *testing.B) {
	e := newEnv()
	value := []byte(`{"created":1700000000,"session":{"user":"alice","email":"alice@example.com","role":"admin","theme":"dark","lang":"en-GB","counter":41},"accessed":1700000000}`)
	b.Run("op=redis-get", func(b *testing.B) {
		c := e.redisClient(b)
		ctx := context.Background()
		if err := c.Set(ctx, "bench:raw", value, 0).Err(); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := c.Get(ctx, "bench:raw").Bytes(); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The same GET made by a floor handler, through the whole request chain:
	// "floor + one raw GET" as one measurement, under the same scheduling as
	// the libraries' requests.
	b.Run("op=redis-get-in-chain", func(b *testing.B) {
		c := e.redisClient(b)
		if err := c.Set(context.Background(), "bench:raw", value, 0).Err(); err != nil {
			b.Fatal(err)
		}
		runRawInChain(b, func(r *http.Request) error { return c.Get(r.Context(), "bench:raw").Err() })
	})
	b.Run("op=memcached-get-in-chain", func(b *testing.B) {
		c := e.memcacheClient(b)
		if err := c.Set(&memcache.Item{Key: "bench_raw", Value: value}); err != nil {
			b.Fatal(err)
		}
		runRawInChain(b, func(*http.Request) error { _, err := c.Get("bench_raw"); return err })
	})
	b.Run("op=memcached-get", func(b *testing.B) {
		c := e.memcacheClient(b)
		if err := c.Set(&memcache.Item{Key: "bench_raw", Value: value}); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := c.Get("bench_raw"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// runRawInChain times floor's read chain with get called by the handler.
func runRawInChain(b *testing.B, get func(r *http.Request) error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		if err := get(r); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write([]byte(readValue))
	})
	s := &setup{h: mux, raw: rawRequest(cookieHeader("", cookiePad)), want: expectation{body: readValue}}
	if err := check(serve(s.h, s.raw), s.want, true); err != nil {
		b.Fatal(err)
	}
	runSerial(b, s)
}
