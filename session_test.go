package httpsession

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// testUser is a user struct stored without any registration.
type testUser struct {
	Name   string            `json:"name"`
	Age    int               `json:"age"`
	Tags   []string          `json:"tags"`
	Joined time.Time         `json:"joined"`
	Extra  map[string]string `json:"extra,omitempty"`
}

// sameUser compares users, times by instant (a JSON round trip keeps the
// offset but not the zone's name).
func sameUser(a, b testUser) bool {
	return a.Name == b.Name && a.Age == b.Age && reflect.DeepEqual(a.Tags, b.Tags) &&
		reflect.DeepEqual(a.Extra, b.Extra) && a.Joined.Equal(b.Joined)
}

func TestSessionMapAPI(t *testing.T) {
	chk := &handlerErrors{}
	mw := newMiddleware(t, NewInsecureCookieStore())
	h := mw(withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		if !s.IsNew() || s.Len() != 0 || len(s.Keys()) != 0 || s.Get("a") != nil || s.Has("a") {
			chk.errorf("fresh session not empty: %v", s.Keys())
		}
		for _, k := range []string{"c", "a", "b"} {
			if err := s.Set(k, k+"-value"); err != nil {
				chk.errorf("Set(%q): %v", k, err)
			}
		}
		if got := s.Keys(); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
			chk.errorf("Keys() = %v, want sorted [a b c]", got)
		}
		if s.Len() != 3 || !s.Has("b") || s.Get("b") != "b-value" {
			chk.errorf("Len %d, Has(b) %v, Get(b) %v", s.Len(), s.Has("b"), s.Get("b"))
		}
		_ = s.Set("b", 42)
		if s.Get("b") != 42 || s.Len() != 3 {
			chk.errorf("overwrite: Get(b) %v, Len %d", s.Get("b"), s.Len())
		}
		s.Delete("b")
		s.Delete("missing")
		if s.Has("b") || s.Get("b") != nil || s.Len() != 2 || !reflect.DeepEqual(s.Keys(), []string{"a", "c"}) {
			chk.errorf("after Delete: %v", s.Keys())
		}
		_ = s.Set("nil", nil)
		if !s.Has("nil") || s.Get("nil") != nil {
			chk.errorf("a nil value: Has %v, Get %v", s.Has("nil"), s.Get("nil"))
		}
		s.Clear()
		if s.Len() != 0 || len(s.Keys()) != 0 || s.Has("a") {
			chk.errorf("after Clear: %v", s.Keys())
		}
		_ = s.Set("kept", true)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	chk.report(t)
	if countSetCookies(rec.Header(), "session") != 1 {
		t.Errorf("no cookie after changes: %v", rec.Header())
	}
}

// Values come back from the store as the codec decodes into any: for JSON,
// float64, string, bool, []any, map[string]any.
func TestSessionGetAfterRoundTrip(t *testing.T) {
	chk := &handlerErrors{}
	mux := http.NewServeMux()
	mux.Handle("/set", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("n", 7)
		_ = s.Set("s", "x")
		_ = s.Set("b", true)
		_ = s.Set("l", []int{1, 2})
		_ = s.Set("m", map[string]int{"a": 1})
	}))
	mux.Handle("/get", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		want := map[string]any{
			"n": 7.0, "s": "x", "b": true, "l": []any{1.0, 2.0}, "m": map[string]any{"a": 1.0},
		}
		for k, v := range want {
			if got := s.Get(k); !reflect.DeepEqual(got, v) {
				chk.errorf("Get(%q) = %#v, want %#v", k, got, v)
			}
		}
		if got := s.Keys(); !reflect.DeepEqual(got, []string{"b", "l", "m", "n", "s"}) {
			chk.errorf("Keys() = %v", got)
		}
	}))
	app := startApp(t, NewMemoryStore(), mux)
	b := app.visitor(true)
	b.get(t, "/set")
	b.get(t, "/get")
	chk.report(t)
}

func TestSessionGetAsRoundTrip(t *testing.T) {
	joined := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("CEST", 2*3600))
	user := testUser{Name: "Zoë <admin>", Age: 33, Tags: []string{"a", "b"}, Joined: joined, Extra: map[string]string{"k": "v"}}
	const big = int64(1)<<60 + 1 // not representable as float64
	for _, k := range storeKinds() {
		t.Run(k.name, func(t *testing.T) {
			store := mustStore(t, k)
			chk := &handlerErrors{}
			check := func(s *Session, when string) {
				if v, err := GetAs[int](s, "int"); err != nil || v != 42 {
					chk.errorf("%s: int %v %v", when, v, err)
				}
				if v, err := GetAs[int64](s, "int64"); err != nil || v != big {
					chk.errorf("%s: int64 %v %v, want %d", when, v, err, big)
				}
				if v, err := GetAs[uint64](s, "uint64"); err != nil || v != math.MaxUint64 {
					chk.errorf("%s: uint64 %v %v", when, v, err)
				}
				if v, err := GetAs[string](s, "string"); err != nil || v != "héllo <b>&\"\n" {
					chk.errorf("%s: string %q %v", when, v, err)
				}
				if v, err := GetAs[bool](s, "bool"); err != nil || !v {
					chk.errorf("%s: bool %v %v", when, v, err)
				}
				if v, err := GetAs[float64](s, "float"); err != nil || v != 3.25 {
					chk.errorf("%s: float %v %v", when, v, err)
				}
				if v, err := GetAs[time.Time](s, "time"); err != nil || !v.Equal(joined) {
					chk.errorf("%s: time %v %v, want %v", when, v, err, joined)
				}
				if v, err := GetAs[[]byte](s, "bytes"); err != nil || string(v) != "\x00\x01\xfe\xff" {
					chk.errorf("%s: bytes %q %v", when, v, err)
				}
				if v, err := GetAs[testUser](s, "user"); err != nil || !sameUser(v, user) {
					chk.errorf("%s: user %+v %v, want %+v", when, v, err, user)
				}
				if v, err := GetAs[*testUser](s, "user"); err != nil || v == nil || v.Name != user.Name {
					chk.errorf("%s: *user %+v %v", when, v, err)
				}
				if v, err := GetAs[map[string]int](s, "map"); err != nil || !reflect.DeepEqual(v, map[string]int{"a": 1, "b": 2}) {
					chk.errorf("%s: map %v %v", when, v, err)
				}
				if v, err := GetAs[[]string](s, "slice"); err != nil || !reflect.DeepEqual(v, []string{"x", "y"}) {
					chk.errorf("%s: slice %v %v", when, v, err)
				}
			}
			mux := http.NewServeMux()
			mux.Handle("/set", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
				for k, v := range map[string]any{
					"int": 42, "int64": big, "uint64": uint64(math.MaxUint64), "string": "héllo <b>&\"\n",
					"bool": true, "float": 3.25, "time": joined, "bytes": []byte{0, 1, 0xfe, 0xff},
					"user": user, "map": map[string]int{"a": 1, "b": 2}, "slice": []string{"x", "y"},
				} {
					if err := s.Set(k, v); err != nil {
						chk.errorf("Set(%q): %v", k, err)
					}
				}
				check(s, "same request")
			}))
			mux.Handle("/get", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
				if s.IsNew() {
					chk.errorf("second request got a new session")
				}
				check(s, "after round trip")
				if _, err := GetAs[int](s, "string"); !errors.Is(err, ErrDecode) {
					chk.errorf("GetAs[int] of a string: %v, want ErrDecode", err)
				}
				if _, err := GetAs[int](s, "float"); !errors.Is(err, ErrDecode) {
					chk.errorf("GetAs[int] of 3.25: %v, want ErrDecode", err)
				}
				if _, err := GetAs[testUser](s, "int"); !errors.Is(err, ErrDecode) {
					chk.errorf("GetAs[testUser] of an int: %v, want ErrDecode", err)
				}
				if _, err := GetAs[time.Time](s, "bool"); !errors.Is(err, ErrDecode) {
					chk.errorf("GetAs[time.Time] of a bool: %v, want ErrDecode", err)
				}
				if _, err := GetAs[string](s, "missing"); !errors.Is(err, ErrMissingKey) {
					chk.errorf("GetAs of a missing key: %v, want ErrMissingKey", err)
				}
			}))
			app := startApp(t, store, mux)
			b := app.visitor(true)
			if r := b.get(t, "/set"); r.status != 200 || b.cookie() == "" {
				t.Fatalf("set: %d, cookie %q, %v", r.status, b.cookie(), r.header)
			}
			b.get(t, "/get")
			chk.report(t)
		})
	}
}

func TestSessionGetAsErrorsSameRequest(t *testing.T) {
	chk := &handlerErrors{}
	mw := newMiddleware(t, NewInsecureCookieStore())
	mw(withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("s", "text")
		_ = s.Set("n", 5)
		if _, err := GetAs[int](s, "s"); !errors.Is(err, ErrDecode) {
			chk.errorf("GetAs[int] of a string: %v", err)
		}
		if v, err := GetAs[int64](s, "n"); err != nil || v != 5 {
			chk.errorf("GetAs[int64] of an int: %v %v", v, err)
		}
		if v, err := GetAs[float64](s, "n"); err != nil || v != 5 {
			chk.errorf("GetAs[float64] of an int: %v %v", v, err)
		}
		if _, err := GetAs[bool](s, "nope"); !errors.Is(err, ErrMissingKey) {
			chk.errorf("missing: %v", err)
		}
	})).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	chk.report(t)
}

func TestSessionSetUnencodable(t *testing.T) {
	chk := &handlerErrors{}
	store, backend := countedMemoryStore(nil)
	app := startApp(t, store, withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		bad := map[string]any{
			"chan":        make(chan int),
			"func":        func() {},
			"NaN":         math.NaN(),
			"+Inf":        math.Inf(1),
			"nested NaN":  map[string]float64{"x": math.NaN()},
			"complex":     complex(1, 2),
			"map int key": map[any]int{1.5: 1},
		}
		for k, v := range bad {
			if err := s.Set(k, v); !errors.Is(err, ErrEncode) {
				chk.errorf("Set(%q): %v, want ErrEncode", k, err)
			}
			if s.Has(k) {
				chk.errorf("unencodable %q was stored", k)
			}
		}
		if s.Len() != 0 {
			chk.errorf("session holds %v", s.Keys())
		}
		_, _ = io.WriteString(w, "fine")
	}))
	r := app.do(t, nil, "/")
	if r.status != 200 || r.body != "fine" {
		t.Errorf("response %d %q, want the handler's 200", r.status, r.body)
	}
	if countSetCookies(r.header, "session") != 0 || backend.Len() != 0 {
		t.Errorf("rejected values created a session")
	}
	chk.report(t)
}

func TestSessionMarkChanged(t *testing.T) {
	chk := &handlerErrors{}
	store, backend := countedMemoryStore(nil)
	mux := http.NewServeMux()
	mux.Handle("/set", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("cart", map[string]any{"apple": 1})
	}))
	mux.Handle("/mutate", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		m, ok := s.Get("cart").(map[string]any)
		if !ok {
			chk.errorf("cart is %T", s.Get("cart"))
			return
		}
		m[r.URL.Query().Get("item")] = 1
		if r.URL.Query().Has("mark") {
			s.MarkChanged()
			// GetAs sees the in-place change too.
			if v, err := GetAs[map[string]int](s, "cart"); err != nil || v[r.URL.Query().Get("item")] != 1 {
				chk.errorf("GetAs after in-place change: %v %v", v, err)
			}
		}
	}))
	mux.Handle("/get", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		v, err := GetAs[map[string]int](s, "cart")
		if err != nil {
			chk.errorf("GetAs: %v", err)
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		fmt.Fprint(w, len(keys), v["apple"], v["pear"], v["plum"])
	}))
	app := startApp(t, store, mux)
	b := app.visitor(true)
	b.get(t, "/set")
	writes := backend.replaces.Load()
	b.get(t, "/mutate?item=pear&mark=1")
	if backend.replaces.Load() != writes+1 {
		t.Errorf("MarkChanged did not save")
	}
	if r := b.get(t, "/get"); r.body != "2 1 1 0" {
		t.Errorf("after MarkChanged: %q, want pear saved", r.body)
	}
	writes = backend.replaces.Load()
	b.get(t, "/mutate?item=plum")
	if backend.replaces.Load() != writes {
		t.Errorf("in-place change without MarkChanged wrote the store")
	}
	if r := b.get(t, "/get"); r.body != "2 1 1 0" {
		t.Errorf("without MarkChanged: %q, want plum not saved", r.body)
	}
	chk.report(t)
}

func TestSessionFlashes(t *testing.T) {
	chk := &handlerErrors{}
	store, backend := countedMemoryStore(nil)
	mux := http.NewServeMux()
	mux.Handle("/add", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		if r.URL.Query().Has("user") {
			_ = s.Set("user", "ann")
		}
		for _, f := range []string{"Saved.", "Welcome <b>back</b>"} {
			if err := s.AddFlash(f); err != nil {
				chk.errorf("AddFlash: %v", err)
			}
		}
	}))
	mux.Handle("/show", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		keys := strings.Join(s.Keys(), ",")
		f := s.Flashes()
		if again := s.Flashes(); again != nil {
			chk.errorf("second Flashes() in a request: %v", again)
		}
		fmt.Fprintf(w, "keys=%s len=%d flashes=%q", keys, s.Len(), f)
	}))
	app := startApp(t, store, mux)

	b := app.visitor(true)
	b.get(t, "/add")
	if backend.Len() != 1 {
		t.Fatalf("flashes alone did not create a session (%d records)", backend.Len())
	}
	if r := b.get(t, "/show"); r.body != `keys= len=0 flashes=["Saved." "Welcome <b>back</b>"]` {
		t.Errorf("first show: %s", r.body)
	}
	if r := b.get(t, "/show"); r.body != `keys= len=0 flashes=[]` {
		t.Errorf("second show: %s, want the flashes gone", r.body)
	}
	if backend.Len() != 0 {
		t.Errorf("session with only read flashes kept (%d records)", backend.Len())
	}

	b = app.visitor(true)
	b.get(t, "/add?user=1")
	if r := b.get(t, "/show"); r.body != `keys=user len=1 flashes=["Saved." "Welcome <b>back</b>"]` {
		t.Errorf("flashes with a key: %s", r.body)
	}
	if r := b.get(t, "/show"); r.body != `keys=user len=1 flashes=[]` {
		t.Errorf("flashes with a key, second show: %s", r.body)
	}
	chk.report(t)
}

func TestSessionEmptiedSessionIsDeleted(t *testing.T) {
	store, backend := countedMemoryStore(nil)
	mux := http.NewServeMux()
	mux.Handle("/set", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("a", 1)
		_ = s.Set("b", 2)
	}))
	mux.Handle("/clear", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) { s.Clear() }))
	mux.Handle("/del", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		s.Delete(r.URL.Query().Get("k"))
	}))
	app := startApp(t, store, mux)
	deleted := func(t *testing.T, r response) {
		t.Helper()
		if ck, raw := r.setCookie("session"); ck == nil || ck.MaxAge >= 0 || !strings.Contains(raw, "Max-Age=0") {
			t.Errorf("want a deletion cookie, got %q", raw)
		}
		if backend.Len() != 0 {
			t.Errorf("%d records left", backend.Len())
		}
	}
	t.Run("Clear", func(t *testing.T) {
		b := app.visitor(true)
		b.get(t, "/set")
		deleted(t, b.get(t, "/clear"))
	})
	t.Run("Delete last key", func(t *testing.T) {
		b := app.visitor(true)
		b.get(t, "/set")
		r := b.get(t, "/del?k=a")
		if ck, _ := r.setCookie("session"); ck != nil && ck.MaxAge < 0 || backend.Len() != 1 {
			t.Errorf("deleting one of two keys ended the session")
		}
		deleted(t, b.get(t, "/del?k=b"))
	})
}

func TestSessionMetadata(t *testing.T) {
	clock := newTestClock()
	chk := &handlerErrors{}
	var ids []string
	var mu sync.Mutex
	h := withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		mu.Lock()
		ids = append(ids, s.ID())
		mu.Unlock()
		fmt.Fprintf(w, "new=%v created=%s expires=%s", s.IsNew(), s.Created().UTC().Format(time.RFC3339), s.Expires().UTC().Format(time.RFC3339))
	})
	set := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s, err := Get(r); err == nil && s.IsNew() {
				_ = s.Set("a", 1)
			}
			next.ServeHTTP(w, r)
		})
	}
	t.Run("server store", func(t *testing.T) {
		ids = nil
		store, _ := countedMemoryStore(clock.Now)
		app := startApp(t, store, set(h), WithClock(clock.Now), WithLifetime(2*time.Hour), WithIdleTimeout(time.Hour))
		b := app.visitor(true)
		start := clock.Now()
		r := b.get(t, "/")
		if want := "new=true created=0001-01-01T00:00:00Z expires=" + start.Add(time.Hour).Format(time.RFC3339); r.body != want {
			t.Errorf("first: %q, want %q", r.body, want)
		}
		clock.Advance(30 * time.Minute)
		r = b.get(t, "/")
		// Idle deadline: last activity (creation) + 1h.
		if want := "new=false created=" + start.Format(time.RFC3339) + " expires=" + start.Add(time.Hour).Format(time.RFC3339); r.body != want {
			t.Errorf("second: %q, want %q", r.body, want)
		}
		if len(ids) != 2 || ids[0] != "" || ids[1] != b.cookie() || b.cookie() == "" {
			t.Errorf("IDs %q, want empty then the cookie value %q", ids, b.cookie())
		}
	})
	t.Run("cookie store", func(t *testing.T) {
		ids = nil
		app := startApp(t, NewInsecureCookieStore(), set(h), WithClock(clock.Now))
		b := app.visitor(true)
		b.get(t, "/")
		r := b.get(t, "/")
		if !strings.HasPrefix(r.body, "new=false") {
			t.Errorf("second: %q", r.body)
		}
		if len(ids) != 2 || ids[0] != "" || ids[1] != "" {
			t.Errorf("cookie store IDs %q, want empty", ids)
		}
	})
	chk.report(t)
}

func TestSessionConcurrentUse(t *testing.T) {
	const workers, ops = 16, 100
	chk := &handlerErrors{}
	store, _ := countedMemoryStore(nil)
	mux := http.NewServeMux()
	mux.Handle("/hammer", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		_ = s.Set("shared", map[string]any{"n": 0})
		var wg sync.WaitGroup
		for g := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range ops {
					k := fmt.Sprintf("g%02d-%03d", g, i)
					if err := s.Set(k, i); err != nil {
						chk.errorf("Set: %v", err)
					}
					if v, err := GetAs[int](s, k); err != nil || v != i {
						chk.errorf("GetAs(%s) = %v %v", k, v, err)
					}
					_ = s.Get("shared")
					_ = s.Has(k)
					_ = s.Keys()
					_ = s.Len()
					_ = s.AddFlash(k)
					if i%10 == 9 {
						s.Delete(k)
					}
					if i%25 == 0 {
						s.MarkChanged()
						_ = s.Flashes()
						_ = s.Expires()
						_ = s.IsNew()
					}
				}
			}()
		}
		wg.Wait()
		fmt.Fprint(w, s.Len())
	}))
	mux.Handle("/len", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
		fmt.Fprint(w, s.Len())
	}))
	app := startApp(t, store, mux)
	b := app.visitor(true)
	want := fmt.Sprint(1 + workers*(ops-ops/10))
	if r := b.get(t, "/hammer"); r.body != want {
		t.Errorf("Len after concurrent use %q, want %s", r.body, want)
	}
	if r := b.get(t, "/len"); r.body != want {
		t.Errorf("stored Len %q, want %s", r.body, want)
	}
	chk.report(t)
}

func TestSessionConcurrentFirstGet(t *testing.T) {
	const n = 32
	chk := &handlerErrors{}
	store := &countingStore{Store: mustStore(t, kindNamed("signed"))}
	token := sealToken(t, store.Store, time.Now(), map[string]any{"user": "ann"})
	app := startApp(t, store, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var wg sync.WaitGroup
		start := make(chan struct{})
		got := make([]*Session, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				s, err := Get(r)
				if err != nil {
					chk.errorf("Get: %v", err)
				}
				got[i] = s
				if s.Get("user") != "ann" {
					chk.errorf("goroutine %d saw user %v", i, s.Get("user"))
				}
			}()
		}
		close(start)
		wg.Wait()
		for i := range got {
			if got[i] != got[0] || got[i] == nil {
				chk.errorf("goroutine %d got a different *Session", i)
			}
		}
	}))
	app.do(t, nil, "/", &http.Cookie{Name: "session", Value: token})
	if got := store.loads.Load(); got != 1 {
		t.Errorf("concurrent first Get calls loaded %d times, want once", got)
	}
	chk.report(t)
}

func TestSessionChangeAfterCommitLogged(t *testing.T) {
	ops := []struct {
		name   string
		op     func(s *Session) error
		retErr bool // the operation returns the error
	}{
		{"Set", func(s *Session) error { return s.Set("x", 1) }, true},
		{"AddFlash", func(s *Session) error { return s.AddFlash("late") }, true},
		{"Delete", func(s *Session) error { s.Delete("a"); return nil }, false},
		{"Clear", func(s *Session) error { s.Clear(); return nil }, false},
		{"Invalidate", func(s *Session) error { s.Invalidate(); return nil }, false},
		{"NewIdentity", func(s *Session) error { s.NewIdentity(); return nil }, false},
		{"MarkChanged", func(s *Session) error { s.MarkChanged(); return nil }, false},
		{"SetLifetime", func(s *Session) error { s.SetLifetime(48 * time.Hour); return nil }, false},
		{"SetPersistent", func(s *Session) error { s.SetPersistent(false); return nil }, false},
		{"Flashes", func(s *Session) error { _ = s.Flashes(); return nil }, false},
	}
	for _, tc := range ops {
		t.Run(tc.name, func(t *testing.T) {
			chk := &handlerErrors{}
			store, backend := countedMemoryStore(nil)
			mux := http.NewServeMux()
			mux.Handle("/setup", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
				_ = s.Set("a", 1)
				_ = s.AddFlash("pending")
			}))
			mux.Handle("/late", withSession(func(w http.ResponseWriter, r *http.Request, s *Session) {
				_, _ = io.WriteString(w, "page")
				err := tc.op(s)
				if tc.retErr && !errors.Is(err, ErrCommitted) {
					chk.errorf("%s after Write returned %v, want ErrCommitted", tc.name, err)
				}
			}))
			app := startApp(t, store, mux)
			b := app.visitor(true)
			b.get(t, "/setup")
			before := backend.lastWritten()
			writes := backend.snapshot().writes()
			r := b.get(t, "/late")
			if r.body != "page" || countSetCookies(r.header, "session") != 0 {
				t.Errorf("late change response %q, Set-Cookie %v", r.body, r.header.Values("Set-Cookie"))
			}
			log := app.log.String()
			if !strings.Contains(log, "level=ERROR") || !strings.Contains(log, ErrCommitted.Error()) || !strings.Contains(log, tc.name) {
				t.Errorf("late %s not logged with ErrCommitted: %s", tc.name, log)
			}
			if backend.snapshot().writes() != writes || backend.lastWritten() != before || backend.Len() != 1 {
				t.Errorf("late %s changed the store", tc.name)
			}
			chk.report(t)
		})
	}
}

func TestValueCache(t *testing.T) {
	var c valueCache
	c.put("a", 1)
	c.put("b", 2)
	c.put("c", 3)
	c.delete("a")  // frees the inline slot
	c.put("b", 20) // moves b inline; its map entry must go
	c.put("d", 4)
	want := map[string]any{"b": 20, "c": 3, "d": 4}
	for k, v := range want {
		if got, ok := c.get(k); !ok || got != v {
			t.Errorf("get(%q) = %v, %v; want %v", k, got, ok, v)
		}
	}
	if _, ok := c.get("a"); ok {
		t.Error("deleted key still cached")
	}
	var keys []string
	_ = c.each(func(k string, v any) error {
		if want[k] != v {
			t.Errorf("each: %q = %v, want %v", k, v, want[k])
		}
		keys = append(keys, k)
		return nil
	})
	sort.Strings(keys)
	if len(keys) != 3 || keys[0] != "b" || keys[1] != "c" || keys[2] != "d" {
		t.Errorf("each visited %v, want each of b, c, d once", keys)
	}
}

// GetAs decodes a plain int, bool or string of a loaded session without
// allocating a T: an int or bool costs nothing, a string only itself.
func TestGetAsPlainValuesAllocations(t *testing.T) {
	s := &Session{codec: JSONCodec{}, vals: *loadValues(t, `{"n":41,"ok":true,"user":"alice"}`)}
	for _, tc := range []struct {
		name string
		get  func() error
		want float64
	}{
		{"int", func() error { n, err := GetAs[int](s, "n"); return check(n == 41, err) }, 0},
		{"bool", func() error { ok, err := GetAs[bool](s, "ok"); return check(ok, err) }, 0},
		{"string", func() error { u, err := GetAs[string](s, "user"); return check(u == "alice", err) }, 1},
	} {
		var err error
		allocs := testing.AllocsPerRun(100, func() { err = tc.get() })
		if err != nil || allocs != tc.want {
			t.Errorf("GetAs %s: %v allocations (want %v), %v", tc.name, allocs, tc.want, err)
		}
	}
}

// check is err, or an error if ok is false.
func check(ok bool, err error) error {
	if err == nil && !ok {
		err = errors.New("wrong value")
	}
	return err
}
