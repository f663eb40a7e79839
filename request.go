package httpsession

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
)

// requestState is the per-request session registry. It is also the
// request's context, so that Get finds it without another allocation.
type requestState struct {
	context.Context
	m *manager
	r *http.Request
	w responseWriter

	loadMu    sync.Mutex
	committed atomic.Bool // commit has begun: the session is read-only from then on
	*loaded               // allocated by the first Get, so untouched requests stay small
}

// loaded is the part of a request's state that only exists once the
// handler asked for its session.
type loaded struct {
	loadErr   error
	created   string // a token commit created (new session or new identity), whose cookie is not out yet
	sess      Session
	renewed   *Session     // the session NewSession started, which replaced sess (nil: none)
	cookieSet bool         // commit added the session's Set-Cookie
	headers   [3][1]string // storage for Vary, Set-Cookie and Cache-Control (see addHeader)
}

// current is the request's session: the one NewSession started last, or
// the loaded one.
func (l *loaded) current() *Session {
	if l.renewed != nil {
		return l.renewed
	}
	return &l.sess
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
// The first Get after the response's headers went out (the handler wrote
// or flushed first) returns the session, read-only, with an error wrapping
// ErrCommitted: those headers carry no Vary: Cookie, so a page built from
// the session could be served to others by a shared cache. Call Get
// before writing.
func Get(r *http.Request) (*Session, error) { return FromContext(r.Context()) }

// FromContext is Get for code that has only the request's context, such as
// a service layer called with r.Context(): the context of a request that
// passed through the middleware, or one derived from it. It returns the
// same *Session and error as Get(r); for any other context, ErrNoMiddleware
// and a detached Session that saves nothing.
func FromContext(ctx context.Context) (*Session, error) { return session(ctx, false) }

// NewSession discards the request's session, if any, and returns a new,
// empty *Session, as aiohttp_session's new_session does: the old ID opens
// nothing afterwards (its record is deleted, or forwards to the new session
// if that gets data) and, unless the new session gets data, the cookie is
// expired. Get and FromContext return the new *Session from then on.
//
// A *Session obtained before keeps its data readable, so login code can
// copy values from the old session into the new one, as ported Python code
// does; changing it is an error wrapping ErrReplaced, because it no longer
// reaches the client. Session.NewIdentity keeps the data instead. The old
// session is loaded first (one store read), so that a logout that ends it
// while this request runs also ends its replacement.
func NewSession(r *http.Request) (*Session, error) { return session(r.Context(), true) }

// session finds the request's state in ctx and returns its session, fresh
// or as loaded.
func session(ctx context.Context, fresh bool) (*Session, error) {
	st, ok := ctx.Value(stateKey{}).(*requestState)
	if !ok {
		return detached(), ErrNoMiddleware
	}
	return st.session(fresh)
}

func detached() *Session { return &Session{codec: JSONCodec{}} }

func (st *requestState) session(fresh bool) (*Session, error) {
	st.loadMu.Lock()
	defer st.loadMu.Unlock()
	if st.loaded == nil {
		st.loaded = &loaded{sess: Session{req: st, codec: st.m.codec}}
		st.loadErr = st.load()
		if st.loadErr == nil && st.committed.Load() {
			// The headers went out without Vary: Cookie (the handler had
			// not asked for its session), so a page built from the session
			// now could be cached for everyone: say so instead of
			// letting it through silently.
			st.loadErr = fmt.Errorf("%w: Get after the response headers, which carry no Vary: Cookie", ErrCommitted)
			st.m.reportLate(st, st.loadErr)
		}
	}
	s := st.current()
	if !fresh || st.loadErr != nil {
		return s, st.loadErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mutable("NewSession") != nil {
		return s, nil
	}
	// The new session inherits the old one's origin (its token and
	// version), so that its commit ends the old record.
	next := &Session{req: st, codec: s.codec, life: s.life, ref: s.ref}
	next.invalidate()
	next.restartIfEnded()
	s.replaced = true
	st.renewed = next
	return next, nil
}

// maxSessionCookies bounds the cookies of the session's name one request
// may make the middleware open (each one a store lookup or a decryption). A
// browser sends more than one only when cookies of that name exist for
// several paths or for a parent domain; a request with thousands (planted,
// or forged by a client) must not cost thousands of lookups.
const maxSessionCookies = 3

// load fills st.sess from the first of the request's cookies that opens to
// a live record, trying at most maxSessionCookies of them in header order
// (browsers put the cookie with the longest path first). Cookies that fail
// to open are ignored: they are "no session", not errors.
func (st *requestState) load() (err error) {
	m, s := st.m, &st.sess
	now := m.now()
	tried := 0
	cookieValues(st.r.Header, m.cookie.Name, func(token string) bool {
		s.life.hadCookie = true
		if tried++; tried > maxSessionCookies {
			return true
		}
		data, version, lerr := m.store.LoadVersion(st, token)
		if errors.Is(lerr, errRejected) {
			// Not sealed by any current key: tampered with, forged, or
			// from a retired key. Visible to the operator, never the token.
			m.log().Warn("httpsession: session cookie rejected: it does not open with any key, or was sealed for another cookie name or path",
				"cookie", m.cookie.Name, "path", st.r.URL.Path)
		}
		if errors.Is(lerr, errMoved) && s.life.token == "" {
			s.life.token = token // an Invalidate through it still ends the renewed session
		}
		if errors.Is(lerr, errForeignID) {
			s.life.foreign = true // another application's, perhaps: never expired
		}
		if errors.Is(lerr, ErrNotFound) {
			return false
		}
		if lerr != nil {
			err = errorf("load session: %w", lerr)
			return true
		}
		var rec Record // on the stack: see decodeRecord
		var vals values
		if derr := decodeSession(m.codec, data, &rec, &vals); derr != nil {
			m.log().Debug("httpsession: undecodable session record ignored", "err", derr)
			return false
		}
		if !now.Before(m.deadline(rec.Created, rec.Accessed, rec.Lifetime)) {
			return false
		}
		if m.revocation != nil && rec.Owner != "" {
			live, rerr := m.revocation.live(st, rec.Ref)
			if rerr != nil {
				err = fmt.Errorf("httpsession: load session: %w", rerr)
				return true
			}
			if !live {
				return false // revoked, or bound before revocation was on
			}
		}
		s.vals, s.flashes, s.created, s.accessed = vals, rec.Flashes, rec.Created, rec.Accessed
		s.lifetime, s.persist, s.owner, s.label = rec.Lifetime, rec.Persistent, rec.Owner, rec.Label
		s.changes.stored = len(rec.Flashes)
		s.life.token, s.life.version, s.life.loaded = token, version, true
		s.ref = rec.Ref
		if m.serverSide {
			s.id, s.ref = token, token
		}
		s.life.refresh = m.idleTimeout > 0 && now.Sub(s.lastActive()) >= m.idleTimeout/10
		return true
	})
	return err
}
