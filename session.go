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
// byte; a change after that point returns or logs ErrCommitted. The session
// remembers what this request changed, so that on a server-side store the
// changes of concurrent requests of one session are merged (see WithMerge
// and the README's "Concurrent requests").
type Session struct {
	mu    sync.Mutex
	req   *requestState // nil for a detached session (no middleware)
	codec Codec

	// The session as the handler sees it.
	vals     values     // every key's encoded value: what is saved
	cache    valueCache // decoded values, for keys read or set
	flashes  []string
	created  time.Time
	accessed time.Time
	lifetime time.Duration // per-session override; 0 = middleware default
	persist  *bool         // per-session cookie persistence; nil = middleware default
	id       string        // server-side session ID; "" for cookie stores and new sessions
	owner    string        // the user the session is bound to (SetOwner); "" if anonymous
	label    string        // what the owner's list of sessions calls it (SetLabel)
	ref      string        // the owned token naming it in its owner's list: the server token, or sealed in the cookie
	replaced bool          // NewSession started another session: this one is read-only

	life    lifecycle // where the session came from and what commit does with it
	changes changes   // what this request changed since the record was loaded
}

// changes is what a request did to its session, relative to the record it
// loaded: enough to replay it on top of a record another request wrote
// meanwhile (see merge.go).
type changes struct {
	base      []baseValue // each changed key's value as loaded, in first-change order
	stored    int         // how many leading flashes came from the record
	taken     []string    // loaded flashes this request consumed
	flashes   bool        // flashes were added or consumed
	lifetime  bool        // SetLifetime changed the lifetime
	persist   bool        // SetPersistent changed the cookie's persistence
	owner     bool        // SetOwner bound the session
	label     bool        // SetLabel changed the label
	inPlace   bool        // MarkChanged: values read may have been mutated
	anyValues bool        // some value was set or deleted
	conflicts []string    // keys another request changed too, overwritten (ConflictOverwrite)
}

// baseValue is a changed key's encoded value as loaded; ok is false if it
// was absent.
type baseValue struct {
	key string
	raw []byte
	ok  bool
}

// any reports whether the request changed anything.
func (c *changes) any() bool {
	return c.anyValues || c.flashes || c.lifetime || c.persist || c.inPlace || c.owner || c.label
}

// touch records key's loaded value before its first change.
func (s *Session) touch(key string) {
	s.changes.anyValues = true
	for _, b := range s.changes.base {
		if b.key == key {
			return
		}
	}
	raw, ok := s.vals.get(key)
	s.changes.base = append(s.changes.base, baseValue{key, raw, ok})
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
	raw, ok := s.vals.get(key)
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
	var out T // on the stack: only decodePlain writes through it
	s.mu.Lock()
	defer s.mu.Unlock()
	raw, ok := s.vals.get(key)
	if !ok {
		return out, fmt.Errorf("%w: %q", ErrMissingKey, key)
	}
	if v, ok := s.cache.get(key); ok {
		if v, ok := v.(T); ok {
			return v, nil
		}
		if s.changes.inPlace {
			// The handler may have mutated v in place; decode its current state.
			var err error
			if raw, err = s.codec.EncodeValue(v); err != nil {
				return out, errorf("%w: %q: %w", ErrDecode, key, err)
			}
		}
	}
	if _, ok := s.codec.(JSONCodec); ok && decodePlain(raw, &out) {
		return out, nil
	}
	p := new(T) // handed to an interface's method, so it escapes
	if err := s.codec.DecodeValue(raw, p); err != nil {
		return out, errorf("%w: %q as %T: %w", ErrDecode, key, out, err)
	}
	return *p, nil
}

// Set stores v under key. The value is encoded now, so a value the codec
// cannot encode is reported here (ErrEncode), not after the response has
// started. Set returns ErrCommitted once the response headers are out.
func (s *Session) Set(key string, v any) error {
	raw, err := s.codec.EncodeValue(v)
	if err != nil {
		return errorf("%w: %q: %w", ErrEncode, key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.mutable("Set"); err != nil {
		return err
	}
	s.restartIfEnded()
	s.touch(key)
	s.vals.set(key, raw)
	s.cache.put(key, v)
	return nil
}

// Has reports whether key is set.
func (s *Session) Has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.vals.get(key)
	return ok
}

// Delete removes key. Deleting the last key of a stored session deletes the
// session itself when the response is committed.
func (s *Session) Delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.vals.get(key); !ok || s.mutable("Delete") != nil {
		return
	}
	s.touch(key)
	s.vals.delete(key)
	s.cache.delete(key)
}

// Keys returns the session's keys in sorted order.
func (s *Session) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := s.vals.appendAll(nil)
	keys := make([]string, len(all))
	for i := range all {
		keys[i] = all[i].name()
	}
	sort.Strings(keys)
	return keys
}

// Len returns the number of keys.
func (s *Session) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vals.len()
}

// Clear removes every key, keeping the session's identity. A stored session
// left with no keys and no flashes is deleted at commit.
func (s *Session) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vals.len() == 0 || s.mutable("Clear") != nil {
		return
	}
	all := s.vals.appendAll(nil)
	for i := range all {
		s.touch(all[i].name())
	}
	s.vals, s.cache = values{}, valueCache{}
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
	s.changes.inPlace = true
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

// invalidate drops the data and marks the loaded record for deletion.
func (s *Session) invalidate() {
	s.vals, s.cache, s.flashes = values{}, valueCache{}, nil
	s.lifetime, s.persist, s.owner, s.label = 0, nil, "", ""
	s.changes = changes{}
	if t := s.life.newToken; t != "" { // SetOwner's token is not used
		s.life.newToken = ""
		if s.id == t {
			s.id = ""
			if s.life.loaded && s.req.m.serverSide {
				s.id = s.life.token
			}
		}
	}
	s.life.end()
}

// NewIdentity keeps the data but gives the session a new identity: a new
// session ID for server-side stores (the old ID opens nothing afterwards;
// its record becomes a forwarding record, so that a logout through it
// still ends the renewed session), a fresh seal for cookie stores. Call it at login and at every privilege change to
// defeat session fixation.
func (s *Session) NewIdentity() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mutable("NewIdentity") != nil {
		return
	}
	s.life.rotate()
	if s.req.m.revocation != nil && s.owner != "" && s.life.newToken == "" {
		// A revocable cookie session gets a new entry in its owner's
		// list, so its old cookie stops opening it.
		s.life.newToken, _ = s.req.m.owners.NewOwnedToken(s.owner)
	}
}

// IsNew reports whether the session was created by this request (no valid
// session came with it, or it was invalidated and started again).
func (s *Session) IsNew() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.life.isNew()
}

// ID returns the server-side session ID, the cookie's value. It is empty for
// cookie stores, whose cookie carries the data itself, for a new session
// until it is saved (SetOwner on an OwnerStore makes the new ID known at
// once), and behind a Store that wraps a ServerStore without an Unwrap
// method (see Store).
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
	s.changes.lifetime = true
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
	s.changes.persist = true
}

// AddFlash queues a one-time message, shown on a later request by Flashes.
func (s *Session) AddFlash(msg string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.mutable("AddFlash"); err != nil {
		return err
	}
	s.restartIfEnded()
	s.flashes = append(s.flashes, msg)
	s.changes.flashes = true
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
	s.changes.taken = append(s.changes.taken, f[:s.changes.stored]...)
	s.changes.stored = 0
	s.flashes = nil
	s.changes.flashes = true
	return f
}

// mutable reports ErrReplaced or ErrCommitted (and logs it) for a change
// that can no longer be saved; for a detached session it reports ErrNoMiddleware.
func (s *Session) mutable(op string) error {
	if s.req == nil {
		return ErrNoMiddleware
	}
	if s.replaced {
		err := fmt.Errorf("%w: %s", ErrReplaced, op)
		s.req.m.reportLate(s.req, err)
		return err
	}
	if s.req.committed.Load() {
		err := fmt.Errorf("%w: %s", ErrCommitted, op)
		s.req.m.reportLate(s.req, err)
		return err
	}
	return nil
}
