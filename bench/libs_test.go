package bench

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/bradfitz/gomemcache/memcache"
	gsm "github.com/bradleypeabody/gorilla-sessions-memcache"
	"github.com/go-httpsession/httpsession"
	"github.com/gorilla/sessions"
	"github.com/rbcervilla/redisstore/v9"
	"github.com/redis/go-redis/v9"
)

// libs are the columns of BenchmarkMiddleware, in the order.
var libs = []*lib{
	{name: "floor", open: openFloor},
	{name: "floor-context", open: openFloorContext},
	{name: "httpsession-signed", cookie: true, open: openHTTPSessionCookie(httpsession.NewSignedCookieStore)},
	{name: "httpsession-encrypted", cookie: true, open: openHTTPSessionCookie(httpsession.NewEncryptedCookieStore)},
	{name: "httpsession-nacl", cookie: true, open: openHTTPSessionCookie(httpsession.NewNaClCookieStore)},
	{name: "httpsession-memory", open: openHTTPSessionMemory},
	{name: "httpsession-redis", server: "redis", open: openHTTPSessionRedis},
	{name: "httpsession-memcached", server: "memcached", open: openHTTPSessionMemcached},
	{name: "gorilla-cookie", cookie: true, open: openGorillaCookie},
	{name: "gorilla-redis", server: "redis", open: openGorillaRedis},
	{name: "gorilla-memcached", server: "memcached", open: openGorillaMemcached},
	{name: "scs-memory", open: openSCSMemory},
	{name: "scs-redis", server: "redis", open: openSCSRedis},
	{name: "httpsession-postgres", server: "postgres", open: openHTTPSessionSQL("postgres", httpsession.DialectPostgres)},
	{name: "httpsession-sqlite", server: "sqlite", open: openHTTPSessionSQL("sqlite", httpsession.DialectSQLite)},
	{name: "scs-postgres", server: "postgres", open: openSCSSQL("postgres")},
	{name: "scs-sqlite", server: "sqlite", open: openSCSSQL("sqlite")},
}

func libNamed(name string) *lib {
	for _, l := range libs {
		if l.name == name {
			return l
		}
	}
	panic("no lib " + name)
}

// key returns a fixed 32-byte secret, so cookies are comparable across runs.
func key(label string) []byte {
	k := sha256.Sum256([]byte("httpsession bench " + label))
	return k[:]
}

// sessionMaxAge is every library's session lifetime: httpsession's default.
const sessionMaxAge = 24 * time.Hour

// ---- floor: the same chain without sessions ----

type floorLib struct{}

func openFloor(testing.TB, *env) sessionLib { return floorLib{} }

func (floorLib) wrap(next http.Handler) http.Handler                                { return next }
func (floorLib) setAll(http.ResponseWriter, *http.Request, []kv) error              { return nil }
func (floorLib) setString(http.ResponseWriter, *http.Request, string, string) error { return nil }
func (floorLib) getString(http.ResponseWriter, *http.Request, string) (string, error) {
	return readValue, nil
}
func (floorLib) incr(http.ResponseWriter, *http.Request, string) (int, error) {
	return counterVal + 1, nil
}

// ---- floor-context: floor plus the least a request-state middleware does ----

// floorContextLib is floor behind a middleware that does only what any
// middleware must do to hand its handlers per-request state through the
// request and to see the response before it leaves: one allocation holding
// the state (a context) and a wrapped ResponseWriter, and r.WithContext.
// It has no sessions. Its cost over floor is the bound for httpsession's
// untouched scenario, whose middleware does the same plus, once per
// request, a check under a lock that the handler never asked for its
// session.
type floorContextLib struct{ floorLib }

func openFloorContext(testing.TB, *env) sessionLib { return floorContextLib{} }

type floorContextState struct {
	context.Context
	w floorContextWriter
}

type floorContextWriter struct {
	http.ResponseWriter
	st *floorContextState
}

func (floorContextLib) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &floorContextState{Context: r.Context()}
		st.w = floorContextWriter{ResponseWriter: w, st: st}
		next.ServeHTTP(&st.w, r.WithContext(st))
	})
}

// ---- httpsession ----

type hsLib struct {
	mw func(http.Handler) http.Handler
}

var quiet = slog.New(slog.DiscardHandler)

func newHSLib(tb testing.TB, store httpsession.Store) sessionLib {
	mw, err := httpsession.Middleware(store, httpsession.WithLifetime(sessionMaxAge), httpsession.WithLogger(quiet))
	if err != nil {
		tb.Fatal(err)
	}
	return hsLib{mw}
}

func openHTTPSessionCookie(newStore func(keys ...[]byte) (*httpsession.CookieStore, error)) func(testing.TB, *env) sessionLib {
	return func(tb testing.TB, _ *env) sessionLib {
		store, err := newStore(key("httpsession"))
		if err != nil {
			tb.Fatal(err)
		}
		return newHSLib(tb, store)
	}
}

// memoryBenchCapacity replaces DefaultMaxSessions (100,000): scenario=new
// creates a session per iteration, more than that in one benchmark run. The
// store is otherwise NewMemoryStore's.
const memoryBenchCapacity = 1 << 23

func openHTTPSessionMemory(tb testing.TB, _ *env) sessionLib {
	return newHSLib(tb, httpsession.NewServerStore(httpsession.NewMemoryBackend(memoryBenchCapacity, nil)))
}

func openHTTPSessionRedis(tb testing.TB, e *env) sessionLib {
	e.need(tb, "redis")
	return newHSLib(tb, httpsession.NewRedisStore(e.redisClient(tb), httpsession.WithKeyPrefix("bench:httpsession:")))
}

func openHTTPSessionMemcached(tb testing.TB, e *env) sessionLib {
	e.need(tb, "memcached")
	return newHSLib(tb, httpsession.NewMemcachedStore(e.memcacheClient(tb), httpsession.WithKeyPrefix("bench_httpsession_")))
}

func (l hsLib) wrap(next http.Handler) http.Handler { return l.mw(next) }

func (hsLib) setAll(_ http.ResponseWriter, r *http.Request, kvs []kv) error {
	s, err := httpsession.Get(r)
	if err != nil {
		return err
	}
	for _, p := range kvs {
		if err := s.Set(p.key, p.val); err != nil {
			return err
		}
	}
	return nil
}

func (hsLib) setString(_ http.ResponseWriter, r *http.Request, key, val string) error {
	s, err := httpsession.Get(r)
	if err != nil {
		return err
	}
	return s.Set(key, val)
}

func (hsLib) getString(_ http.ResponseWriter, r *http.Request, key string) (string, error) {
	s, err := httpsession.Get(r)
	if err != nil {
		return "", err
	}
	return httpsession.GetAs[string](s, key)
}

func (hsLib) incr(_ http.ResponseWriter, r *http.Request, key string) (int, error) {
	s, err := httpsession.Get(r)
	if err != nil {
		return 0, err
	}
	n, err := httpsession.GetAs[int](s, key)
	if err != nil {
		return 0, err
	}
	return n + 1, s.Set(key, n+1)
}

// ---- gorilla/sessions: no middleware, the handler saves ----

type gorillaLib struct{ store sessions.Store }

func gorillaOptions() *sessions.Options {
	return &sessions.Options{Path: "/", MaxAge: int(sessionMaxAge / time.Second), Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

// openGorillaCookie is a CookieStore with a 32-byte hash key (HMAC-SHA256)
// and a 32-byte block key (AES-256), as the issue asks.
func openGorillaCookie(testing.TB, *env) sessionLib {
	cs := sessions.NewCookieStore(key("gorilla hash"), key("gorilla block"))
	cs.Options = gorillaOptions()
	cs.MaxAge(cs.Options.MaxAge)
	return gorillaLib{cs}
}

func openGorillaRedis(tb testing.TB, e *env) sessionLib {
	e.need(tb, "redis")
	rs, err := redisstore.NewRedisStore(context.Background(), e.redisClient(tb))
	if err != nil {
		tb.Fatal(err)
	}
	rs.KeyPrefix("bench:gorilla:")
	rs.Options(*gorillaOptions())
	return gorillaLib{rs}
}

// openGorillaMemcached uses the store's default StoreMethodSecureCookie
// (gob + securecookie of the values in Memcached, and of the ID in the
// cookie) with the same keys as gorilla-cookie.
func openGorillaMemcached(tb testing.TB, e *env) sessionLib {
	e.need(tb, "memcached")
	ms := gsm.NewMemcacheStore(e.memcacheClient(tb), "bench_gorilla_", key("gorilla hash"), key("gorilla block"))
	ms.Options = gorillaOptions()
	return gorillaLib{ms}
}

func (gorillaLib) wrap(next http.Handler) http.Handler { return next }

func (l gorillaLib) get(r *http.Request) (*sessions.Session, error) {
	return l.store.Get(r, cookieName)
}

func (l gorillaLib) setAll(w http.ResponseWriter, r *http.Request, kvs []kv) error {
	s, err := l.get(r)
	if err != nil {
		return err
	}
	for _, p := range kvs {
		s.Values[p.key] = p.val
	}
	return s.Save(r, w)
}

func (l gorillaLib) setString(w http.ResponseWriter, r *http.Request, key, val string) error {
	s, err := l.get(r)
	if err != nil {
		return err
	}
	s.Values[key] = val
	return s.Save(r, w)
}

func (l gorillaLib) getString(_ http.ResponseWriter, r *http.Request, key string) (string, error) {
	s, err := l.get(r)
	if err != nil {
		return "", err
	}
	v, ok := s.Values[key].(string)
	if !ok {
		return "", fmt.Errorf("gorilla: no string under %q", key)
	}
	return v, nil
}

func (l gorillaLib) incr(w http.ResponseWriter, r *http.Request, key string) (int, error) {
	s, err := l.get(r)
	if err != nil {
		return 0, err
	}
	n, ok := s.Values[key].(int)
	if !ok {
		return 0, fmt.Errorf("gorilla: no int under %q", key)
	}
	s.Values[key] = n + 1
	return n + 1, s.Save(r, w)
}

// ---- scs: LoadAndSave middleware ----

type scsLib struct{ sm *scs.SessionManager }

func newSCS(tb testing.TB, store scs.Store) *scs.SessionManager {
	sm := scs.New()
	// scs.New starts a memstore with a cleanup goroutine; keep or replace it.
	def := sm.Store.(*memstore.MemStore)
	if store != nil {
		def.StopCleanup()
		sm.Store = store
	} else {
		tb.Cleanup(def.StopCleanup)
	}
	sm.Lifetime = sessionMaxAge
	sm.Cookie.Name = cookieName
	sm.Cookie.Secure = true
	return sm
}

func openSCSMemory(tb testing.TB, _ *env) sessionLib { return scsLib{newSCS(tb, nil)} }

func openSCSRedis(tb testing.TB, e *env) sessionLib {
	e.need(tb, "redis")
	return scsLib{newSCS(tb, goredisstore.NewWithPrefix(e.redisClient(tb), "bench:scs:"))}
}

func (l scsLib) wrap(next http.Handler) http.Handler { return l.sm.LoadAndSave(next) }

func (l scsLib) setAll(_ http.ResponseWriter, r *http.Request, kvs []kv) error {
	for _, p := range kvs {
		l.sm.Put(r.Context(), p.key, p.val)
	}
	return nil
}

func (l scsLib) setString(_ http.ResponseWriter, r *http.Request, key, val string) error {
	l.sm.Put(r.Context(), key, val)
	return nil
}

func (l scsLib) getString(_ http.ResponseWriter, r *http.Request, key string) (string, error) {
	v, ok := l.sm.Get(r.Context(), key).(string)
	if !ok {
		return "", errors.New("scs: no string under " + key)
	}
	return v, nil
}

func (l scsLib) incr(_ http.ResponseWriter, r *http.Request, key string) (int, error) {
	n, ok := l.sm.Get(r.Context(), key).(int)
	if !ok {
		return 0, errors.New("scs: no int under " + key)
	}
	l.sm.Put(r.Context(), key, n+1)
	return n + 1, nil
}

// ---- clients ----

// redisClient returns a client for the configured Redis, closed at cleanup.
// ContextTimeoutEnabled is what httpsession's docs ask for; every library
// gets the same client options.
func (e *env) redisClient(tb testing.TB) *redis.Client {
	e.need(tb, "redis")
	c := redis.NewClient(&redis.Options{Addr: e.redisAddr, ContextTimeoutEnabled: true})
	if e.redisHook != nil {
		c.AddHook(e.redisHook)
	}
	if err := c.Ping(context.Background()).Err(); err != nil {
		tb.Fatalf("redis %s: %v", e.redisAddr, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// memcacheClient returns a client for the configured Memcached servers.
// gomemcache keeps 2 idle connections per server by default, too few for
// RunParallel; every library gets the same client settings.
func (e *env) memcacheClient(tb testing.TB) *memcache.Client {
	e.need(tb, "memcached")
	c := memcache.New(e.memcachedAddrs...)
	c.MaxIdleConns = 16
	if err := c.Ping(); err != nil {
		tb.Fatalf("memcached %v: %v", e.memcachedAddrs, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}
