package httpsession

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestServerStoreMalformedIDs: malformed IDs are "no session" and never
// reach the backend, through the Store and through the middleware. The
// backend conformance suite (httpsessiontest, run in conformance_test.go)
// covers the rest of the server-store contract on every backend.
func TestServerStoreMalformedIDs(t *testing.T) {
	t.Parallel()
	s, c := withCounting(NewMemoryStore())
	ctx := t.Context()
	valid := newID()
	bad := []string{
		"", "x", valid[:42], valid + "A", valid + "=",
		"+" + valid[1:], "/" + valid[1:], "." + valid[1:], " " + valid[1:],
		"%" + valid[1:], "\x00" + valid[1:], "é" + valid[2:], valid[:42] + "\n",
		strings.Repeat("A", 4000), "../../etc/passwd",
	}
	for _, tok := range bad {
		if _, err := s.Load(ctx, tok); err != ErrNotFound {
			t.Errorf("Load(%q) = %v, want ErrNotFound", tok, err)
		}
		if tok != "" {
			if _, err := s.Save(ctx, tok, []byte("x"), time.Minute); err != ErrNotFound {
				t.Errorf("Save(%q) = %v, want ErrNotFound", tok, err)
			}
		}
		if err := s.Delete(ctx, tok); err != nil {
			t.Errorf("Delete(%q) = %v, want nil", tok, err)
		}
	}
	if n := c.total(); n != 0 {
		t.Fatalf("malformed IDs made %d backend calls, want 0", n)
	}
	// The same through the middleware: a malformed cookie is "no
	// session", costs no store call and gets no live cookie (at most a
	// deletion cookie that clears it).
	app := newApp(t, s)
	for _, tok := range bad[1:] {
		if strings.ContainsAny(tok, " \x00\n\"\\;,") || !isPrintableASCII(tok) {
			continue // not sendable as a cookie value
		}
		r := app.getWithCookie(t, "/get?k=user", tok)
		if err := noLiveCookie(r); r.status != http.StatusOK || r.body != "" || err != nil {
			t.Errorf("cookie %q: status %d body %q (%v), want 200, empty, no live cookie", tok, r.status, r.body, err)
		}
	}
	if n := c.total(); n != 0 {
		t.Fatalf("malformed cookies made %d backend calls, want 0", n)
	}
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// noLiveCookie reports a Set-Cookie for the session that is not a
// deletion: a dead or malformed cookie may be cleared, never replaced.
func noLiveCookie(r response) error {
	for _, v := range r.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(v)
		if err != nil {
			return fmt.Errorf("bad Set-Cookie %q: %w", v, err)
		}
		if c.Name == DefaultCookieName && (c.MaxAge >= 0 || c.Value != "") {
			return fmt.Errorf("live session cookie %q", v)
		}
	}
	return nil
}

// wantRecord asserts that id loads a record whose key k holds the JSON
// string v.
func wantRecord(t *testing.T, s *ServerStore, id, k, v string) {
	t.Helper()
	data, err := s.Load(t.Context(), id)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	var rec Record
	if err := (JSONCodec{}).DecodeRecord(data, &rec); err != nil {
		t.Fatalf("decode record %q: %v", data, err)
	}
	if got := string(rec.Values[k]); got != strconv.Quote(v) {
		t.Fatalf("record %s = %s, want %q", k, got, v)
	}
}

// wantVersion asserts that key holds want and returns its version.
func wantVersion(t *testing.T, b ConditionalBackend, key, want string) uint64 {
	t.Helper()
	v, ver, err := b.GetVersion(t.Context(), key)
	if err != nil || string(v) != want {
		t.Fatalf("GetVersion = %q, %#x, %v; want %q", v, ver, err, want)
	}
	return ver
}

// writeTwice stores v1 under key (Add), then v2 in its place (ReplaceIf at
// v1's version), and returns both versions.
func writeTwice(t *testing.T, b ConditionalBackend, key string) (v1, v2 uint64) {
	t.Helper()
	if err := b.Add(t.Context(), key, []byte("v1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	v1 = wantVersion(t, b, key, "v1")
	if _, _, err := b.ReplaceIf(t.Context(), key, v1, []byte("v2"), time.Hour); err != nil {
		t.Fatal(err)
	}
	return v1, wantVersion(t, b, key, "v2")
}

// wantAbsent asserts that key holds nothing, for GetVersion and Get.
func wantAbsent(t *testing.T, b ConditionalBackend, key string) {
	t.Helper()
	if v, ver, err := b.GetVersion(t.Context(), key); err != ErrNotFound {
		t.Fatalf("GetVersion = %q, %#x, %v; want ErrNotFound", v, ver, err)
	}
	if v, err := b.Get(t.Context(), key); err != ErrNotFound {
		t.Fatalf("Get = %q, %v; want ErrNotFound", v, err)
	}
}

// anonymousFlood sends n read-only requests: a third without a cookie, a
// third with malformed cookies, a third with valid but unknown IDs. None
// may write the store or hand out a live cookie (a dead cookie may be
// cleared with a deletion cookie; a request without one gets none).
func anonymousFlood(t *testing.T, store *ServerStore, count *countingBackend, n int) {
	t.Helper()
	app := newApp(t, store)
	cl := jarClient(t)
	cl.Jar = nil // every request carries only the cookie it sets itself
	var unknown atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	var next atomic.Int64
	for range 8 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				req, _ := http.NewRequest(http.MethodGet, app.srv.URL+"/get?k=user", nil)
				switch i % 3 {
				case 1:
					req.Header.Set("Cookie", DefaultCookieName+"=garbage-"+strconv.FormatInt(i, 10))
				case 2:
					unknown.Add(1)
					req.Header.Set("Cookie", DefaultCookieName+"="+newID())
				}
				r := readResponse(cl.Do(req))
				if r.err == nil && r.status != http.StatusOK {
					r.err = fmt.Errorf("request %d: status %d", i, r.status)
				}
				if r.err == nil && i%3 == 0 && len(r.header.Values("Set-Cookie")) != 0 {
					r.err = fmt.Errorf("request %d without a cookie: Set-Cookie %q", i, r.header.Values("Set-Cookie"))
				}
				if r.err == nil {
					r.err = noLiveCookie(r)
				}
				if r.err != nil {
					select {
					case errs <- r.err:
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := count.snapshot()
	t.Logf("%d anonymous requests: %+v", n, got)
	if got.writes() != 0 || got.gets != unknown.Load() {
		t.Fatalf("backend calls %+v, want %d gets (the unknown IDs) and no writes", got, unknown.Load())
	}
}

// TestAiohttpKeyShapes: under WithAiohttpKeys both shapes of Python's
// usual key_factory are read, WithAiohttpKeyFactory chooses the one Go
// mints, and any other token is "no session" without a backend call.
func TestAiohttpKeyShapes(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		name  string
		opts  []ServerOption
		valid func(string) bool
	}{
		{"default", nil, validHexID},
		{"UUID4Hex", []ServerOption{WithAiohttpKeyFactory(UUID4Hex)}, validHexID},
		{"UUID4String", []ServerOption{WithAiohttpKeyFactory(UUID4String)}, validUUIDStringID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c := withCounting(NewMemoryStore(append([]ServerOption{WithAiohttpKeys("AIOHTTP_SESSION")}, tc.opts...)...))
			id, err := s.Save(ctx, "", []byte(`{"created": 1}`), time.Minute)
			if err != nil || !tc.valid(id) {
				t.Fatalf("create = %q, %v; want an ID of the chosen shape", id, err)
			}
			if keys := c.addedKeys(); len(keys) != 1 || keys[0] != "AIOHTTP_SESSION_"+id {
				t.Errorf("keys %q, want AIOHTTP_SESSION_%s", keys, id)
			}
			wantData(t, s, id, `{"created": 1}`)
			// Python's sessions of both shapes, written under its key.
			for _, pyID := range []string{"0123456789abcdef0123456789abcdef", "01234567-89ab-cdef-0123-456789abcdef"} {
				if err := s.backend.Add(ctx, "AIOHTTP_SESSION_"+pyID, []byte("py"), time.Minute); err != nil {
					t.Fatal(err)
				}
				wantData(t, s, pyID, "py")
			}
			gets := c.snapshot().gets
			for _, bad := range []string{"", "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcde",
				"01234567-89ab-cdef-0123-456789abcdeg", "0123456789-abcdef-0123-456789abcdef", "01234567_89ab_cdef_0123_456789abcdef",
				"k5BdXb3G7dBf3DqzRkP1vA", "../AIOHTTP_SESSION_0123456789abcdef0123456789abcdef"} {
				if _, _, err := s.LoadVersion(ctx, bad); !errors.Is(err, ErrNotFound) || !errors.Is(err, errForeignID) {
					t.Errorf("load %q: %v, want ErrNotFound (a foreign ID)", bad, err)
				}
			}
			if got := c.snapshot().gets - gets; got != 0 {
				t.Errorf("foreign IDs reached the backend %d times", got)
			}
		})
	}
	t.Run("Config", func(t *testing.T) {
		for _, s := range []*ServerStore{
			NewMemoryStore(WithAiohttpKeyFactory(UUID4String)), // without WithAiohttpKeys
			NewMemoryStore(WithAiohttpKeys("S"), WithAiohttpKeyFactory(UUID4String+1)),
		} {
			if _, err := Middleware(s, WithCookieName("S")); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Middleware: %v, want ErrInvalidConfig", err)
			}
		}
	})
}

// wantData asserts that id loads exactly data.
func wantData(t *testing.T, s *ServerStore, id, data string) {
	t.Helper()
	got, err := s.Load(t.Context(), id)
	if err != nil || string(got) != data {
		t.Fatalf("Load = %q, %v; want %q", got, err, data)
	}
}
