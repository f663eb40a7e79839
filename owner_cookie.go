// Revocable cookie sessions: a cookie store's owned sessions listed in a
// server store, so that they can be listed and revoked like server-side
// ones, while anonymous cookie sessions keep costing no store call.

package httpsession

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// WithCookieRevocation makes a cookie store's owned sessions (SetOwner)
// revocable: each one is listed among its owner's sessions in lists, a
// server store (memory, Redis or Memcached; only its owners' lists are
// used, no session data), and its sealed cookie carries the reference to
// its entry. A cookie whose entry is gone opens an empty session, so
// RevokeSession, RevokeOwner and ListSessions work as on a server store.
//
// Loading an owned cookie session checks its owner's list, which this
// process keeps for up to maxStale (0: every load reads the store). So a
// revocation made elsewhere takes effect within maxStale, and one made by
// this middleware at once; each owner's list costs at most one store read
// per maxStale, whatever the traffic, and concurrent loads share it.
// Anonymous sessions never touch lists. When lists cannot answer, loading
// an owned session fails (ErrUnavailable, 503 by default), as a server
// store would.
//
// Sessions bound before the option was set carry no reference and open
// empty: they cannot be revoked, so they are not trusted.
func WithCookieRevocation(lists *ServerStore, maxStale time.Duration) Option {
	return func(c *config) { c.revocation = &cookieLists{lists: lists, maxStale: maxStale} }
}

// maxCachedOwners bounds the lists a middleware keeps for
// WithCookieRevocation.
const maxCachedOwners = 10_000

// cookieLists checks owned cookie sessions against their owners' lists.
type cookieLists struct {
	lists    *ServerStore
	maxStale time.Duration
	now      func() time.Time

	mu    sync.Mutex
	cache map[string]*listFetch // by owner tag
}

// listFetch is one read of an owner's list, shared by the loads that need
// it while it runs and, for maxStale, after.
type listFetch struct {
	done chan struct{} // closed when list and err are set
	at   time.Time
	list []byte
	err  error
}

// valid reports a WithCookieRevocation that cannot work.
func (c *cookieLists) valid(serverSide bool) error {
	switch {
	case c.lists == nil:
		return fmt.Errorf("%w: WithCookieRevocation with a nil store", ErrInvalidConfig)
	case serverSide:
		return fmt.Errorf("%w: WithCookieRevocation is for cookie stores; server stores revoke by themselves", ErrInvalidConfig)
	case c.lists.aiohttp:
		return fmt.Errorf("%w: WithCookieRevocation needs a store without WithAiohttpKeys", ErrInvalidConfig)
	case c.maxStale < 0:
		return fmt.Errorf("%w: WithCookieRevocation with a negative staleness", ErrInvalidConfig)
	}
	return c.lists.valid()
}

// live reports whether the owned session ref (its sealed reference) is
// still listed.
func (c *cookieLists) live(ctx context.Context, ref string) (bool, error) {
	tag, id, ok := splitOwned(ref)
	if !ok || !c.lists.validID(ref) {
		return false, nil
	}
	f := c.fetch(ctx, tag)
	select {
	case <-f.done:
	case <-ctx.Done():
		return false, fmt.Errorf("httpsession: owner's list: %w: %w", ErrUnavailable, ctx.Err())
	}
	if f.err != nil {
		return false, f.err
	}
	return listed(f.list, handleOf(id)), nil
}

// fetch returns the read of tag's list to wait for: a fresh enough one,
// one in flight, or one started now.
func (c *cookieLists) fetch(ctx context.Context, tag string) *listFetch {
	now := c.now()
	if c.maxStale == 0 { // every load reads for itself
		f := &listFetch{done: make(chan struct{})}
		c.read(ctx, tag, f, now)
		return f
	}
	c.mu.Lock()
	if f := c.cache[tag]; f != nil {
		select {
		case <-f.done:
			if f.err == nil && now.Sub(f.at) < c.maxStale {
				c.mu.Unlock()
				return f
			}
		default:
			c.mu.Unlock()
			return f // in flight: share it
		}
	}
	f := &listFetch{done: make(chan struct{})}
	if c.cache == nil {
		c.cache = make(map[string]*listFetch)
	}
	c.trim(now)
	c.cache[tag] = f
	c.mu.Unlock()

	c.read(ctx, tag, f, now)
	if f.err != nil {
		c.forget(tag, f)
	}
	return f
}

// read reads tag's list into f and closes f.done.
func (c *cookieLists) read(ctx context.Context, tag string, f *listFetch, now time.Time) {
	ctx, cancel := c.lists.ctx(ctx)
	defer cancel()
	list, err := c.lists.backend.Get(ctx, c.lists.listKey(tag))
	if errors.Is(err, ErrNotFound) {
		list, err = nil, nil
	}
	f.list, f.err, f.at = list, c.lists.wrap("owner's list", err), now
	close(f.done)
}

// trim makes room in the cache: reads older than maxStale go first, then
// any finished ones. The caller holds mu.
func (c *cookieLists) trim(now time.Time) {
	if len(c.cache) < maxCachedOwners {
		return
	}
	for _, stale := range []bool{true, false} {
		for tag, f := range c.cache {
			select {
			case <-f.done:
				if !stale || now.Sub(f.at) >= c.maxStale {
					delete(c.cache, tag)
				}
			default:
			}
			if len(c.cache) < maxCachedOwners/2 {
				return
			}
		}
	}
}

// forget drops tag's cached read (f, or any when f is nil), so the next
// load reads the list again: after this middleware changed it.
func (c *cookieLists) forget(tag string, f *listFetch) {
	c.mu.Lock()
	if cur := c.cache[tag]; cur != nil && (f == nil || cur == f) {
		delete(c.cache, tag)
	}
	c.mu.Unlock()
}

// forgetOwner is forget for an owner's name.
func (c *cookieLists) forgetOwner(owner string) { c.forget(ownerTag(owner), nil) }

// commit updates an owned cookie session's entry as the plan says, before
// the cookie is sealed: a binding (SetOwner, or NewIdentity of an owned
// session) lists its new reference in place of the old one, a logout
// removes the entry, and a due listing rewrites it. ErrNotFound means the
// session was revoked while the request ran: it loses, as to a logout.
func (c *cookieLists) commit(ctx context.Context, s *Session, p *plan) error {
	s.mu.Lock()
	old, next, listing := s.ref, s.life.newToken, p.commit.Listing
	ending := p.commit.Data == nil || s.life.fate == fateEnd || s.life.fate == fateRestart
	s.mu.Unlock()
	ctx, cancel := c.lists.ctx(ctx)
	defer cancel()
	var err error
	switch {
	case next != "" && p.commit.Data != nil:
		err = c.lists.list(ctx, next, old, listing, p.commit.TTL)
	case old != "" && ending:
		err = c.lists.unlist(ctx, c.lists.key(old))
	case old != "" && listing != nil:
		err = c.lists.relist(ctx, old, listing)
	default:
		return nil
	}
	for _, ref := range []string{old, next} {
		if tag, _, ok := splitOwned(ref); ok {
			c.forget(tag, nil)
		}
	}
	return err
}
