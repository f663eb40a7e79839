package httpsession

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// commit saves the session and adds its headers. It runs before the
// response's first byte, once: first reports whether this call ran it. An
// error means nothing of the handler's output may be sent: the error
// handler answers instead.
func (st *requestState) commit() (first bool, err error) {
	st.loadMu.Lock()
	if st.committed.Load() {
		st.loadMu.Unlock()
		return false, nil
	}
	st.committed.Store(true)
	l := st.loaded
	st.loadMu.Unlock()
	if l == nil {
		return true, nil // the handler never asked for its session
	}
	h := st.w.Header()
	addVaryCookie(h, &l.headers[0])
	if l.loadErr != nil {
		return true, l.loadErr
	}
	var p plan // on the stack: save gives the store a copy of its Commit
	if err := l.current().plan(st.m, &p); err != nil {
		return true, err
	}
	cookie, err := st.save(&p)
	if err != nil || cookie == "" {
		return true, err
	}
	addHeader(h, "Set-Cookie", cookie, &l.headers[1])
	l.cookieSet = true
	makePrivate(h, &l.headers[2])
	st.warnInsecure()
	return true, nil
}

// save runs the plan's store write and returns the Set-Cookie value to
// send, if any. It is returned only when the write succeeded, so an error
// response never carries it.
func (st *requestState) save(p *plan) (string, error) {
	m, s := st.m, st.current()
	if !p.write {
		return st.expiry(p.expire), nil
	}
	if m.revocation != nil {
		err := m.revocation.commit(st, s, p)
		if errors.Is(err, ErrNotFound) {
			m.log().Warn("httpsession: session revoked while the request was in flight; changes dropped",
				"path", st.r.URL.Path)
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("httpsession: save session: %w", err)
		}
	}
	// A pointer handed to an interface's method escapes, so the Commit the
	// store gets is a copy on the heap, made only for a write.
	c := new(Commit)
	*c = p.commit
	token, err := m.store.Commit(st, c)
	switch {
	case p.commit.Touch && errors.Is(err, ErrConflict):
		return "", nil // a concurrent write recorded the activity
	case errors.Is(err, ErrNotFound) && p.commit.Token != "":
		// Ended while this request was in flight (a logout elsewhere), or
		// renewed by a concurrent request: that wins, this request's
		// changes are dropped. No cookie: the browser's cookie is the
		// winner's to set or expire.
		m.log().Warn("httpsession: session ended or renewed while the request was in flight; changes dropped",
			"path", st.r.URL.Path)
		return "", nil
	case err != nil:
		return "", errorf("save session: %w", err)
	}
	s.mu.Lock()
	conflicts := s.changes.conflicts
	if m.serverSide {
		s.id, s.ref = token, token
	} else if s.life.newToken != "" {
		s.ref = s.life.newToken
	}
	// The session as written, after any merge: its lifetime may be the
	// other request's.
	ttl := m.deadline(s.created, s.accessed, s.lifetime).Sub(p.now)
	persistent := m.persistent
	if s.persist != nil {
		persistent = *s.persist
	}
	s.mu.Unlock()
	if len(conflicts) > 0 {
		// One request may overwrite several writers' values of one key.
		keys := slices.Compact(slices.Sorted(slices.Values(conflicts)))
		m.log().Warn("httpsession: a concurrent request's change was overwritten",
			"err", fmt.Errorf("%w: keys %q", ErrConflict, keys), "conflicts", len(conflicts), "path", st.r.URL.Path)
	}
	if token == "" {
		return st.expiry(p.expire), nil
	}
	created := p.commit.Token == "" || p.commit.Rotate
	if err := st.checkToken(token, created); err != nil {
		return "", err
	}
	if created {
		st.created = token
	}
	maxAge, expires := 0, time.Time{}
	if persistent {
		maxAge, expires = cookieMaxAge(ttl), p.now.Add(ttl)
	}
	return formatCookie(&m.cookie, token, maxAge, expires), nil
}

// expiry returns the deletion cookie when one is due.
func (st *requestState) expiry(due bool) string {
	if !due {
		return ""
	}
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
