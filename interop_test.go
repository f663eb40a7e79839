package httpsession

// Interop with Python's aiohttp_session, proven against the real library:
// interop/aiohttp_app.py runs Debian's aiohttp_session under /usr/bin/python3
// on a loopback port, a Go httptest server runs the matching store, and one
// cookie jar drives both (cookies ignore ports, so both servers on
// 127.0.0.1 share them). Every storage is exercised in both directions and
// at the boundaries the issue lists: created, max_age, NaN/Infinity,
// integers above 2^53, non-ASCII text, empty sessions, foreign keys and
// tampered tokens. Redis and Memcached are in interop_server_test.go.
//
// The Python side needs /usr/bin/python3 with python3-aiohttp-session,
// python3-aiohttp, python3-cryptography, python3-nacl, python3-redis and
// python3-pymemcache: `make test` installs them (scripts/testenv.sh). Without
// them these tests skip, except under CI=true, where they fail.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	aiohttpCookie = "AIOHTTP_SESSION"
	// systemPython is Debian's system Python, where apt installs the packages;
	// a python3 found first on the PATH (pyenv, venv) usually lacks them.
	systemPython     = "/usr/bin/python3"
	aiohttpAppScript = "interop/aiohttp_app.py"
	peerScript       = "interop/memcached_peer.py"
	// interopMaxAge is the Python storage's max_age and the Go lifetime.
	interopMaxAge = 100
)

// pythonErr checks, once per test binary, that Debian's Python has every
// module the interop app imports: starting Python costs most of a second.
var pythonErr = sync.OnceValue(func() error {
	if _, err := os.Stat(systemPython); err != nil {
		return err
	}
	out, err := exec.Command(systemPython, "-c",
		"import aiohttp, aiohttp_session, aiohttp_session.cookie_storage, "+
			"aiohttp_session.nacl_storage, cryptography.fernet, nacl.secret, "+
			"redis.asyncio, pymemcache.client.base, distutils.version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
	}
	return nil
})

// needPython skips the test (fails it under CI=true) unless Debian's
// Python can run the aiohttp_session peer.
func needPython(t *testing.T) {
	t.Helper()
	if err := pythonErr(); err != nil {
		missing(t, "%s cannot run the aiohttp_session peer (%v)", systemPython, err)
	}
}

// pythonApp is a running interop/aiohttp_app.py.
type pythonApp struct {
	url    string
	stderr *logBuffer
}

// startPython starts the aiohttp_session app with args (its --port is
// chosen here) and waits for its READY line. The process is killed when
// the test ends; its stderr is logged if the test failed.
func startPython(t *testing.T, args ...string) *pythonApp {
	t.Helper()
	needPython(t)
	var lastErr string
	for attempt := 0; attempt < 3; attempt++ {
		port := freePort(t)
		cmd := exec.Command(systemPython, append([]string{aiohttpAppScript, "--port", strconv.Itoa(port)}, args...)...)
		cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1")
		stderr := &logBuffer{}
		cmd.Stderr = stderr
		stdin, err := cmd.StdinPipe() // the app exits when this closes
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s %s: %v", systemPython, aiohttpAppScript, err)
		}
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "READY ") {
					ready <- true
					_, _ = io.Copy(io.Discard, stdout)
					return
				}
			}
			ready <- false
		}()
		stop := func() {
			stdin.Close()
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		var ok bool
		select {
		case ok = <-ready:
		case <-time.After(20 * time.Second):
		}
		if !ok {
			stop()
			lastErr = stderr.String()
			if strings.Contains(lastErr, "address already in use") {
				continue
			}
			t.Fatalf("aiohttp app %v did not start:\n%s", args, lastErr)
		}
		py := &pythonApp{url: "http://127.0.0.1:" + strconv.Itoa(port), stderr: stderr}
		t.Cleanup(func() {
			stop()
			if t.Failed() {
				t.Logf("aiohttp app %v stderr:\n%s", args, stderr.String())
			}
		})
		return py
	}
	t.Fatalf("aiohttp app %v did not start:\n%s", args, lastErr)
	return nil
}

// setClock freezes the app's clock (aiohttp_session, Fernet and
// MemcachedStorage read it) at unix; 0 unfreezes it.
func (py *pythonApp) setClock(t *testing.T, unix int64) {
	t.Helper()
	at := ""
	if unix != 0 {
		at = strconv.FormatInt(unix, 10)
	}
	resp, err := http.Post(py.url+"/clock?at="+at, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("python /clock: %s", resp.Status)
	}
}

// goServer serves goRoutes with store and the aiohttp-compatible
// options: cookie AIOHTTP_SESSION, lifetime = Python's max_age (Go has no
// max_age=None: maxAge < 0 keeps the default lifetime).
func goServer(t *testing.T, store Store, clock *testClock, maxAge int, extra ...Option) string {
	t.Helper()
	lifetime := time.Duration(maxAge) * time.Second
	if maxAge < 0 {
		lifetime = DefaultLifetime
	}
	opts := append([]Option{WithCookieName(aiohttpCookie), WithLifetime(lifetime), WithClock(clock.Now)}, extra...)
	return startApp(t, store, goRoutes(), opts...).srv.URL
}

// goDump is the Go side's view of a session, shaped like the Python
// app's dump(): values are each key's stored JSON text, or an error in
// errors when Go cannot decode it (NaN, Infinity).
func goDump(s *Session) map[string]any {
	values, errs := map[string]string{}, map[string]string{}
	for _, k := range s.Keys() {
		raw, err := GetAs[json.RawMessage](s, k)
		if err != nil {
			errs[k] = err.Error()
			continue
		}
		values[k] = string(raw)
	}
	var created int64
	if !s.Created().IsZero() {
		created = s.Created().Unix()
	}
	return map[string]any{
		"new": s.IsNew(), "created": created, "id": s.ID(),
		"keys": s.Keys(), "values": values, "errors": errs,
	}
}

// goRoutes mirrors the Python app's routes, plus typed reads and
// writes: /int (GetAs[int64]), /number (GetAs[json.Number]), /any (Get),
// /str (GetAs[string]), /setint, /setstr, /setfloat, /flash, /flashes.
func goRoutes() http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	handle := func(pattern string, fn func(w http.ResponseWriter, r *http.Request, s *Session, k, v string) error) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			s, err := Get(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			q := r.URL.Query()
			if err := fn(w, r, s, q.Get("k"), q.Get("v")); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
			}
		})
	}
	dump := func(w http.ResponseWriter, s *Session) error { reply(w, goDump(s)); return nil }
	handle("GET /get", func(w http.ResponseWriter, _ *http.Request, s *Session, _, _ string) error { return dump(w, s) })
	handle("POST /set", func(w http.ResponseWriter, _ *http.Request, s *Session, k, v string) error {
		if err := s.Set(k, json.RawMessage(v)); err != nil {
			return err
		}
		return dump(w, s)
	})
	handle("POST /setint", func(w http.ResponseWriter, _ *http.Request, s *Session, k, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return err
		}
		if err := s.Set(k, n); err != nil {
			return err
		}
		return dump(w, s)
	})
	handle("POST /setstr", func(w http.ResponseWriter, _ *http.Request, s *Session, k, v string) error {
		if err := s.Set(k, v); err != nil {
			return err
		}
		return dump(w, s)
	})
	handle("POST /setfloat", func(w http.ResponseWriter, _ *http.Request, s *Session, k, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return err
		}
		if err := s.Set(k, f); err != nil {
			return err
		}
		return dump(w, s)
	})
	handle("POST /del", func(w http.ResponseWriter, _ *http.Request, s *Session, k, _ string) error {
		s.Delete(k)
		return dump(w, s)
	})
	handle("POST /invalidate", func(w http.ResponseWriter, _ *http.Request, s *Session, _, _ string) error {
		s.Invalidate()
		return dump(w, s)
	})
	handle("POST /flash", func(w http.ResponseWriter, _ *http.Request, s *Session, _, v string) error {
		if err := s.AddFlash(v); err != nil {
			return err
		}
		return dump(w, s)
	})
	handle("GET /flashes", func(w http.ResponseWriter, _ *http.Request, s *Session, _, _ string) error {
		reply(w, s.Flashes())
		return nil
	})
	handle("GET /int", func(w http.ResponseWriter, _ *http.Request, s *Session, k, _ string) error {
		n, err := GetAs[int64](s, k)
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, strconv.FormatInt(n, 10))
		return err
	})
	handle("GET /number", func(w http.ResponseWriter, _ *http.Request, s *Session, k, _ string) error {
		n, err := GetAs[json.Number](s, k)
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, n.String())
		return err
	})
	handle("GET /bigint", func(w http.ResponseWriter, _ *http.Request, s *Session, k, _ string) error {
		n, err := GetAs[*big.Int](s, k)
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, n.String())
		return err
	})
	handle("GET /any", func(w http.ResponseWriter, _ *http.Request, s *Session, k, _ string) error {
		_, err := fmt.Fprintf(w, "%T %v", s.Get(k), s.Get(k))
		return err
	})
	handle("GET /str", func(w http.ResponseWriter, _ *http.Request, s *Session, k, _ string) error {
		v, err := GetAs[string](s, k)
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, v)
		return err
	})
	return mux
}

// sessionView is either side's dump of a session.
type sessionView struct {
	Status   int               `json:"-"`
	Body     string            `json:"-"`
	New      bool              `json:"new"`
	Created  int64             `json:"created"`
	Identity *string           `json:"identity"` // Python's session.identity
	ID       string            `json:"id"`       // Go's Session.ID
	Empty    bool              `json:"empty"`
	Keys     []string          `json:"keys"`
	Values   map[string]string `json:"values"` // key -> JSON text
	Types    map[string]string `json:"types"`  // Python type names
	Errors   map[string]string `json:"errors"` // Go decode errors
}

// str decodes the JSON text under key as a string.
func (v sessionView) str(t *testing.T, key string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal([]byte(v.Values[key]), &s); err != nil {
		t.Fatalf("value %q = %q is not a JSON string: %v (view %+v)", key, v.Values[key], err, v)
	}
	return s
}

// interopPair is one storage served by Python and by Go, and a browser.
type interopPair struct {
	t      *testing.T
	kind   *interopKind
	py     *pythonApp
	goURL  string
	clock  *testClock
	br     *browser
	maxAge int
}

// do sends a request through the browser and returns the status and body.
func (p *interopPair) do(base, method, path string, q url.Values) (int, string, http.Header) {
	p.t.Helper()
	u := base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	resp, err := p.br.client.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// view sends a request to one side and decodes its session dump; the
// status must be 200.
func (p *interopPair) view(side, method, path string, q url.Values) sessionView {
	p.t.Helper()
	base := p.goURL
	if side == "py" {
		base = p.py.url
	}
	status, body, _ := p.do(base, method, path, q)
	if status != 200 {
		p.t.Fatalf("%s %s %s %v = %d %q, want 200", side, method, path, q, status, body)
	}
	v := sessionView{Status: status, Body: body}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		p.t.Fatalf("%s %s %s: bad dump %q: %v", side, method, path, body, err)
	}
	return v
}

func kvQuery(k, v string) url.Values { return url.Values{"k": {k}, "v": {v}} }

func (p *interopPair) pyGet() sessionView { p.t.Helper(); return p.view("py", "GET", "/get", nil) }
func (p *interopPair) goGet() sessionView { p.t.Helper(); return p.view("go", "GET", "/get", nil) }

// pySet sets key to the JSON value on the Python side.
func (p *interopPair) pySet(k, jsonV string) sessionView {
	p.t.Helper()
	return p.view("py", "POST", "/set", kvQuery(k, jsonV))
}

// goSet sets key to the JSON value on the Go side.
func (p *interopPair) goSet(k, jsonV string) sessionView {
	p.t.Helper()
	return p.view("go", "POST", "/set", kvQuery(k, jsonV))
}

// goText calls a Go route that answers plain text.
func (p *interopPair) goText(path string, q url.Values) (int, string) {
	p.t.Helper()
	status, body, _ := p.do(p.goURL, "GET", path, q)
	return status, strings.TrimSpace(body)
}

// goFresh asserts that Go answers GET /get with 200 and a fresh empty
// session, and reports whether it also expired the cookie (Go deletes a
// cookie that names no live session; aiohttp_session leaves it).
func (p *interopPair) goFresh(t *testing.T, what string) (expired bool) {
	t.Helper()
	sent := p.br.cookie()
	status, body, h := p.do(p.goURL, "GET", "/get", nil)
	if status != 200 || !strings.Contains(body, `"new":true`) || !strings.Contains(body, `"keys":[]`) {
		t.Errorf("Go with %s (cookie %s) = %d %s, want 200 and a fresh session", what, sent, status, body)
	}
	for _, line := range h.Values("Set-Cookie") {
		if strings.HasPrefix(line, aiohttpCookie+"=;") && strings.Contains(line, "Max-Age=0") {
			expired = true
		}
	}
	return expired
}

// at freezes both sides' clocks at unix.
func (p *interopPair) at(unix int64) {
	p.t.Helper()
	p.clock.Set(time.Unix(unix, 0))
	p.py.setClock(p.t, unix)
}

// interopKind describes one aiohttp_session storage and its Go counterpart.
type interopKind struct {
	name   string
	pyArgs []string
	// store builds the Go store that shares sessions with the Python app;
	// foreign, when set, one with another key.
	store, foreign func(t *testing.T, clock *testClock, opts ...ServerOption) Store
	rawJar         bool // SimpleCookieStorage: Python-quoted JSON cookies
	serverSide     bool // Redis, Memcached: the cookie is a session ID
	// pyExpiredNew: Python reports an expired session as new (Fernet's TTL
	// rejects the token) rather than as not new and empty (the created
	// check of every other storage).
	pyExpiredNew bool
	// record reads the server-side record under the session ID (nil
	// for cookie storages); found false when there is none.
	record func(t *testing.T, id string) (value string, found bool)
}

// newInteropPair starts the Python app for kind and a Go server with the
// matching store, both frozen at the current second.
func newInteropPair(t *testing.T, kind *interopKind, maxAge int, extra ...Option) *interopPair {
	t.Helper()
	p := &interopPair{t: t, kind: kind, clock: testClockAt(time.Now()), maxAge: maxAge}
	p.py = startPython(t, append([]string{"--max-age", strconv.Itoa(maxAge)}, kind.pyArgs...)...)
	p.goURL = goServer(t, kind.store(t, p.clock), p.clock, maxAge, extra...)
	p.fresh(t)
	return p
}

// fresh gives the pair a new browser and resets both clocks to now, for a
// subtest.
func (p *interopPair) fresh(t *testing.T) int64 {
	p.t = t
	p.br = newBrowser("http://127.0.0.1/", aiohttpCookie, p.kind.rawJar)
	now := time.Now().Unix()
	p.at(now)
	return now
}

// randomKey returns 32 random key bytes.
func randomKey(t *testing.T) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// tamperToken changes the character in the middle of a token to another one
// of the same base64 alphabet, keeping any quotes.
func tamperToken(tok string) string {
	b := []byte(tok)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// interopCookieKinds are the cookie storages: SimpleCookieStorage,
// EncryptedCookieStorage (Fernet) and NaClCookieStorage.
func interopCookieKinds(t *testing.T) []*interopKind {
	key, other := randomKey(t), randomKey(t)
	b64 := base64.StdEncoding.EncodeToString(key)
	// The Go stores come from the shared table; Fernet's tokens carry the
	// pair's clock.
	store := func(name string, k []byte) func(*testing.T, *testClock, ...ServerOption) Store {
		return func(t *testing.T, clock *testClock, _ ...ServerOption) Store {
			return mustStoreAt(t, kindNamed(name), clock.Now, k)
		}
	}
	return []*interopKind{
		{
			name: "Simple", pyArgs: []string{"--storage", "simple"}, rawJar: true,
			store: store("insecure", key),
		},
		{
			name: "Fernet", pyArgs: []string{"--storage", "fernet", "--key", b64},
			store: store("fernet", key), foreign: store("fernet", other), pyExpiredNew: true,
		},
		{
			name: "NaCl", pyArgs: []string{"--storage", "nacl", "--key", b64},
			store: store("nacl", key), foreign: store("nacl", other),
		},
	}
}

func TestInteropAiohttpCookieStorages(t *testing.T) {
	needPython(t)
	for _, kind := range interopCookieKinds(t) {
		t.Run(kind.name, func(t *testing.T) { runInteropSuite(t, kind) })
	}
}

// runInteropSuite runs every interop scenario against one storage. The
// subtests share the two servers and run in order; each gets a fresh
// browser and resets the clocks.
func runInteropSuite(t *testing.T, kind *interopKind) {
	p := newInteropPair(t, kind, interopMaxAge)
	t.Run("PythonWritesGoModifiesPythonReads", func(t *testing.T) {
		t0 := p.fresh(t)
		p.pySet("user", `"alice"`)
		p.pySet("n", `1`)
		if kind.rawJar && !strings.HasPrefix(p.br.cookie(), `"{\"created\": `) {
			t.Errorf("Python's Simple cookie = %s, want Python-quoted JSON", p.br.cookie())
		}
		g := p.goGet()
		if g.New || g.str(t, "user") != "alice" || g.Values["n"] != "1" || g.Created != t0 {
			t.Fatalf("Go read of a Python session = %+v, want user=alice n=1 created=%d", g, t0)
		}
		if kind.serverSide && g.ID != p.br.cookie() {
			t.Errorf("Go ID = %q, want the Python session key %q", g.ID, p.br.cookie())
		}
		p.at(t0 + 5)
		p.goSet("role", `"admin"`)
		p.view("go", "POST", "/del", kvQuery("n", ""))
		py := p.pyGet()
		if py.New || py.str(t, "user") != "alice" || py.str(t, "role") != "admin" || py.Values["n"] != "" {
			t.Fatalf("Python read of the Go modification = %+v, want user=alice role=admin, n deleted", py)
		}
		if kind.serverSide && (py.Identity == nil || *py.Identity != p.br.cookie()) {
			t.Errorf("Python identity = %v, want the cookie %q", py.Identity, p.br.cookie())
		}
	})
	t.Run("GoWritesPythonModifiesGoReads", func(t *testing.T) {
		t0 := p.fresh(t)
		p.goSet("user", `"bob"`)
		p.view("go", "POST", "/setint", kvQuery("n", "7"))
		cookie := p.br.cookie()
		if cookie == "" {
			t.Fatal("Go set no cookie")
		}
		if cs, ok := kind.store(t, p.clock).(*CookieStore); ok && !cs.plain {
			// Go's seal carries its binding, which Python ignores below.
			sealed, ok := cs.sealer.open(strings.Trim(cookie, `"`))
			if want := `{"bind":"` + aiohttpCookie + `;/","created":`; !ok || !strings.HasPrefix(string(sealed), want) {
				t.Fatalf("Go's seal = %q, want it to start with %s", sealed, want)
			}
		}
		py := p.pyGet()
		if py.New || py.str(t, "user") != "bob" || py.Values["n"] != "7" || py.Types["n"] != "int" || py.Created != t0 {
			t.Fatalf("Python read of a Go session = %+v, want user=bob n=7 (int) created=%d", py, t0)
		}
		p.at(t0 + 5)
		p.pySet("role", `"editor"`)
		if kind.serverSide && p.br.cookie() != cookie {
			t.Errorf("Python changed the session ID %q -> %q", cookie, p.br.cookie())
		}
		if cs, ok := kind.store(t, p.clock).(*CookieStore); ok && !cs.plain {
			// Python drops the binding when it writes; Go still opens it.
			sealed, ok := cs.sealer.open(strings.Trim(p.br.cookie(), `"`))
			if !ok || !strings.HasPrefix(string(sealed), `{"created": `) {
				t.Errorf("Python's rewrite of Go's cookie = %q, want aiohttp_session's own record, unbound", sealed)
			}
		}
		g := p.goGet()
		if g.New || g.str(t, "user") != "bob" || g.str(t, "role") != "editor" || g.Values["n"] != "7" {
			t.Fatalf("Go read of the Python modification = %+v", g)
		}
		if _, n := p.goText("/int", kvQuery("n", "")); n != "7" {
			t.Errorf("GetAs[int64](n) = %s, want 7", n)
		}
	})
	t.Run("Created", func(t *testing.T) {
		// aiohttp_session's "created" is the time of the last key change;
		// Go's is the session's start and never moves. Each side keeps its
		// own rule, so Python's writes restart the lifetime Go enforces.
		t0 := p.fresh(t)
		p.pySet("a", `1`)
		p.at(t0 + 10)
		if g := p.goGet(); g.Created != t0 {
			t.Fatalf("Go Created = %d, want Python's %d", g.Created, t0)
		}
		p.goSet("b", `2`)
		if py := p.pyGet(); py.Created != t0 {
			t.Errorf("after a Go write at t0+10 Python created = %d, want t0 (Go keeps created)", py.Created-t0)
		}
		p.at(t0 + 30)
		p.pySet("c", `3`)
		if g := p.goGet(); g.Created != t0+30 {
			t.Errorf("after a Python write at t0+30 Go Created = t0%+d, want t0+30 (aiohttp moves created)", g.Created-t0)
		}
		p.at(t0 + 50)
		p.view("py", "POST", "/changed", nil)
		if g := p.goGet(); g.Created != t0+30 {
			t.Errorf("after Python changed() Go Created = t0%+d, want t0+30 (changed() keeps it)", g.Created-t0)
		}
		// The lifetime runs from the moved created: still alive at
		// t0+interopMaxAge+20, past the original start's deadline.
		p.at(t0 + interopMaxAge + 20)
		if g := p.goGet(); g.New || g.Values["a"] != "1" {
			t.Errorf("Go at t0+max_age+20 after a Python write at t0+30 = %+v, want the session alive", g)
		}
	})
	t.Run("MaxAge", func(t *testing.T) {
		// Python writes; both sides read just before, at and after max_age.
		t0 := p.fresh(t)
		p.pySet("user", `"alice"`)
		cookie := p.br.cookie()
		p.at(t0 + interopMaxAge - 1)
		if g := p.goGet(); g.New || g.str(t, "user") != "alice" {
			t.Fatalf("Go at age max_age-1 = %+v, want the session", g)
		}
		p.at(t0 + interopMaxAge)
		// aiohttp: age > max_age expires (strict), so age == max_age lives;
		// Go: a session ends at created+lifetime, one second earlier, and
		// Go expires the dead cookie.
		if py := p.pyGet(); py.New || py.Values["user"] == "" {
			t.Errorf("Python at age == max_age = %+v, want still alive (aiohttp expires at age > max_age)", py)
		}
		if !p.goFresh(t, "age == max_age") {
			t.Errorf("Go did not expire the cookie of a session it found expired")
		}
		p.br.setCookie(cookie)
		p.at(t0 + interopMaxAge + 1)
		py := p.pyGet()
		if len(py.Keys) != 0 || py.New != kind.pyExpiredNew {
			t.Errorf("Python at age max_age+1 = %+v, want empty with new=%v", py, kind.pyExpiredNew)
		}
		if p.br.cookie() != cookie {
			t.Errorf("Python changed the cookie of an expired session on a read")
		}
		p.goFresh(t, "age max_age+1")

		// Go writes; Python reads it expired.
		t0 = p.fresh(t)
		p.goSet("user", `"bob"`)
		p.at(t0 + interopMaxAge)
		if py := p.pyGet(); py.New || py.str(t, "user") != "bob" {
			t.Errorf("Python at age == max_age of a Go session = %+v, want alive", py)
		}
		p.at(t0 + interopMaxAge + 1)
		if py := p.pyGet(); len(py.Keys) != 0 || py.New != kind.pyExpiredNew {
			t.Errorf("Python at age max_age+1 of a Go session = %+v, want empty with new=%v", py, kind.pyExpiredNew)
		}
		p.goFresh(t, "age max_age+1 of its own session")
	})
	t.Run("NaNInfinity", func(t *testing.T) {
		p.fresh(t)
		p.pySet("nan", `NaN`)
		p.pySet("inf", `Infinity`)
		p.pySet("ninf", `-Infinity`)
		p.pySet("user", `"alice"`)
		g := p.goGet()
		if g.New || g.str(t, "user") != "alice" || len(g.Keys) != 4 {
			t.Fatalf("Go read of a session holding NaN = %+v, want it loaded with 4 keys", g)
		}
		for _, k := range []string{"nan", "inf", "ninf"} {
			if g.Errors[k] == "" {
				t.Errorf("Go decoded %s = %q; encoding/json has no NaN/Infinity, want a decode error", k, g.Values[k])
			}
		}
		p.view("go", "POST", "/setstr", kvQuery("other", "x")) // read-modify-write of another key
		py := p.pyGet()
		want := map[string]string{"nan": "NaN", "inf": "Infinity", "ninf": "-Infinity", "user": `"alice"`, "other": `"x"`}
		for k, v := range want {
			if py.Values[k] != v {
				t.Errorf("Python after the Go write: %s = %q, want %q (all values %v)", k, py.Values[k], v, py.Values)
			}
		}
		if py.Types["nan"] != "float" {
			t.Errorf("Python type of nan = %q, want float", py.Types["nan"])
		}
		// Go itself cannot write NaN: Set reports it before anything is sent.
		status, body, _ := p.do(p.goURL, "POST", "/setfloat", kvQuery("g", "NaN"))
		if status != 400 || !strings.Contains(body, ErrEncode.Error()) {
			t.Errorf("Go Set(NaN) = %d %q, want 400 with ErrEncode", status, body)
		}
	})
	t.Run("IntegersAbove2to53", func(t *testing.T) {
		p.fresh(t)
		const big, neg, huge = "1152921504606846977", "-9223372036854775808", "1180591620717411303424" // 2^60+1, -2^63, 2^70
		p.pySet("big", big)
		p.pySet("neg", neg)
		p.pySet("huge", huge)
		if _, v := p.goText("/int", kvQuery("big", "")); v != big {
			t.Errorf("Go GetAs[int64](big) = %s, want %s", v, big)
		}
		if _, v := p.goText("/int", kvQuery("neg", "")); v != neg {
			t.Errorf("Go GetAs[int64](neg) = %s, want %s", v, neg)
		}
		if st, v := p.goText("/int", kvQuery("huge", "")); st != 400 {
			t.Errorf("Go GetAs[int64](2^70) = %d %s, want an ErrDecode (overflow)", st, v)
		}
		if _, v := p.goText("/number", kvQuery("huge", "")); v != huge {
			t.Errorf("Go GetAs[json.Number](huge) = %s, want %s", v, huge)
		}
		if _, v := p.goText("/bigint", kvQuery("huge", "")); v != huge {
			t.Errorf("Go GetAs[*big.Int](huge) = %s, want %s", v, huge)
		}
		if _, v := p.goText("/any", kvQuery("big", "")); v != "float64 1.152921504606847e+18" {
			t.Errorf("Go Get(big) = %s, want the float64 rounding encoding/json gives", v)
		}
		const gbig = "4611686018427387907" // 2^62+3, written by Go as int64
		p.view("go", "POST", "/setint", kvQuery("gbig", gbig))
		p.goSet("u64", "18446744073709551615")
		py := p.pyGet()
		for k, v := range map[string]string{"big": big, "neg": neg, "huge": huge, "gbig": gbig, "u64": "18446744073709551615"} {
			if py.Values[k] != v || py.Types[k] != "int" {
				t.Errorf("Python %s = %s (%s), want int %s", k, py.Values[k], py.Types[k], v)
			}
		}
		// A whole float64 written by Go becomes a Python int; Python's
		// floats keep their ".0" through a Go read-modify-write.
		p.pySet("pyf", `1.0`)
		p.view("go", "POST", "/setfloat", kvQuery("gof", "2"))
		py = p.pyGet()
		if py.Values["pyf"] != "1.0" || py.Types["pyf"] != "float" || py.Values["gof"] != "2" || py.Types["gof"] != "int" {
			t.Errorf("floats: pyf=%s (%s), gof=%s (%s); want 1.0 float and 2 int", py.Values["pyf"], py.Types["pyf"], py.Values["gof"], py.Types["gof"])
		}
	})
	t.Run("NonASCII", func(t *testing.T) {
		p.fresh(t)
		const pyKey, pyVal = "ключ", "é – ü\u2028😀 <&> \"q\" \\ ;,"
		const goKey, goVal = "名前", "ü😀\u2029 <&> ;,\"\\ \x01"
		jv, _ := json.Marshal(pyVal)
		p.pySet(pyKey, string(jv))
		if _, v := p.goText("/str", kvQuery(pyKey, "")); v != pyVal {
			t.Errorf("Go GetAs[string](%s) = %q, want %q", pyKey, v, pyVal)
		}
		p.view("go", "POST", "/setstr", kvQuery(goKey, goVal))
		py := p.pyGet()
		if got := py.str(t, goKey); got != goVal {
			t.Errorf("Python %s = %q, want %q", goKey, got, goVal)
		}
		if got := py.str(t, pyKey); got != pyVal {
			t.Errorf("Python %s after the Go write = %q, want %q", pyKey, got, pyVal)
		}
	})
	t.Run("PythonInvalidate", func(t *testing.T) {
		p.fresh(t)
		p.pySet("user", `"alice"`)
		old := p.br.cookie()
		if g := p.goGet(); g.New {
			t.Fatalf("Go did not load the Python session: %+v", g)
		}
		p.view("py", "POST", "/invalidate", nil)
		switch {
		case kind.rawJar:
			if c := p.br.cookie(); c != `"{}"` {
				t.Errorf("after Python invalidate() the Simple cookie = %s, want \"{}\"", c)
			}
		case p.br.cookie() != "":
			t.Errorf("after Python invalidate() the cookie = %s, want it deleted", p.br.cookie())
		}
		if kind.record != nil {
			if v, found := kind.record(t, old); !found || v != "{}" {
				t.Errorf("after Python invalidate() the record = %q (found %v), want \"{}\"", v, found)
			}
		}
		if g := p.goGet(); !g.New || len(g.Keys) != 0 {
			t.Errorf("Go after Python invalidate() = %+v, want a fresh session", g)
		}
		// A client that replays the old cookie: server-side storages hold
		// "{}" under it, which both sides read as no session; a cookie
		// storage cannot revoke, so the old cookie still opens on both.
		p.br.setCookie(old)
		g, py := p.goGet(), p.pyGet()
		if kind.serverSide {
			if !g.New || !py.New || len(g.Keys)+len(py.Keys) != 0 {
				t.Errorf("replayed invalidated ID: Go %+v, Python %+v; want both fresh", g, py)
			}
			g = p.goSet("user", `"mallory"`)
			if p.br.cookie() == old || g.ID == old {
				t.Errorf("Go reused the invalidated ID %s for new data (session fixation)", old)
			}
		} else if g.New || py.New {
			t.Errorf("replayed cookie: Go new=%v Python new=%v; a cookie storage cannot revoke it", g.New, py.New)
		}
		// Deleting the last key is an empty session too.
		p.fresh(t)
		p.pySet("only", `1`)
		p.view("py", "POST", "/del", kvQuery("only", ""))
		if g := p.goGet(); !g.New || len(g.Keys) != 0 {
			t.Errorf("Go after Python deleted the last key = %+v, want fresh", g)
		}
	})
	t.Run("GoDeletesPythonsCookie", func(t *testing.T) {
		// Go's deletion cookie carries Secure, HttpOnly and SameSite, which
		// aiohttp's deletions do not (aiohttp #6896): the cookie Python set
		// is deleted all the same, since a cookie is matched by name,
		// domain and path.
		p.fresh(t)
		p.pySet("user", `"alice"`)
		status, _, h := p.do(p.goURL, "POST", "/invalidate", nil)
		line := h.Get("Set-Cookie")
		if status != 200 || !strings.HasPrefix(line, aiohttpCookie+"=;") || !strings.Contains(line, "Max-Age=0") {
			t.Fatalf("Go's logout of a Python session = %d, Set-Cookie %q; want a deletion", status, line)
		}
		for _, attr := range []string{"HttpOnly", "Secure", "SameSite=Lax"} {
			if !strings.Contains(line, attr) {
				t.Errorf("Go's deletion cookie %q has no %s", line, attr)
			}
		}
		if c := p.br.cookie(); c != "" {
			t.Errorf("after Go's deletion the browser still holds Python's cookie %s", c)
		}
		if py := p.pyGet(); !py.New || len(py.Keys) != 0 {
			t.Errorf("Python after Go's logout = %+v, want new", py)
		}
		if kind.rawJar {
			return // SimpleCookieStorage writes "{}" rather than delete
		}
		p.pySet("user", `"alice"`)
		_, _, h = p.do(p.py.url, "POST", "/invalidate", nil)
		line = h.Get("Set-Cookie")
		if !strings.Contains(line, "Max-Age=0") || strings.Contains(line, "HttpOnly") || strings.Contains(line, "Secure") || strings.Contains(line, "SameSite") {
			t.Errorf("Python's deletion cookie = %q, want Max-Age=0 without HttpOnly, Secure or SameSite", line)
		}
	})
	t.Run("GoInvalidate", func(t *testing.T) {
		p.fresh(t)
		p.goSet("user", `"bob"`)
		old := p.br.cookie()
		if py := p.pyGet(); py.New {
			t.Fatalf("Python did not load the Go session: %+v", py)
		}
		p.view("go", "POST", "/invalidate", nil)
		if c := p.br.cookie(); c != "" {
			t.Errorf("after Go Invalidate the cookie = %s, want it deleted", c)
		}
		if kind.record != nil {
			if v, found := kind.record(t, old); found {
				t.Errorf("after Go Invalidate the record = %q, want it deleted", v)
			}
		}
		if py := p.pyGet(); !py.New || len(py.Keys) != 0 {
			t.Errorf("Python after Go Invalidate = %+v, want new", py)
		}
		if kind.serverSide {
			p.br.setCookie(old)
			if py := p.pyGet(); !py.New || len(py.Keys) != 0 {
				t.Errorf("Python with the replayed invalidated ID = %+v, want new", py)
			}
		}
		p.fresh(t)
		p.goSet("only", `1`)
		p.view("go", "POST", "/del", kvQuery("only", ""))
		if py := p.pyGet(); !py.New || len(py.Keys) != 0 {
			t.Errorf("Python after Go deleted the last key = %+v, want new", py)
		}
	})
	t.Run("TamperedCookies", func(t *testing.T) {
		interopTamperSuite(t, p)
	})
	if kind.rawJar {
		t.Run("SimpleCookieBytes", func(t *testing.T) {
			// The same session, written by each side: Python's cookie and
			// Go's are the same bytes, but for Go's "accessed" member after
			// "session". Python keeps insertion order and Go sorts the
			// keys, so Python sets them in sorted order here.
			session := [][2]string{
				{"a", `1`}, {"b", `"x, y: z;"`}, {"c", `[1, {"d": null, "e": 2.5}]`},
				{"u", `"é😀"`}, {"z", `true`},
			}
			t0 := p.fresh(t)
			for _, kv := range session {
				p.pySet(kv[0], kv[1])
			}
			py := p.br.cookie()
			p.fresh(t)
			p.at(t0)
			for i := len(session) - 1; i >= 0; i-- { // any order
				p.goSet(session[i][0], session[i][1])
			}
			goCookie := p.br.cookie()
			want := strings.TrimSuffix(py, `}"`) + `\054 \"accessed\": ` + strconv.FormatInt(t0, 10) + `}"`
			if goCookie != want {
				t.Errorf("Go's Simple cookie\n%s\nwant Python's with accessed added\n%s\n(Python's: %s)", goCookie, want, py)
			}
			for range 3 { // and the same bytes every time
				p.view("go", "POST", "/setstr", kvQuery("a", "again"))
				p.goSet("a", `1`)
				if c := p.br.cookie(); c != goCookie {
					t.Fatalf("Go rewrote the same session as\n%s\nnot\n%s", c, goCookie)
				}
			}
		})
	}
	if kind.foreign != nil {
		t.Run("ForeignKey", func(t *testing.T) {
			foreign := goServer(t, kind.foreign(t, p.clock), p.clock, interopMaxAge)
			p.fresh(t)
			p.pySet("user", `"alice"`)
			status, body, h := p.do(foreign, "GET", "/get", nil)
			if status != 200 || !strings.Contains(body, `"new":true`) || !strings.Contains(body, `"keys":[]`) {
				t.Errorf("Go with another key reading a Python cookie = %d %s, want 200 and a fresh session", status, body)
			}
			if !strings.Contains(h.Get("Set-Cookie"), "Max-Age=0") {
				t.Errorf("Go with another key did not expire the cookie it cannot open: %q", h.Get("Set-Cookie"))
			}
			p.fresh(t)
			if status, body, _ := p.do(foreign, "POST", "/set", kvQuery("user", `"mallory"`)); status != 200 {
				t.Fatalf("foreign Go set = %d %s", status, body)
			}
			warnings := strings.Count(p.py.stderr.String(), "Cannot decrypt cookie value")
			if py := p.pyGet(); !py.New || len(py.Keys) != 0 {
				t.Errorf("Python reading a cookie sealed with another key = %+v, want new", py)
			}
			// stderr arrives through a pipe: give it a moment.
			for i := 0; strings.Count(p.py.stderr.String(), "Cannot decrypt cookie value") <= warnings; i++ {
				if i == 100 {
					t.Errorf("Python did not log its 'Cannot decrypt cookie value' warning")
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	if kind.name == "Fernet" {
		t.Run("FernetClockSkew", func(t *testing.T) {
			// Fernet's TTL check also refuses a token stamped more than 60 s
			// in the future: the two services' clocks must agree that well.
			t0 := p.fresh(t)
			p.clock.Set(time.Unix(t0+61, 0))
			p.goSet("user", `"bob"`)
			if py := p.pyGet(); !py.New {
				t.Errorf("Python reading a token from 61 s ahead = %+v, want new (Fernet clock skew)", py)
			}
			p.fresh(t)
			p.clock.Set(time.Unix(t0+60, 0))
			p.goSet("user", `"bob"`)
			p.clock.Set(time.Unix(t0, 0))
			if py := p.pyGet(); py.New {
				t.Errorf("Python reading a token from 60 s ahead = %+v, want it accepted", py)
			}
		})
	}
	t.Run("GoFlashesAndSettingsDroppedByPythonWrites", func(t *testing.T) {
		// Go keeps flashes and per-session settings beside "session" in the
		// record; aiohttp_session rewrites the record without them.
		p.fresh(t)
		p.view("go", "POST", "/flash", kvQuery("", "saved"))
		p.pySet("x", `1`)
		status, body := p.goText("/flashes", nil)
		if status != 200 || body != "null" {
			t.Errorf("Go flashes after a Python write = %d %s, want none (Python drops them)", status, body)
		}
	})
}

// interopTamperSuite: a damaged cookie from either side gives a fresh session
// with 200 on Go and a new session on Python (or, for Simple, which has no
// integrity, the Python 500 aiohttp_session documents).
func interopTamperSuite(t *testing.T, p *interopPair) {
	kind := p.kind
	// Each side sees the damaged cookie as sent; Go also expires it,
	// unless it is a server-side ID of a shape Go does not read, which
	// may be another key_factory's live session (see interopKeyShapes).
	check := func(bad, what string, pyWant func()) {
		t.Helper()
		p.br.setCookie(bad)
		pyWant()
		p.br.setCookie(bad)
		foreign := kind.serverSide && !validHexID(bad) && !validUUIDStringID(bad)
		if expired := p.goFresh(t, what+" "+bad); expired == foreign {
			t.Errorf("Go with the dead cookie %s: expired it %v, want %v", bad, expired, !foreign)
		}
	}
	pyNew := func(what string) func() {
		return func() {
			t.Helper()
			if py := p.pyGet(); !py.New || len(py.Keys) != 0 {
				t.Errorf("Python with %s (cookie %s) = %+v, want new", what, p.br.cookie(), py)
			}
		}
	}
	if kind.rawJar {
		// SimpleCookieStorage has no integrity: any JSON object is taken as
		// it is, and anything else is a Python 500. Go never fails.
		p.fresh(t)
		for _, bad := range []string{`"not json"`, "garbage", `"[1]"`, `"{\"created\": \"x\"\054 \"session\": {}}"`} {
			check(bad, "Simple cookie", func() {
				if status, _, _ := p.do(p.py.url, "GET", "/get", nil); status != 500 {
					t.Errorf("Python with Simple cookie %s = %d, want aiohttp_session's 500", bad, status)
				}
			})
		}
		check(`"{}"`, "Simple cookie", pyNew(`Simple cookie "{}"`))
		return
	}
	if kind.serverSide {
		p.fresh(t)
		p.pySet("user", `"alice"`)
		id := p.br.cookie()
		for _, bad := range []string{tamperToken(id), strings.ToUpper(id), id[:31], "../" + id[3:],
			"0123456789abcdef0123456789abcdef", "00112233-4455-6677-8899-aabbccddeeff"} {
			check(bad, "session ID", pyNew("session ID "+bad))
		}
		return
	}
	for _, writer := range []string{"py", "go"} {
		p.fresh(t)
		if writer == "py" {
			p.pySet("user", `"alice"`)
		} else {
			p.goSet("user", `"bob"`)
		}
		unq := strings.Trim(p.br.cookie(), `"`)
		damaged := []string{tamperToken(unq), unq[:len(unq)/2], "x" + unq}
		if strings.HasSuffix(unq, "=") {
			damaged = append(damaged, strings.TrimRight(unq, "=")) // Python requires the padding
		}
		for _, bad := range damaged {
			check(bad, writer+"-written token damaged to", pyNew(writer+"-written token damaged to "+bad))
		}
	}
}

// TestInteropKeyRotation: Go configured with [new, old] keys reads the
// session Python sealed with the old key (each keyed storage Python has:
// EncryptedCookieStorage and NaClCookieStorage), and reseals it with the new
// one when it writes: Python, still on the old key, then starts a new
// session, while a Go store with the new key alone opens it.
func TestInteropKeyRotation(t *testing.T) {
	needPython(t)
	oldKey, newKey := randomKey(t), randomKey(t)
	b64 := base64.StdEncoding.EncodeToString(oldKey)
	for _, kind := range []*interopKind{
		{name: "Fernet", pyArgs: []string{"--storage", "fernet", "--key", b64}},
		{name: "NaCl", pyArgs: []string{"--storage", "nacl", "--key", b64}},
	} {
		t.Run(kind.name, func(t *testing.T) {
			k := kindNamed(strings.ToLower(kind.name))
			kind.store = func(t *testing.T, clock *testClock, _ ...ServerOption) Store {
				return mustStoreAt(t, k, clock.Now, newKey, oldKey)
			}
			p := newInteropPair(t, kind, interopMaxAge)
			t0 := p.fresh(t)
			p.pySet("user", `"alice"`)
			pyCookie := p.br.cookie()
			if g := p.goGet(); g.New || g.str(t, "user") != "alice" || g.Created != t0 {
				t.Fatalf("Go with [new, old] reading Python's old-key cookie = %+v, want user=alice", g)
			}
			p.goSet("role", `"admin"`)
			goCookie := strings.Trim(p.br.cookie(), `"`)
			if goCookie == strings.Trim(pyCookie, `"`) {
				t.Fatal("Go's write did not reseal the cookie")
			}
			if data, err := mustStoreAt(t, k, p.clock.Now, newKey).Load(t.Context(), goCookie); err != nil || !strings.Contains(string(data), `"role":"admin"`) {
				t.Errorf("Go's reseal does not open with the new key alone: %q, %v", data, err)
			}
			if _, err := mustStoreAt(t, k, p.clock.Now, oldKey).Load(t.Context(), goCookie); !errors.Is(err, ErrNotFound) {
				t.Errorf("Go's reseal opens with the old key: %v; want it sealed with the new one", err)
			}
			if py := p.pyGet(); !py.New || len(py.Keys) != 0 {
				t.Errorf("Python on the old key reading Go's reseal = %+v, want a new session", py)
			}
		})
	}
}

// TestInteropKeyConventions: the 32 raw key bytes Go takes are the
// aiohttp_session key every Python form denotes.
func TestInteropKeyConventions(t *testing.T) {
	needPython(t)
	raw := []byte(aiohttpKey)
	out, err := exec.Command(systemPython, "-c", `
import base64, sys
from cryptography.fernet import Fernet
raw = b"Thirty  two  length  bytes  key."
s = base64.urlsafe_b64encode(raw).decode()
print(s)
# bytes (raw) and str (urlsafe base64) keys are the same Fernet key
f1, f2 = Fernet(s), Fernet(base64.urlsafe_b64encode(raw))
tok = f1._encrypt_from_parts(b'{"created": 1700000000, "session": {"a": 1}}', 1700000000, bytes(range(16)))
print(tok.decode())
print(f2.decrypt(tok).decode())
`).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 {
		t.Fatalf("python output %q", out)
	}
	if want := base64.URLEncoding.EncodeToString(raw); lines[0] != want {
		t.Errorf("Python's str key = %s, want base64.URLEncoding of the raw key %s", lines[0], want)
	}
	if lines[1] != fernetVectorToken {
		t.Errorf("cryptography's token = %s, want the spec vector", lines[1])
	}
	store, _ := fernetVectorStore(t)
	if data, err := store.Load(t.Context(), lines[1]); err != nil || string(data) != aiohttpPlain {
		t.Errorf("Go open of Python's token = %q, %v", data, err)
	}
}

// TestInteropMillisecondAccessed: a record whose "accessed" has a
// fraction, which aiohttp_session never sees from the interop servers
// (their clocks are on whole seconds), still loads in aiohttp_session with
// its created and values.
func TestInteropMillisecondAccessed(t *testing.T) {
	needPython(t)
	persist := true
	rec := Record{
		Created: time.Unix(1700000000, 0), Accessed: time.Unix(1700000100, 123e6), Lifetime: time.Hour,
		Persistent: &persist, Flashes: []string{"hi"}, Values: map[string][]byte{"a": []byte("1"), "u": []byte(`"x"`)},
	}
	data, err := JSONCodec{}.EncodeRecord(&rec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"accessed":1700000100.123`)) {
		t.Fatalf("record %s has no millisecond accessed", data)
	}
	store, err := NewNaClCookieStore([]byte(aiohttpKey))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := store.Save(t.Context(), "", data, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(systemPython, "-c", `
import asyncio, json, sys
from aiohttp.test_utils import make_mocked_request
from aiohttp_session.nacl_storage import NaClCookieStorage

async def main():
    storage = NaClCookieStorage(b"`+aiohttpKey+`", cookie_name="S")
    s = await storage.load_session(make_mocked_request("GET", "/", headers={"Cookie": "S=" + sys.argv[1]}))
    print(json.dumps({"new": s.new, "created": s.created, "session": dict(s)}))

asyncio.run(main())
`, tok).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	var got struct {
		New     bool           `json:"new"`
		Created json.Number    `json:"created"`
		Session map[string]any `json:"session"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("python output %q: %v", out, err)
	}
	if got.New || got.Created != "1700000000" || len(got.Session) != 2 || got.Session["a"] != 1.0 || got.Session["u"] != "x" {
		t.Errorf("aiohttp_session loaded %s as %+v, want not new, created 1700000000, a=1 u=x", data, got)
	}
}
