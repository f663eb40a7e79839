package bench

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// The scenarios of BenchmarkMiddleware (see the issue):
//
//	new        no cookie; the handler sets one string
//	read       valid cookie; the handler reads one string key
//	modify     valid cookie; the handler reads the counter and increments it
//	untouched  valid cookie; the handler never touches the session
var scenarios = []string{"new", "read", "modify", "untouched"}

// kv is one session key and its value (a string or an int).
type kv struct {
	key string
	val any
}

const (
	cookieName = "session"
	readKey    = "user"
	readValue  = "alice"
	counterKey = "counter"
	counterVal = 41 // the seeded counter; the first modify answers 42
)

// payload is nStrings short string keys plus the counter. The first key is
// readKey, which the read scenario reads. payload(5) is the payload.
func payload(nStrings int) []kv {
	p := make([]kv, 0, nStrings+1)
	if nStrings > 0 {
		p = append(p, kv{readKey, readValue})
	}
	fixed := []kv{{"email", "alice@example.com"}, {"role", "admin"}, {"theme", "dark"}, {"lang", "en-GB"}}
	for i := 1; i < nStrings; i++ {
		if i-1 < len(fixed) {
			p = append(p, fixed[i-1])
			continue
		}
		p = append(p, kv{fmt.Sprintf("k%02d", i), fmt.Sprintf("v%02d", i)})
	}
	return append(p, kv{counterKey, counterVal})
}

// sessionLib is what a scenario handler needs from a session library. Each
// call works on the request's session; a library that saves in the handler
// (gorilla) saves inside the setters.
type sessionLib interface {
	// wrap adds the library's middleware, if it has one.
	wrap(next http.Handler) http.Handler
	setAll(w http.ResponseWriter, r *http.Request, kvs []kv) error
	setString(w http.ResponseWriter, r *http.Request, key, val string) error
	getString(w http.ResponseWriter, r *http.Request, key string) (string, error)
	// incr reads the int under key, stores it plus one and returns the new value.
	incr(w http.ResponseWriter, r *http.Request, key string) (int, error)
}

// lib is one column of the comparison.
type lib struct {
	name string
	// cookie: the session data travels in the cookie (the 4 KB scale case).
	cookie bool
	// server names the server or database the lib keeps its sessions in:
	// "" (in process or in the cookie), "redis", "memcached", "postgres"
	// or "sqlite" (a file; it needs no server).
	server string
	// open builds a fresh instance; it skips tb when its server is not
	// configured (fails it under CI=true, see env.need). The cleanup is
	// registered on tb.
	open func(tb testing.TB, e *env) sessionLib
}

// sessions reports whether the lib has sessions at all (false for floor
// and floor-context).
func (l *lib) sessions() bool { return !strings.HasPrefix(l.name, "floor") }

var (
	okBody  = []byte("ok")
	errBody = "session error"
)

// handler returns the lib's full handler chain for scenario: middleware,
// ServeMux, scenario handler.
func handler(sl sessionLib, scenario string) http.Handler {
	var h http.HandlerFunc
	switch scenario {
	case "new":
		h = func(w http.ResponseWriter, r *http.Request) {
			if err := sl.setString(w, r, readKey, readValue); err != nil {
				http.Error(w, errBody+": "+err.Error(), http.StatusInternalServerError)
				return
			}
			w.Write(okBody)
		}
	case "read":
		h = func(w http.ResponseWriter, r *http.Request) {
			v, err := sl.getString(w, r, readKey)
			if err != nil {
				http.Error(w, errBody+": "+err.Error(), http.StatusInternalServerError)
				return
			}
			w.Write([]byte(v))
		}
	case "modify":
		h = func(w http.ResponseWriter, r *http.Request) {
			n, err := sl.incr(w, r, counterKey)
			if err != nil {
				http.Error(w, errBody+": "+err.Error(), http.StatusInternalServerError)
				return
			}
			w.Write(strconv.AppendInt(nil, int64(n), 10))
		}
	case "untouched":
		h = func(w http.ResponseWriter, r *http.Request) { w.Write(okBody) }
	default:
		panic("unknown scenario " + scenario)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /", h)
	return sl.wrap(mux)
}

// seedHandler stores kvs in a new session: how the benchmarks get a valid
// cookie for each library.
func seedHandler(sl sessionLib, kvs []kv) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		if err := sl.setAll(w, r, kvs); err != nil {
			http.Error(w, errBody+": "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(okBody)
	})
	return sl.wrap(mux)
}

// requestHead is a browser-like request; the Cookie line and the blank line
// follow it.
const requestHead = "GET / HTTP/1.1\r\n" +
	"Host: example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
	"Accept-Language: en-GB,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n"

// rawRequest returns the wire bytes of a request whose Cookie header is
// cookies ("" for none).
func rawRequest(cookies string) []byte {
	var b bytes.Buffer
	b.WriteString(requestHead)
	if cookies != "" {
		b.WriteString("Cookie: " + cookies + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// cookieHeader returns the Cookie header value of a request carrying
// session ("name=value", or "" for none), padded to padTo bytes with a
// third-party cookie before it, as browsers send analytics cookies along.
// Every library's request in a benchmark then has the same size, so that
// net/http's header parsing costs all of them, and floor, the same; only a
// session cookie longer than padTo makes its request longer.
func cookieHeader(session string, padTo int) string {
	const name, sep = "_ga=GA1.1.", "; "
	fill := padTo - len(name) - len(session)
	if session != "" {
		fill -= len(sep)
	}
	if fill < 8 {
		return session
	}
	digits := make([]byte, fill)
	for i := range digits {
		digits[i] = "0123456789"[(i*7+3)%10]
		if i%11 == 10 {
			digits[i] = '.'
		}
	}
	if session == "" {
		return name + string(digits)
	}
	return name + string(digits) + sep + session
}

// tlsState marks requests as served over HTTPS, as in production; it is
// per connection in net/http, so it is shared here.
var tlsState = &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true, ServerName: "example.com"}

// reqSource parses a fresh *http.Request from the same bytes on every call,
// through a reused bufio.Reader as on a keep-alive connection. Not safe for
// concurrent use: RunParallel gives each goroutine its own.
type reqSource struct {
	raw []byte
	rd  bytes.Reader
	br  *bufio.Reader
}

func newReqSource(raw []byte) *reqSource {
	s := &reqSource{raw: raw}
	s.br = bufio.NewReaderSize(&s.rd, 4096) // net/http's server buffer size
	return s
}

func (s *reqSource) next() *http.Request {
	s.rd.Reset(s.raw)
	s.br.Reset(&s.rd)
	r, err := http.ReadRequest(s.br)
	if err != nil {
		panic(err)
	}
	r.TLS = tlsState
	r.RemoteAddr = "192.0.2.10:52000"
	return r
}

// benchWriter is a cheap reusable ResponseWriter: it keeps status, headers
// and body, and reset clears them without freeing their memory.
type benchWriter struct {
	h      http.Header
	status int
	body   []byte
}

func newBenchWriter() *benchWriter {
	return &benchWriter{h: make(http.Header, 8), body: make([]byte, 0, 512)}
}

func (w *benchWriter) Header() http.Header { return w.h }

func (w *benchWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *benchWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

func (w *benchWriter) reset() {
	clear(w.h)
	w.status = 0
	w.body = w.body[:0]
}

func (w *benchWriter) finalStatus() int {
	if w.status == 0 {
		return http.StatusOK // the handler returned without writing
	}
	return w.status
}

// sessionCookie returns "name=value" of the response's Set-Cookie for the
// session cookie, or "".
func (w *benchWriter) sessionCookie() string {
	for _, sc := range w.h.Values("Set-Cookie") {
		nv, _, _ := strings.Cut(sc, ";")
		if strings.HasPrefix(nv, cookieName+"=") {
			return nv
		}
	}
	return ""
}

// serve runs one request through h.
func serve(h http.Handler, raw []byte) *benchWriter {
	w := newBenchWriter()
	h.ServeHTTP(w, newReqSource(raw).next())
	return w
}

// seed stores kvs through the lib and returns the session cookie
// ("name=value") the lib handed out.
func seed(sl sessionLib, kvs []kv) (string, error) {
	w := serve(seedHandler(sl, kvs), rawRequest(""))
	if w.finalStatus() != http.StatusOK {
		return "", fmt.Errorf("seed: status %d: %s", w.finalStatus(), bytes.TrimSpace(w.body))
	}
	c := w.sessionCookie()
	if c == "" {
		return "", fmt.Errorf("seed: no session cookie in %q", w.h.Values("Set-Cookie"))
	}
	return c, nil
}

// expectation is the outcome a scenario must produce.
type expectation struct {
	body      string // "" = any body
	setCookie bool
}

func expect(l *lib, scenario string) expectation {
	switch scenario {
	case "new", "untouched":
		return expectation{body: "ok", setCookie: scenario == "new" && l.sessions()}
	case "read":
		return expectation{body: readValue}
	case "modify":
		return expectation{body: strconv.Itoa(counterVal + 1), setCookie: l.sessions()}
	}
	panic("unknown scenario " + scenario)
}

// check compares one response with the expectation; strictBody false skips
// the body (a server-side counter keeps counting during a benchmark).
func check(w *benchWriter, want expectation, strictBody bool) error {
	if st := w.finalStatus(); st != http.StatusOK {
		return fmt.Errorf("status %d, want 200 (body %q)", st, bytes.TrimSpace(w.body))
	}
	if strictBody && want.body != "" && string(w.body) != want.body {
		return fmt.Errorf("body %q, want %q", w.body, want.body)
	}
	if got := w.sessionCookie() != ""; got != want.setCookie {
		return fmt.Errorf("Set-Cookie present = %v, want %v (headers %v)", got, want.setCookie, w.h)
	}
	return nil
}

// setup is one ready sub-benchmark: the handler and the request bytes,
// with the scenario's outcome already checked once.
type setup struct {
	h    http.Handler
	raw  []byte
	want expectation
}

// prepare opens l, seeds a session with kvs (unless scenario is new),
// builds the handler chain and checks one response, so a broken library
// cannot look fast. Requests carry a Cookie header of padTo bytes (see
// cookieHeader). A seeding failure is returned (the caller decides whether
// it means "cannot hold this payload" or a broken library); a wrong outcome
// is fatal.
func prepare(tb testing.TB, e *env, l *lib, scenario string, kvs []kv, padTo int) (*setup, error) {
	tb.Helper()
	sl := l.open(tb, e)
	cookie := ""
	if scenario != "new" && l.sessions() {
		var err error
		if cookie, err = seed(sl, kvs); err != nil {
			return nil, err
		}
	}
	s := &setup{h: handler(sl, scenario), raw: rawRequest(cookieHeader(cookie, padTo)), want: expect(l, scenario)}
	if err := check(serve(s.h, s.raw), s.want, true); err != nil {
		tb.Fatalf("%s/%s: wrong outcome before timing: %v", l.name, scenario, err)
	}
	return s, nil
}

// postCheck runs one more request after the timed loop: the library must
// still answer as the scenario expects (status and Set-Cookie).
func (s *setup) postCheck(tb testing.TB) {
	tb.Helper()
	if err := check(serve(s.h, s.raw), s.want, false); err != nil {
		tb.Fatalf("wrong outcome after timing: %v", err)
	}
}

// env holds how to reach the external servers, which scripts/testenv.sh
// starts and exports; an empty address means the server is not
// configured.
type env struct {
	redisAddr      string
	memcachedAddrs []string
	postgresDSN    string
	// redisHook, if set, is added to every Redis client (round-trip test).
	redisHook redis.Hook
	// statements, if set, counts the statements of every SQL connection
	// (round-trip test).
	statements *sqlCounter
}

func newEnv() *env {
	e := &env{redisAddr: os.Getenv("HTTPSESSION_REDIS_ADDR"), postgresDSN: os.Getenv("HTTPSESSION_POSTGRES_DSN")}
	if v := os.Getenv("HTTPSESSION_MEMCACHED_ADDRS"); v != "" {
		e.memcachedAddrs = strings.Split(v, ",")
	}
	return e
}

// need skips tb when server is not configured, or fails it under CI=true,
// where every library must run. SQLite needs nothing.
func (e *env) need(tb testing.TB, server string) {
	tb.Helper()
	missing := ""
	switch {
	case server == "redis" && e.redisAddr == "":
		missing = "HTTPSESSION_REDIS_ADDR"
	case server == "memcached" && len(e.memcachedAddrs) == 0:
		missing = "HTTPSESSION_MEMCACHED_ADDRS"
	case server == "postgres" && e.postgresDSN == "":
		missing = "HTTPSESSION_POSTGRES_DSN"
	}
	if missing == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s not set, and CI=true: every library must run in CI (run through scripts/testenv.sh)", missing)
	}
	tb.Skipf("%s not set (run through scripts/testenv.sh)", missing)
}
