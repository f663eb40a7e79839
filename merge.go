package httpsession

import (
	"maps"
	"time"
)

// Two requests of one session often run at once (tabs, fetch, prefetch).
// On a server-side store each commits with a compare-and-set against the
// record version it loaded; when another request wrote first, the store
// hands back that request's record and merge replays this request's
// changes on top of it: keys only this request changed take its values,
// keys it did not touch keep the other request's, and a key both changed
// is settled by a MergeFunc or the ConflictPolicy.

// ConflictPolicy says what happens when two concurrent requests of one
// session changed the same key and no MergeFunc is set for it.
type ConflictPolicy uint8

const (
	// ConflictOverwrite keeps this request's value and logs the conflict
	// as an error wrapping ErrConflict. It is the default.
	ConflictOverwrite ConflictPolicy = iota
	// ConflictFail drops this request's changes and answers through the
	// error handler with an error wrapping ErrConflict; the default error
	// handler answers 409 Conflict.
	ConflictFail
)

// WithConflictPolicy sets the ConflictPolicy (default ConflictOverwrite).
func WithConflictPolicy(p ConflictPolicy) Option { return func(c *config) { c.conflicts = p } }

// A MergeFunc combines the values of one key that this request and another
// request of the same session both changed, such as a counter or a cart.
// The values are codec-encoded; nil means the key was absent: base is the
// value this request loaded, mine the one it leaves, theirs the one the
// other request saved. It returns the value to keep, or nil to delete the
// key. An error abandons the request's changes and reaches the error
// handler. Merge builds one from a function on decoded values.
type MergeFunc func(c Codec, base, mine, theirs []byte) ([]byte, error)

// WithMerge sets how key is merged when concurrent requests both changed it
// (see MergeFunc). It applies to server-side stores, whose updates are
// conditional; a cookie store keeps the cookie the browser got last.
func WithMerge(key string, fn MergeFunc) Option {
	return func(c *config) {
		if c.merges == nil {
			c.merges = make(map[string]MergeFunc)
		}
		c.merges[key] = fn
	}
}

// Merge returns a MergeFunc that decodes the three values as T (an absent
// one as T's zero value), calls fn and keeps its result. For a counter that
// every request increments:
//
//	httpsession.WithMerge("count", httpsession.Merge(func(base, mine, theirs int) int {
//		return theirs + mine - base
//	}))
func Merge[T any](fn func(base, mine, theirs T) T) MergeFunc {
	return func(c Codec, base, mine, theirs []byte) ([]byte, error) {
		var vals [3]T
		for i, raw := range [3][]byte{base, mine, theirs} {
			if raw == nil {
				continue
			}
			if err := c.DecodeValue(raw, &vals[i]); err != nil {
				return nil, errorf("%w: %w", ErrDecode, err)
			}
		}
		return c.EncodeValue(fn(vals[0], vals[1], vals[2]))
	}
}

// sessionMerger is the Merger of a request's Session: a pointer to the
// session itself, so handing it to the store costs no allocation.
type sessionMerger Session

// Merge implements Merger.
func (sm *sessionMerger) Merge(current []byte) ([]byte, time.Duration, error) {
	s := (*Session)(sm)
	return s.merge(s.req.m, current)
}

// merge replays this request's changes on current, the record another
// request of the session wrote since this one loaded it, and returns the
// record to write instead (nil: the session is now empty and ends). The
// session's fields become the merged session, and each changed key's base
// becomes the other request's value, so a further conflict is judged
// against it.
func (s *Session) merge(m *manager, current []byte) ([]byte, time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := m.now()
	if s.life.fate == fateRestart {
		return s.encode(m, now) // a new session replaces the old one, whatever it holds
	}
	var rec Record
	theirs := &rec
	if err := decodeRecord(s.codec, current, theirs); err != nil ||
		!now.Before(m.deadline(theirs.Created, theirs.Accessed, theirs.Lifetime)) {
		return nil, 0, ErrNotFound // ended (aiohttp_session's "{}") or expired meanwhile
	}
	merged := maps.Clone(theirs.Values)
	if merged == nil {
		merged = make(map[string][]byte)
	}
	for i, base := range s.changes.base {
		k := base.key
		mine, mineOK := s.vals.get(k)
		th, thOK := theirs.Values[k]
		if !sameValue(th, thOK, base.raw, base.ok) {
			// Both changed k; even to equal values, it is a conflict:
			// two read-modify-writes of a counter give equal values and
			// lose an increment.
			var err error
			if mine, mineOK, err = s.settle(m, k, base, mine, mineOK, th, thOK); err != nil {
				return nil, 0, err
			}
		}
		if mineOK {
			merged[k] = mine
		} else {
			delete(merged, k)
		}
		s.changes.base[i] = baseValue{k, th, thOK}
	}
	s.vals, s.cache = values{m: merged}, valueCache{}
	s.mergeFlashes(theirs.Flashes)
	if !s.changes.lifetime {
		s.lifetime = theirs.Lifetime
	}
	if !s.changes.persist {
		s.persist = theirs.Persistent
	}
	if !s.changes.owner { // a binding restarts the lifetime
		s.created, s.owner = theirs.Created, theirs.Owner
	}
	if !s.changes.label {
		s.label = theirs.Label
	}
	if theirs.Accessed.After(s.accessed) {
		s.accessed = theirs.Accessed
	}
	if s.vals.len() == 0 && len(s.flashes) == 0 && s.owner == "" {
		return nil, 0, nil
	}
	data, ttl, err := s.encode(m, now)
	if err == nil && ttl <= 0 {
		return nil, 0, nil
	}
	return data, ttl, err
}

// settle decides a key that both requests changed.
func (s *Session) settle(m *manager, k string, base baseValue, mine []byte, mineOK bool, theirs []byte, theirsOK bool) ([]byte, bool, error) {
	fn := m.merges[k]
	if fn == nil {
		if m.conflicts == ConflictFail {
			return nil, false, errorf("%w: key %q", ErrConflict, k)
		}
		s.changes.conflicts = append(s.changes.conflicts, k)
		return mine, mineOK, nil
	}
	v, err := fn(s.codec, present(base.raw, base.ok), present(mine, mineOK), present(theirs, theirsOK))
	if err != nil {
		return nil, false, errorf("merge %q: %w", k, err)
	}
	return v, v != nil, nil
}

// mergeFlashes keeps the other request's flashes, less those this request
// consumed, then adds this request's.
func (s *Session) mergeFlashes(theirs []string) {
	added := s.flashes[s.changes.stored:]
	out := make([]string, 0, len(theirs)+len(added))
	taken := make(map[string]int, len(s.changes.taken))
	for _, f := range s.changes.taken {
		taken[f]++
	}
	for _, f := range theirs {
		if taken[f] > 0 {
			taken[f]--
			continue
		}
		out = append(out, f)
	}
	s.changes.stored = len(out)
	s.flashes = append(out, added...)
}

func sameValue(a []byte, aOK bool, b []byte, bOK bool) bool {
	return aOK == bOK && string(a) == string(b)
}

func present(v []byte, ok bool) []byte {
	if ok && v == nil {
		return []byte{}
	}
	if !ok {
		return nil
	}
	return v
}
