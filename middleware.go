package httpsession

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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
// an error wrapping ErrInvalidConfig, and so is a store that cannot serve a
// request, such as a Redis or Memcached store built on a nil client.
func Middleware(store Store, opts ...Option) (func(http.Handler) http.Handler, error) {
	m := &manager{config: defaultConfig(), store: versioned(store)}
	for _, o := range opts {
		o(&m.config)
	}
	if store == nil {
		return nil, fmt.Errorf("%w: nil store", ErrInvalidConfig)
	}
	warnings, err := checkStore(store)
	if err != nil {
		return nil, err
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	for _, w := range warnings {
		m.log().Warn(w)
	}
	if m.errorHandler == nil {
		m.errorHandler = defaultErrorHandler
	}
	m.serverSide = wrapsServerStore(store)
	m.seal = newSealBinding(m.cookie.Name, m.cookie.Path)
	m.owners, _ = store.(OwnerStore)
	if r := m.revocation; r != nil {
		if err := r.valid(m.serverSide); err != nil {
			return nil, err
		}
		r.now, m.owners = m.now, r.lists
	}
	switch store.(type) {
	case *ServerStore, *CookieStore:
		m.ownStore = true // a wrapper's tokens are checked: it may make its own
	}
	return m.wrap, nil
}

type manager struct {
	config
	store      VersionedStore // a plain Store's writes are last-writer-wins
	serverSide bool           // the cookie carries a session ID, not the data
	owners     OwnerStore     // the store, when it keeps owners' sessions; else nil
	ownStore   bool           // one of this package's stores, whose tokens need no checking
	seal       *sealBinding   // what cookie stores bind their seals to: the cookie's name and path
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

// log is the logger: WithLogger's, or slog.Default() as it is when the
// record is logged, so a main that calls slog.SetDefault after building the
// middleware still gets its records.
func (m *manager) log() *slog.Logger {
	if m.logger != nil {
		return m.logger
	}
	return slog.Default()
}

// reportLate logs a session change that can no longer reach the client.
func (m *manager) reportLate(st *requestState, err error) {
	m.log().Error("httpsession: session change lost", "err", err, "path", st.r.URL.Path)
}

// handleError logs err and lets the error handler answer in place of the
// handler's output.
func (m *manager) handleError(w http.ResponseWriter, r *http.Request, err error) {
	m.log().Error("httpsession: session error", "err", err, "path", r.URL.Path)
	m.errorHandler(w, r, err)
}

// defaultErrorHandler answers 503 when the store is unavailable, 409 for a
// conflict that WithConflictPolicy(ConflictFail) refused, and 500
// otherwise, with no internals in the body.
func defaultErrorHandler(w http.ResponseWriter, _ *http.Request, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrUnavailable):
		code = http.StatusServiceUnavailable
	case errors.Is(err, ErrConflict):
		code = http.StatusConflict
	}
	http.Error(w, http.StatusText(code), code)
}
