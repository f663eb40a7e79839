package httpsession

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"
)

// TestErrorsSayPrefixOnce walks failing paths through the middleware and
// the stores and checks that every error's text says "httpsession:" exactly
// once, however many of the package's errors its chain wraps, and that
// errors.Is still finds each sentinel.
func TestErrorsSayPrefixOnce(t *testing.T) {
	// Nothing listens on these: every call fails at once.
	const dead = "127.0.0.1:1"
	down := map[string]func() *ServerStore{
		"memory": func() *ServerStore { return NewServerStore(failingBackend{errors.New("disk on fire")}) },
		"memory (backend error wraps ErrUnavailable)": func() *ServerStore {
			return NewServerStore(failingBackend{fmt.Errorf("%w: my backend", ErrUnavailable)})
		},
		"redis": func() *ServerStore {
			return NewRedisStore(redis.NewClient(&redis.Options{Addr: dead, MaxRetries: -1, DialTimeout: time.Second}))
		},
		"redis cluster": func() *ServerStore {
			return NewRedisStore(redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{dead}, MaxRetries: -1, DialTimeout: time.Second}))
		},
		"memcached": func() *ServerStore { return NewMemcachedStore(memcache.New(dead)) },
	}
	type failure struct {
		what string
		err  error
		is   error
	}
	var failures []failure
	var mu sync.Mutex
	handler := func(what string, is error) ErrorHandler {
		return func(w http.ResponseWriter, _ *http.Request, err error) {
			mu.Lock()
			failures = append(failures, failure{what, err, is})
			mu.Unlock()
			http.Error(w, "error", 500)
		}
	}
	set := withSession(func(w http.ResponseWriter, r *http.Request, s *Session) { _ = s.Set("k", strings.Repeat("v", 5000)) })
	logout := withSession(func(w http.ResponseWriter, r *http.Request, s *Session) { s.Invalidate() })
	for name, store := range down {
		for _, path := range []struct {
			what   string
			h      http.Handler
			cookie string
		}{{"load", set, newID()}, {"create", set, ""}, {"logout", logout, newID()}} {
			what := name + " down, " + path.what
			app := startApp(t, store(), path.h, WithErrorHandler(handler(what, ErrUnavailable)))
			var cookies []*http.Cookie
			if path.cookie != "" {
				cookies = append(cookies, &http.Cookie{Name: DefaultCookieName, Value: path.cookie})
			}
			app.do(t, nil, "/", cookies...)
		}
	}

	// A cookie too large for browsers, and a record over the size limit.
	app := startApp(t, mustStore(t, kindNamed("nacl"), randomKey(t)), set, WithErrorHandler(handler("oversized cookie", ErrCookieTooLarge)))
	app.do(t, nil, "/")
	app = startApp(t, NewMemoryStore(), set, WithMaxRecordSize(100), WithErrorHandler(handler("oversized record", ErrRecordTooLarge)))
	app.do(t, nil, "/")

	// A concurrent request's write lands between this request's load and
	// its commit: a conflicting value, and one the merge function cannot
	// decode.
	incr := withSession(func(w http.ResponseWriter, r *http.Request, s *Session) { _ = s.Set("k", 2) })
	for _, tc := range []struct {
		what, record string
		is           error
		h            http.Handler
	}{
		{"conflict", `{"created": %d, "session": {"k": "theirs"}}`, ErrConflict, set},
		{"bad record", `{"created": %d, "session": {"k": "not a number"}}`, ErrDecode, incr},
	} {
		backend := &racingBackend{MemoryBackend: NewMemoryBackend(0, nil), record: tc.record}
		store := NewServerStore(backend)
		opts := []Option{WithConflictPolicy(ConflictFail), WithErrorHandler(handler(tc.what, tc.is))}
		if tc.is == ErrDecode {
			opts = append(opts, WithMerge("k", Merge(func(base, mine, theirs int) int { return theirs + mine - base })))
		}
		app := startApp(t, store, tc.h, opts...)
		id, err := store.Save(t.Context(), "", []byte(fmt.Sprintf(`{"created": %d, "session": {"k": 1}}`, time.Now().Unix())), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		app.do(t, nil, "/", &http.Cookie{Name: DefaultCookieName, Value: id})
	}

	// Errors returned to the handler rather than the error handler.
	s := &Session{codec: JSONCodec{}, vals: values{m: map[string][]byte{"k": []byte(`"x"`)}}}
	_, decodeErr := GetAs[int](s, "k")
	failures = append(failures,
		failure{"GetAs", decodeErr, ErrDecode},
		failure{"Set", s.Set("c", make(chan int)), ErrEncode})

	seen := map[string]bool{}
	for _, f := range failures {
		seen[f.what] = true
		if f.err == nil {
			t.Errorf("%s: no error", f.what)
			continue
		}
		msg := f.err.Error()
		if strings.Count(msg, "save session") > 1 || strings.Count(msg, "load session") > 1 {
			t.Errorf("%s: %q repeats its context", f.what, msg)
		}
		if n := strings.Count(msg, "httpsession:"); n != 1 || !strings.HasPrefix(msg, "httpsession: ") {
			t.Errorf("%s: %q says httpsession: %d times, want once, at the start", f.what, msg, n)
		}
		if !errors.Is(f.err, f.is) {
			t.Errorf("%s: %q does not wrap %v", f.what, msg, f.is)
		}
	}
	if want := 3*len(down) + 6; len(seen) != want {
		t.Errorf("%d failing paths reached, want %d: %v", len(seen), want, seen)
	}
}

// failingBackend is a Backend whose every call fails with err.
type failingBackend struct{ err error }

func (b failingBackend) Get(context.Context, string) ([]byte, error) { return nil, b.err }
func (b failingBackend) Add(context.Context, string, []byte, time.Duration) error {
	return b.err
}
func (b failingBackend) Replace(context.Context, string, []byte, time.Duration) error {
	return b.err
}
func (b failingBackend) Delete(context.Context, string) error { return b.err }

// racingBackend is a memory backend where another request writes record
// (a format with the current Unix time for %d) just before this request's
// first conditional write.
type racingBackend struct {
	*MemoryBackend
	record string
	once   sync.Once
}

func (b *racingBackend) ReplaceIf(ctx context.Context, key string, version uint64, value []byte, ttl time.Duration) ([]byte, uint64, error) {
	b.once.Do(func() {
		rec := b.record
		if strings.Contains(rec, "%d") {
			rec = fmt.Sprintf(rec, time.Now().Unix())
		}
		_ = b.MemoryBackend.Replace(ctx, key, []byte(rec), ttl)
	})
	return b.MemoryBackend.ReplaceIf(ctx, key, version, value, ttl)
}
