package httpsession

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Middleware returns net/http middleware that gives every request a lazily
// loaded Session kept in store. It fits http.ServeMux wrapping, chi's Use
// and gorilla/mux's Use:
//
//	mw, err := httpsession.Middleware(store)
//	if err != nil { ... }
//	http.ListenAndServe(addr, mw(mux))
//
// The request path: the middleware only wraps the ResponseWriter; the first
// Get(r) reads the cookie and the store; the handler reads and changes the
// session; just before the response's first byte (first WriteHeader, Write,
// Flush, ReadFrom or Hijack, or the handler's return) the session is saved
// if it changed and Set-Cookie is added. A handler that never calls Get
// costs no cookie parsing, crypto or store call and gets no session headers.
//
// Options that browsers would silently reject or that weaken security are
// an error wrapping ErrInvalidConfig.
func Middleware(store Store, opts ...Option) (func(http.Handler) http.Handler, error) {
	m := &manager{config: defaultConfig(), store: store}
	for _, o := range opts {
		o(&m.config)
	}
	if store == nil {
		return nil, fmt.Errorf("%w: nil store", ErrInvalidConfig)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	if m.logger == nil {
		m.logger = slog.Default()
	}
	if m.errorHandler == nil {
		m.errorHandler = defaultErrorHandler
	}
	m.serverSide = wrapsServerStore(store)
	switch store.(type) {
	case *ServerStore, *CookieStore:
		m.ownStore = true // a wrapper's tokens are checked: it may make its own
	}
	return m.wrap, nil
}

type manager struct {
	config
	store      Store
	serverSide bool // the cookie carries a session ID, not the data
	ownStore   bool // one of this package's stores, whose tokens need no checking
	warnOnce   sync.Once
}

func (m *manager) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// One allocation carries the request's session state, its context
		// and the wrapped writer; r.WithContext is the other.
		st := &requestState{Context: r.Context(), m: m}
		st.w.ResponseWriter, st.w.st = w, st
		st.r = r.WithContext(st)
		next.ServeHTTP(&st.w, st.r)
		// Reached only if the handler returned: after a panic nothing is saved.
		st.w.commit()
	})
}

// requestState is the per-request session registry. It is also the
// request's context, so that Get finds it without another allocation.
type requestState struct {
	context.Context
	m *manager
	r *http.Request
	w responseWriter

	loadMu        sync.Mutex
	loaded        bool // Get or NewSession was called
	done          bool // commit has started; later loads are read-only
	*sessionState      // allocated by the first Get, so untouched requests stay small
}

// sessionState is the part of a request's state that only exists once the
// handler asked for its session.
type sessionState struct {
	loadErr   error
	token     string // cookie value of the loaded (or discarded) session
	hadCookie bool
	refresh   bool // idle-timeout activity is due to be recorded
	cookieSet bool // commit added the session's Set-Cookie
	found     bool // a cookie opened to a live session
	sess      Session
	rec       Record // decoded at load, encoded at commit; kept here to save an allocation
}

type stateKey struct{}

// Value implements context.Context.
func (st *requestState) Value(key any) any {
	if key == (stateKey{}) {
		return st
	}
	return st.Context.Value(key)
}

// Get returns the request's session, loading it on the first call; later
// calls return the same *Session. A bad, expired or foreign cookie yields a
// fresh empty session, not an error. A store failure is returned (wrapping
// ErrUnavailable for an unreachable store) and the middleware answers with
// its error handler instead of the handler's output. Without the middleware
// Get returns ErrNoMiddleware and a detached Session that saves nothing.
func Get(r *http.Request) (*Session, error) {
	st, ok := r.Context().Value(stateKey{}).(*requestState)
	if !ok {
		return detached(), ErrNoMiddleware
	}
	return st.session(false)
}

// NewSession discards the request's session, if any, and returns a fresh
// empty one without reading the store: the old server-side record is
// deleted and, unless the new session gets data, the cookie expired. It is
// aiohttp_session's new_session; Session.NewIdentity keeps the data instead.
func NewSession(r *http.Request) (*Session, error) {
	st, ok := r.Context().Value(stateKey{}).(*requestState)
	if !ok {
		return detached(), ErrNoMiddleware
	}
	return st.session(true)
}

func detached() *Session { return &Session{codec: JSONCodec{}, isNew: true} }

func (st *requestState) session(fresh bool) (*Session, error) {
	st.loadMu.Lock()
	defer st.loadMu.Unlock()
	if !st.loaded {
		st.loaded = true
		st.sessionState = &sessionState{sess: Session{req: st, codec: st.m.codec}}
		if fresh {
			st.discard()
		} else {
			st.loadErr = st.load()
		}
		st.sess.committed = st.done // loaded after the headers went out: read-only
		return &st.sess, st.loadErr
	}
	s := &st.sess
	if fresh && st.loadErr == nil {
		s.mu.Lock()
		if s.mutable("NewSession") == nil {
			s.invalidate()
			s.restartIfInvalidated()
		}
		s.mu.Unlock()
	}
	return s, st.loadErr
}

// discard starts a new session and remembers the old cookie so commit can
// delete its record.
func (st *requestState) discard() {
	cookieValues(st.r.Header, st.m.cookie.Name, func(v string) bool {
		st.hadCookie, st.token = true, v
		return true
	})
	st.sess.isNew, st.sess.invalidated, st.sess.changed = true, true, true
}

// load fills st.sess from the first of the request's cookies that opens to
// a live record. Cookies that fail to open are ignored: they are "no
// session", not errors.
func (st *requestState) load() (err error) {
	m, s := st.m, &st.sess
	now := m.now()
	cookieValues(st.r.Header, m.cookie.Name, func(token string) bool {
		st.hadCookie = true
		data, lerr := m.store.Load(st, token)
		if errors.Is(lerr, ErrNotFound) {
			return false
		}
		if lerr != nil {
			err = fmt.Errorf("httpsession: load session: %w", lerr)
			return true
		}
		rec := &st.rec
		*rec = Record{}
		if derr := m.codec.DecodeRecord(data, rec); derr != nil {
			m.logger.Debug("httpsession: undecodable session record ignored", "err", derr)
			return false
		}
		if !now.Before(m.deadline(rec.Created, rec.Accessed, rec.Lifetime)) {
			return false
		}
		s.raw, s.flashes, s.created, s.accessed = rec.Values, rec.Flashes, rec.Created, rec.Accessed
		s.lifetime, s.persist = rec.Lifetime, rec.Persistent
		st.token = token
		if m.serverSide {
			s.id = token
		}
		st.refresh = m.idleTimeout > 0 && now.Sub(s.lastActive()) >= m.idleTimeout/10
		st.found = true
		return true
	})
	s.isNew = !st.found
	return err
}

// deadline is when a session created and last active at the given times
// stops being accepted.
func (m *manager) deadline(created, accessed time.Time, lifetime time.Duration) time.Time {
	if lifetime <= 0 {
		lifetime = m.lifetime
	}
	d := created.Add(lifetime)
	if m.idleTimeout > 0 {
		if accessed.IsZero() {
			accessed = created
		}
		if idle := accessed.Add(m.idleTimeout); idle.Before(d) {
			d = idle
		}
	}
	return d
}

// plan is what commit must do, decided under the session's lock so that the
// store I/O can run without it.
type plan struct {
	save       bool
	now        time.Time
	token      string // session to update; "" creates a new one
	data       []byte
	ttl        time.Duration
	persistent bool
	deleteOld  string // record to delete once the new one is saved
	confirm    string // record that must still exist before it is replaced (NewIdentity)
	expire     bool   // send a deletion cookie
}

// commit saves the session and adds its headers. It runs once, before the
// response's first byte. An error means nothing of the handler's output may
// be sent: the error handler answers instead.
func (st *requestState) commit() error {
	st.loadMu.Lock()
	st.done = true
	loaded := st.loaded
	st.loadMu.Unlock()
	if !loaded {
		return nil
	}
	h := st.w.Header()
	addVaryCookie(h)
	if st.loadErr != nil {
		return st.loadErr
	}
	p, err := st.plan()
	if err != nil {
		return err
	}
	cookie, err := st.apply(p)
	if err != nil || cookie == "" {
		return err
	}
	h.Add("Set-Cookie", cookie)
	st.cookieSet = true
	makePrivate(h)
	st.warnInsecure()
	return nil
}

func (st *requestState) plan() (plan, error) {
	m, s := st.m, &st.sess
	s.mu.Lock()
	defer s.mu.Unlock()
	s.committed = true
	var p plan
	empty := len(s.raw) == 0 && len(s.flashes) == 0
	switch {
	case s.invalidated || s.renew:
		p.deleteOld = st.token
		p.expire = empty && st.hadCookie
		p.save = !empty
		if !s.invalidated && st.found && m.serverSide {
			// The new ID must not outlive a logout that happened meanwhile.
			p.confirm = st.token
		}
	case !s.changed && !st.refresh:
		// A cookie that named no live session (expired, revoked, sealed
		// with a retired key) is removed, so the browser stops sending it.
		p.expire = st.hadCookie && !st.found && s.isNew
		return p, nil
	case empty && s.isNew:
		p.expire = st.hadCookie && !st.found // an anonymous visitor never creates a record
		return p, nil
	case empty:
		p.deleteOld, p.expire = st.token, true
	default:
		p.save = true
		if !s.isNew {
			p.token = st.token
		}
	}
	if !p.save {
		return p, nil
	}
	p.now = m.now()
	now := p.now.Truncate(time.Second)
	if s.created.IsZero() || s.isNew {
		s.created = now
	}
	s.accessed = now
	if s.inPlace {
		err := s.cache.each(func(k string, v any) error {
			raw, err := s.codec.EncodeValue(v)
			if err != nil {
				return fmt.Errorf("httpsession: save session: %w: %q: %w", ErrEncode, k, err)
			}
			s.raw[k] = raw
			return nil
		})
		if err != nil {
			return p, err
		}
	}
	st.rec = Record{
		Created: s.created, Accessed: now, Lifetime: s.lifetime, Persistent: s.persist,
		Values: s.raw, Flashes: s.flashes,
	}
	data, err := s.codec.EncodeRecord(&st.rec)
	if err != nil {
		return p, fmt.Errorf("httpsession: save session: %w: %w", ErrEncode, err)
	}
	p.data = data
	p.ttl = m.deadline(s.created, now, s.lifetime).Sub(now)
	if p.ttl <= 0 {
		// Already past its deadline (a shortened lifetime, a slow request):
		// end it rather than store a record with no expiry.
		old := p.deleteOld
		if old == "" {
			old = p.token
		}
		return plan{deleteOld: old, expire: st.hadCookie}, nil
	}
	p.persistent = m.persistent
	if s.persist != nil {
		p.persistent = *s.persist
	}
	return p, nil
}

// apply runs the plan's store calls and returns the Set-Cookie value to
// send, if any. It is returned only when every store call succeeded, so an
// error response never carries it.
func (st *requestState) apply(p plan) (string, error) {
	m := st.m
	var cookie, token string
	if p.confirm != "" {
		if _, err := m.store.Save(st, p.confirm, p.data, p.ttl); errors.Is(err, ErrNotFound) {
			return st.lostToLogout(), nil
		} else if err != nil {
			return "", fmt.Errorf("httpsession: save session: %w", err)
		}
	}
	if p.save {
		var err error
		token, err = m.store.Save(st, p.token, p.data, p.ttl)
		if errors.Is(err, ErrNotFound) && p.token != "" {
			return st.lostToLogout(), nil
		}
		if err != nil {
			return "", fmt.Errorf("httpsession: save session: %w", err)
		}
		if err := st.checkToken(token, p.token == ""); err != nil {
			return "", err
		}
		maxAge, expires := 0, time.Time{}
		if p.persistent {
			maxAge, expires = cookieMaxAge(p.ttl), p.now.Add(p.ttl)
		}
		cookie = formatCookie(&m.cookie, token, maxAge, expires)
		if m.serverSide {
			st.sess.mu.Lock()
			st.sess.id = token
			st.sess.mu.Unlock()
		}
	}
	if p.deleteOld != "" && p.deleteOld != token {
		if err := m.store.Delete(st, p.deleteOld); err != nil {
			return "", fmt.Errorf("httpsession: delete old session: %w", err)
		}
	}
	if p.expire && cookie == "" {
		cookie = m.deletionCookie()
	}
	return cookie, nil
}

// maxCookieAge is the longest Max-Age browsers honour (RFC 6265bis caps it
// at 400 days); a longer session's cookie is refreshed when it is saved.
const maxCookieAge = 400 * 24 * time.Hour

// cookieMaxAge rounds ttl up to whole seconds without overflowing.
func cookieMaxAge(ttl time.Duration) int {
	ttl = min(ttl, maxCookieAge)
	n := int(ttl / time.Second)
	if ttl%time.Second != 0 {
		n++
	}
	return n
}

// lostToLogout handles a session deleted while this request was in flight
// (a logout elsewhere): the logout wins, this request's changes are dropped
// and its cookie expired.
func (st *requestState) lostToLogout() string {
	st.m.logger.Warn("httpsession: session was deleted while the request was in flight; changes dropped",
		"path", st.r.URL.Path)
	return st.m.deletionCookie()
}

// checkToken refuses a token that is too large for browsers or that a
// header cannot carry. A record just created for it is removed again.
func (st *requestState) checkToken(token string, created bool) error {
	var err error
	if !st.m.ownStore {
		err = checkCookieValue(token)
	}
	if n := len(st.m.cookie.Name) + 1 + len(token); n > MaxCookieSize {
		err = fmt.Errorf("%w: %d bytes, the limit is %d", ErrCookieTooLarge, n, MaxCookieSize)
	}
	if err != nil && created && st.m.serverSide {
		_ = st.m.store.Delete(st, token)
	}
	return err
}

// deletionCookie expires the cookie; it carries the same Path and Domain (and
// attributes) so that the browser matches and removes it.
func (m *manager) deletionCookie() string {
	return formatCookie(&m.cookie, "", -1, time.Unix(0, 0))
}

// addVaryCookie marks the response as depending on the Cookie header, so a
// shared cache never serves one user's session page to another.
func addVaryCookie(h http.Header) {
	for _, v := range h.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, "Cookie") {
				return
			}
		}
	}
	h.Add("Vary", "Cookie")
}

// makePrivate keeps shared caches from storing a response that sets or
// deletes the session cookie (Flask CVE-2023-30861): "public" and
// "s-maxage" go, "private" is added unless the response is "no-store".
func makePrivate(h http.Header) {
	cc := h.Values("Cache-Control")
	if len(cc) == 0 {
		h.Set("Cache-Control", "no-store")
		return
	}
	var keep []string
	private := false
	for _, v := range cc {
		for _, d := range strings.Split(v, ",") {
			d = strings.TrimSpace(d)
			name := strings.ToLower(d)
			if i := strings.IndexByte(name, '='); i >= 0 {
				name = name[:i]
			}
			switch name {
			case "":
				continue
			case "public", "s-maxage":
				continue
			case "private", "no-store":
				private = true
			}
			keep = append(keep, d)
		}
	}
	if !private {
		keep = append([]string{"private"}, keep...)
	}
	h.Set("Cache-Control", strings.Join(keep, ", "))
}

// warnInsecure logs once when a Secure cookie goes out over plain HTTP to a
// host other than loopback, where browsers will refuse to store it.
func (st *requestState) warnInsecure() {
	r := st.r
	if !st.m.cookie.Secure || r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return
	}
	st.m.warnOnce.Do(func() {
		st.m.logger.Warn("httpsession: Secure session cookie sent over plain HTTP; browsers will not store it. "+
			"Serve HTTPS, or use WithSecure(false) for a plain-HTTP development host", "host", r.Host)
	})
}

// reportLate logs a session change that can no longer reach the client.
func (m *manager) reportLate(st *requestState, err error) {
	m.logger.Error("httpsession: session change lost", "err", err, "path", st.r.URL.Path)
}

// handleError logs err and lets the error handler answer in place of the
// handler's output.
func (m *manager) handleError(w http.ResponseWriter, r *http.Request, err error) {
	m.logger.Error("httpsession: session error", "err", err, "path", r.URL.Path)
	m.errorHandler(w, r, err)
}

// defaultErrorHandler answers 503 when the store is unavailable and 500
// otherwise, with no internals in the body.
func defaultErrorHandler(w http.ResponseWriter, _ *http.Request, err error) {
	code := http.StatusInternalServerError
	if errors.Is(err, ErrUnavailable) {
		code = http.StatusServiceUnavailable
	}
	http.Error(w, http.StatusText(code), code)
}
