package httpsession

import (
	"fmt"
	"sort"
	"sync"
	"time"
)

// Session is one user's session data for the current request. Get it with
// Get(r). It behaves like a map from string keys to values the Codec can
// encode (JSON by default) and is safe for concurrent use by the goroutines
// serving one request.
//
// Changes are saved by the middleware just before the response's first
// byte; a change after that point returns or logs ErrCommitted.
type Session struct {
	mu    sync.Mutex
	req   *requestState // nil for a detached session (no middleware)
	codec Codec

	raw      map[string][]byte // every key's encoded value: what is saved
	cache    valueCache        // decoded values, for keys read or set
	flashes  []string
	created  time.Time
	accessed time.Time
	lifetime time.Duration // per-session override; 0 = middleware default
	persist  *bool         // per-session cookie persistence; nil = middleware default
	isNew    bool
	id       string // server-side session ID; "" for cookie stores and new sessions

	changed     bool // values, flashes or settings differ from what was loaded
	inPlace     bool // MarkChanged: re-encode values the handler may have mutated
	invalidated bool // the loaded session must be deleted
	renew       bool // NewIdentity: same data under a new ID / fresh seal
	committed   bool // headers are out; further changes cannot be saved
}

// Get returns the value stored under key, or nil. Values loaded from the
// store come back as the codec decodes them into an interface (for JSON:
// string, float64, bool, []any, map[string]any); use GetAs for typed access.
// A value returned by Get may be mutated in place; call MarkChanged then.
func (s *Session) Get(key string) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.cache.get(key); ok {
		return v
	}
	raw, ok := s.raw[key]
	if !ok {
		return nil
	}
	var v any
	if err := s.codec.DecodeValue(raw, &v); err != nil {
		return nil
	}
	s.cache.put(key, v)
	return v
}

// valueCache holds decoded values. Most handlers touch a key or two, so the
// first lives inline and a map is made only for more.
type valueCache struct {
	key  string
	val  any
	ok   bool
	more map[string]any
}

func (c *valueCache) get(key string) (any, bool) {
	if c.ok && c.key == key {
		return c.val, true
	}
	v, ok := c.more[key]
	return v, ok
}

func (c *valueCache) put(key string, v any) {
	if !c.ok || c.key == key {
		c.key, c.val, c.ok = key, v, true
		delete(c.more, key)
		return
	}
	if c.more == nil {
		c.more = make(map[string]any)
	}
	c.more[key] = v
}

func (c *valueCache) delete(key string) {
	if c.ok && c.key == key {
		c.key, c.val, c.ok = "", nil, false
	}
	delete(c.more, key)
}

// each calls fn for every cached value.
func (c *valueCache) each(fn func(key string, v any) error) error {
	if c.ok {
		if err := fn(c.key, c.val); err != nil {
			return err
		}
	}
	for k, v := range c.more {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// GetAs returns the value under key decoded as T. It works for anything the
// codec round-trips (ints, strings, bools, floats, time.Time, []byte, user
// structs) without registering types. It returns ErrMissingKey when the key
// is absent and an error wrapping ErrDecode when the value does not fit T.
func GetAs[T any](s *Session, key string) (T, error) {
	var out T
	s.mu.Lock()
	defer s.mu.Unlock()
	raw, ok := s.raw[key]
	if !ok {
		return out, fmt.Errorf("%w: %q", ErrMissingKey, key)
	}
	if v, ok := s.cache.get(key); ok {
		if v, ok := v.(T); ok {
			return v, nil
		}
		if s.inPlace {
			// The handler may have mutated v in place; decode its current state.
			var err error
			if raw, err = s.codec.EncodeValue(v); err != nil {
				return out, fmt.Errorf("%w: %q: %w", ErrDecode, key, err)
			}
		}
	}
	if err := s.codec.DecodeValue(raw, &out); err != nil {
		return out, fmt.Errorf("%w: %q as %T: %w", ErrDecode, key, out, err)
	}
	return out, nil
}

// Set stores v under key. The value is encoded now, so a value the codec
// cannot encode is reported here (ErrEncode), not after the response has
// started. Set returns ErrCommitted once the response headers are out.
func (s *Session) Set(key string, v any) error {
	raw, err := s.codec.EncodeValue(v)
	if err != nil {
		return fmt.Errorf("%w: %q: %w", ErrEncode, key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.mutable("Set"); err != nil {
		return err
	}
	s.restartIfInvalidated()
	if s.raw == nil {
		s.raw = make(map[string][]byte)
	}
	s.raw[key] = raw
	s.cache.put(key, v)
	s.changed = true
	return nil
}

// Has reports whether key is set.
func (s *Session) Has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.raw[key]
	return ok
}

// Delete removes key. Deleting the last key of a stored session deletes the
// session itself when the response is committed.
func (s *Session) Delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.raw[key]; !ok || s.mutable("Delete") != nil {
		return
	}
	delete(s.raw, key)
	s.cache.delete(key)
	s.changed = true
}

// Keys returns the session's keys in sorted order.
func (s *Session) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.raw))
	for k := range s.raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Len returns the number of keys.
func (s *Session) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.raw)
}

// Clear removes every key, keeping the session's identity. A stored session
// left with no keys and no flashes is deleted at commit.
func (s *Session) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.raw) == 0 || s.mutable("Clear") != nil {
		return
	}
	s.raw, s.cache = nil, valueCache{}
	s.changed = true
}

// MarkChanged tells the session that a value obtained from Get was mutated
// in place (for example a map or slice), so it must be re-encoded and saved.
// It is aiohttp_session's changed().
func (s *Session) MarkChanged() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mutable("MarkChanged") != nil {
		return
	}
	s.changed, s.inPlace = true, true
}

// Invalidate ends the session: its data is dropped, its server-side record
// is deleted and its cookie expired when the response is committed. Setting
// a value afterwards starts a brand-new session with a new identity.
// Call it at logout.
func (s *Session) Invalidate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mutable("Invalidate") != nil {
		return
	}
	s.invalidate()
}

func (s *Session) invalidate() {
	s.raw, s.cache, s.flashes = nil, valueCache{}, nil
	s.lifetime, s.persist = 0, nil
	s.invalidated = true
	s.changed = true
}

// restartIfInvalidated turns an invalidated session into a fresh one when
// data is added to it again, so the new data never reuses the old identity.
func (s *Session) restartIfInvalidated() {
	if s.invalidated && !s.isNew {
		s.isNew = true
		s.created = time.Time{}
	}
}

// NewIdentity keeps the data but gives the session a new identity: a new
// session ID for server-side stores (the old record is deleted), a fresh
// seal for cookie stores. Call it at login and at every privilege change to
// defeat session fixation.
func (s *Session) NewIdentity() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mutable("NewIdentity") != nil {
		return
	}
	s.renew = true
	s.changed = true
}

// IsNew reports whether the session was created by this request (no valid
// session came with it, or it was invalidated and started again).
func (s *Session) IsNew() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.isNew
}

// ID returns the server-side session ID, the cookie's value. It is empty for
// cookie stores, whose cookie carries the data itself, for a new session
// until it is saved, and behind a Store that wraps a ServerStore without an
// Unwrap method (see Store).
func (s *Session) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// Created returns when the session began; the absolute lifetime counts from
// it. It is the zero time for a new session that has not been saved.
func (s *Session) Created() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.created
}

// Expires returns the deadline after which the session is no longer
// accepted: the earlier of Created plus the lifetime and the last activity
// plus the idle timeout. For a new session it is computed as if it were
// saved now.
func (s *Session) Expires() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.req == nil {
		return time.Time{}
	}
	now := s.req.m.now()
	created, accessed := s.created, s.accessed
	if created.IsZero() {
		created, accessed = now, now
	}
	return s.req.m.deadline(created, accessed, s.lifetime)
}

// SetLifetime overrides the absolute lifetime for this session only, for
// example a long one for "remember me". It is kept in the record's
// metadata, never as a key in the session's map. d <= 0 restores the
// middleware's default.
func (s *Session) SetLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d < 0 {
		d = 0
	}
	if d == s.lifetime || s.mutable("SetLifetime") != nil {
		return
	}
	s.lifetime = d
	s.changed = true
}

// SetPersistent chooses, for this session only, between a persistent cookie
// (Max-Age and Expires) and a browser-session cookie that the browser drops
// when it closes ("remember me" unticked). The choice is kept in the
// record's metadata. The server-side lifetime applies either way.
func (s *Session) SetPersistent(persistent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.persist != nil && *s.persist == persistent || s.mutable("SetPersistent") != nil {
		return
	}
	s.persist = &persistent
	s.changed = true
}

// AddFlash queues a one-time message, shown on a later request by Flashes.
func (s *Session) AddFlash(msg string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.mutable("AddFlash"); err != nil {
		return err
	}
	s.restartIfInvalidated()
	s.flashes = append(s.flashes, msg)
	s.changed = true
	return nil
}

// Flashes returns the queued flash messages and removes them.
func (s *Session) Flashes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.flashes) == 0 {
		return nil
	}
	f := s.flashes
	if s.mutable("Flashes") != nil {
		return f
	}
	s.flashes = nil
	s.changed = true
	return f
}

// lastActive is when the session was last saved.
func (s *Session) lastActive() time.Time {
	if s.accessed.IsZero() {
		return s.created
	}
	return s.accessed
}

// mutable reports ErrCommitted (and logs it) for a change that can no
// longer be saved; for a detached session it reports ErrNoMiddleware.
func (s *Session) mutable(op string) error {
	if s.req == nil {
		return ErrNoMiddleware
	}
	if s.committed {
		err := fmt.Errorf("%w: %s", ErrCommitted, op)
		s.req.m.reportLate(s.req, err)
		return err
	}
	return nil
}
