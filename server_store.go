package httpsession

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"strings"
	"time"
)

// ServerStore is the server-side Store shared by the memory, Redis and
// Memcached stores: it mints session IDs, checks their syntax before any
// backend call, and hides them from the backend behind a hash.
type ServerStore struct {
	backend  ConditionalBackend // a plain Backend behind lastWriterWins
	prefix   string
	timeout  time.Duration
	aiohttp  bool            // aiohttp_session's IDs and keys: uuid4 shapes, not hashed
	keyShape AiohttpKeyShape // the shape of the IDs minted under aiohttp
	shapeSet bool            // WithAiohttpKeyFactory was given
	maxOwned int             // sessions kept per owner; the least recently active beyond it is revoked
}

// ServerOption configures a ServerStore.
type ServerOption func(*ServerStore)

// WithKeyPrefix sets the prefix of every backend key (default
// "httpsession:").
func WithKeyPrefix(prefix string) ServerOption { return func(s *ServerStore) { s.prefix = prefix } }

// WithTimeout bounds every backend call (default 0: only the request's
// context bounds it). A call that times out fails with ErrUnavailable.
func WithTimeout(d time.Duration) ServerOption { return func(s *ServerStore) { s.timeout = d } }

// WithAiohttpKeys makes IDs and keys those of aiohttp_session's RedisStorage
// and MemcachedStorage, so Go and Python services share server-side
// sessions: the key is cookieName + "_" + ID, not hashed. Go reads IDs of
// both shapes Python's key_factory usually makes, uuid4().hex (32 lowercase
// hex digits, the default) and str(uuid4()) (36 characters with dashes),
// and mints the shape WithAiohttpKeyFactory chooses (UUID4Hex by default),
// with 128 bits from crypto/rand. A cookie of any other shape is another
// application's: it is "no session" here, and the middleware never expires
// it (see the README's "Sharing sessions with aiohttp"). Use it with
// WithCookieName(cookieName) on the middleware ("AIOHTTP_SESSION" is
// aiohttp_session's default).
func WithAiohttpKeys(cookieName string) ServerOption {
	return func(s *ServerStore) { s.prefix, s.aiohttp = cookieName+"_", true }
}

// AiohttpKeyShape is the shape of the session IDs a store made with
// WithAiohttpKeys mints, after aiohttp_session's key_factory.
type AiohttpKeyShape uint8

const (
	// UUID4Hex is uuid.uuid4().hex, aiohttp_session's default key_factory:
	// 32 lowercase hex digits.
	UUID4Hex AiohttpKeyShape = iota
	// UUID4String is str(uuid.uuid4()), for a Python app with
	// key_factory=lambda: str(uuid.uuid4()): 36 characters, lowercase hex
	// digits in groups of 8-4-4-4-12 separated by dashes.
	UUID4String
)

// WithAiohttpKeyFactory chooses the shape of the IDs Go mints under
// WithAiohttpKeys, to match the Python app's key_factory. Both shapes are
// read whatever it is set to.
func WithAiohttpKeyFactory(shape AiohttpKeyShape) ServerOption {
	return func(s *ServerStore) { s.keyShape, s.shapeSet = shape, true }
}

// NewServerStore returns a Store that keeps records in backend.
//
// Updates are compare-and-set, with concurrent requests' changes merged,
// when backend is a ConditionalBackend; otherwise the last writer wins (see
// the README's "Concurrent requests").
func NewServerStore(backend Backend, opts ...ServerOption) *ServerStore {
	cb, ok := backend.(ConditionalBackend)
	if !ok {
		cb = lastWriterWins{backend}
	}
	s := &ServerStore{backend: cb, prefix: "httpsession:", maxOwned: DefaultMaxOwnerSessions}
	for _, o := range opts {
		o(s)
	}
	return s
}

// valid implements validator: a nil backend, or a Redis or Memcached
// backend on a nil client, is refused.
func (s *ServerStore) valid() error {
	if s.shapeSet && (!s.aiohttp || s.keyShape > UUID4String) {
		return fmt.Errorf("%w: WithAiohttpKeyFactory(%d) needs WithAiohttpKeys and UUID4Hex or UUID4String", ErrInvalidConfig, s.keyShape)
	}
	b := s.innerBackend()
	if b == nil {
		return fmt.Errorf("%w: server store with a nil backend", ErrInvalidConfig)
	}
	if strings.ContainsAny(s.prefix, "{}") {
		// An owner's keys share "{tag}", Redis Cluster's hash tag; a brace
		// in the prefix would put every key in one slot.
		return fmt.Errorf("%w: key prefix %q contains a brace", ErrInvalidConfig, s.prefix)
	}
	if v, ok := b.(validator); ok {
		return v.valid()
	}
	return nil
}

// warn implements warner with the backend's warning.
func (s *ServerStore) warn() string {
	if w, ok := s.innerBackend().(warner); ok {
		return w.warn()
	}
	return ""
}

// innerBackend is the backend the store was built with, unwrapped from
// lastWriterWins.
func (s *ServerStore) innerBackend() Backend {
	if lww, ok := s.backend.(lastWriterWins); ok {
		return lww.Backend
	}
	return s.backend
}

// idBytes is the entropy of a session ID: 256 bits, twice the minimum that
// OWASP asks for, at a cost of 43 cookie bytes.
const idBytes = 32

var idEncoding = base64.RawURLEncoding

// newID returns a fresh random session ID in the store's format.
func (s *ServerStore) newID() string {
	if !s.aiohttp {
		return newID()
	}
	if s.keyShape == UUID4String {
		return newUUIDStringID()
	}
	return newHexID()
}

// validID checks the token's syntax so garbage never reaches the backend:
// a session ID, or an owned session's tag and ID (see owner_list.go).
func (s *ServerStore) validID(token string) bool {
	if s.aiohttp {
		return validHexID(token) || validUUIDStringID(token)
	}
	if tag, id, ok := splitOwned(token); ok {
		return validBase64(tag) && validID(id)
	}
	return validID(token)
}

// newID returns a random 256-bit ID in URL-safe base64.
func newID() string {
	var b [idBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return idEncoding.EncodeToString(b[:])
}

func validID(token string) bool {
	return len(token) == idEncoding.EncodedLen(idBytes) && validBase64(token)
}

// validBase64 reports whether s holds only URL-safe base64 characters.
func validBase64(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// newHexID returns a random 128-bit ID as 32 lowercase hex digits, the shape
// of Python's uuid4().hex.
func newHexID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validHexID(token string) bool {
	if len(token) != 32 {
		return false
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// newUUIDStringID returns a random 128-bit ID in the shape of Python's
// str(uuid4()): 8-4-4-4-12 lowercase hex digits.
func newUUIDStringID() string {
	h := newHexID()
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func validUUIDStringID(token string) bool {
	if len(token) != 36 {
		return false
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// key hashes the ID, so a dump of the store hands out no live cookies and
// lookups do not depend on secret bytes. aiohttp_session keys are the plain
// ID, as Python expects.
func (s *ServerStore) key(id string) string {
	if s.aiohttp {
		return s.prefix + id
	}
	if tag, id, ok := splitOwned(id); ok {
		return s.ownedKey(tag, handleOf(id))
	}
	var scratch [128]byte // IDs passed validID: short, so nothing escapes
	sum := sha256.Sum256(append(scratch[:0], id...))
	return string(hex.AppendEncode(append(scratch[:0], s.prefix...), sum[:]))
}

func (s *ServerStore) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.timeout > 0 {
		return context.WithTimeout(ctx, s.timeout)
	}
	return ctx, func() {}
}

// Load implements Store.
func (s *ServerStore) Load(ctx context.Context, token string) ([]byte, error) {
	data, _, err := s.LoadVersion(ctx, token)
	return data, err
}

// LoadVersion implements VersionedStore.
func (s *ServerStore) LoadVersion(ctx context.Context, token string) ([]byte, uint64, error) {
	if !s.validID(token) {
		if s.aiohttp {
			return nil, 0, errForeignID
		}
		return nil, 0, ErrNotFound
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if _, _, owned := splitOwned(token); owned {
		return s.loadOwned(ctx, token)
	}
	data, version, err := s.backend.GetVersion(ctx, s.key(token))
	if err == nil && isMoved(data) {
		return nil, 0, errMoved
	}
	return data, version, s.wrap("load", err)
}

// Save implements Store. An update is unconditional (see Commit for the
// conditional one), but still only of a session that exists.
func (s *ServerStore) Save(ctx context.Context, token string, data []byte, ttl time.Duration) (string, error) {
	if data == nil {
		data = []byte{} // nil would mean "delete" to Commit
	}
	return s.Commit(ctx, &Commit{Token: token, Data: data, TTL: ttl})
}

// Delete implements Store. It also ends the session under every ID it was
// moved to by NewIdentity while the old ID's forwarding record lives, so a
// logout through an old cookie logs out the renewed session too.
func (s *ServerStore) Delete(ctx context.Context, token string) error {
	if !s.validID(token) {
		return nil
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	return s.wrap("delete", s.end(ctx, s.key(token), 0))
}

// maxAttempts bounds the compare-and-set retries of one commit. Each retry
// follows a write by another request of the same session that landed
// between this one's read and write, so a retry is rare; the bound only
// stops a pathological storm.
const maxAttempts = 32

// Commit implements VersionedStore. On a ConditionalBackend an update is a
// compare-and-set against c.Version, retried after c.Merge on conflict; a
// rotation first creates the new record and then turns the old one into a
// forwarding record by the same compare-and-set, so that a logout that
// lands at any point either finds the old record (and follows it to the
// new one) or makes this commit fail and remove the new record. An owned
// session's entry in its owner's list is written before the record, so a
// revocation that lands first makes the commit fail (see owner_list.go).
func (s *ServerStore) Commit(ctx context.Context, c *Commit) (string, error) {
	if c.Data != nil && c.TTL <= 0 {
		// Backends read a zero TTL as "never expires"; a session must.
		return "", errorf("save: ttl %v is not positive", c.TTL)
	}
	if c.NewToken != "" && !s.validID(c.NewToken) {
		return "", fmt.Errorf("httpsession: save: %w: malformed new token", ErrInvalidConfig)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if c.Token == "" {
		if c.Data == nil {
			return "", nil
		}
		return s.create(ctx, c.NewToken, "", c.Data, c.TTL, c.Listing)
	}
	if !s.validID(c.Token) {
		return "", ErrNotFound
	}
	key := s.key(c.Token)
	if c.Data == nil && c.Merge == nil {
		return "", s.wrap("delete", s.end(ctx, key, c.Version))
	}
	token, data, ttl := c.Token, c.Data, c.TTL
	newKey := ""
	switch {
	case c.Rotate:
		var err error
		if token, err = s.create(ctx, c.NewToken, c.Token, data, ttl, c.Listing); err != nil {
			return "", err
		}
		newKey = s.key(token)
		data = movedRecord(newKey)
	case c.Listing != nil:
		if err := s.relist(ctx, c.Token, c.Listing); err != nil {
			return "", err
		}
	}
	token, err := s.update(ctx, key, token, newKey, data, ttl, c)
	if newKey != "" && (err != nil || token == "") {
		// The old session ended meanwhile (or the commit failed): its
		// successor must not outlive it.
		if derr := s.drop(ctx, newKey); derr != nil {
			err = errorf("%w; %w", err, s.wrap("delete new session", derr))
		}
	}
	return token, err
}

// create stores data under a fresh token: preset if not empty, else a new
// ID, owned by the same owner as old when old is owned. An owned session is
// then listed for its owner; when old is that owner's too, its entry is
// replaced in the same write, and it must still be there (a revocation
// wins). A collision among 256-bit random IDs is not expected; Add still
// refuses to overwrite, and a few retries cover a broken generator.
func (s *ServerStore) create(ctx context.Context, preset, old string, data []byte, ttl time.Duration, listing *SessionInfo) (string, error) {
	for range 3 {
		token := preset
		if token == "" {
			token = s.newTokenLike(old)
		}
		key := s.key(token)
		err := s.backend.Add(ctx, key, data, ttl)
		switch {
		case errors.Is(err, ErrExists) && preset == "":
			continue
		case errors.Is(err, ErrExists):
			return "", fmt.Errorf("httpsession: create: %w: the new token is taken", ErrUnavailable)
		case err != nil:
			return "", s.wrap("create", err)
		}
		if err := s.list(ctx, token, old, listing, ttl); err != nil {
			if derr := s.backend.Delete(ctx, key); derr != nil {
				err = errors.Join(err, s.wrap("delete new session", derr))
			}
			return "", err
		}
		return token, nil
	}
	return "", errorf("create: %w: session ID collisions", ErrUnavailable)
}

// newTokenLike returns a fresh token of the same kind as old: owned by the
// same owner, or not owned.
func (s *ServerStore) newTokenLike(old string) string {
	if tag, _, ok := splitOwned(old); ok {
		return tag + "." + newID()
	}
	return s.newID()
}

// drop deletes a record this commit created and its entry in its owner's
// list.
func (s *ServerStore) drop(ctx context.Context, key string) error {
	err := s.backend.Delete(ctx, key)
	return errors.Join(err, s.unlist(ctx, key))
}

// end deletes the record under key and, when it was a forwarding record
// left by a rotation, the session it forwards to. Each delete is
// conditional on the value last read, so a rotation cannot slip its
// forwarding record in unseen. version is the one the request loaded (0:
// none), which spares the read when the record is still as loaded.
func (s *ServerStore) end(ctx context.Context, key string, version uint64) error {
	var cur []byte
	for attempt := 0; key != "" && attempt < maxAttempts; attempt++ {
		if version == 0 {
			var err error
			cur, version, err = s.backend.GetVersion(ctx, key)
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
		}
		now, nowVersion, err := s.backend.ReplaceIf(ctx, key, version, nil, 0)
		switch {
		case errors.Is(err, ErrConflict):
			// Changed since it was read: judge the current value.
			cur, version = now, nowVersion
			if cur == nil {
				version = 0
			}
			continue
		case errors.Is(err, ErrNotFound):
			return nil
		case err != nil:
			return err
		}
		if err := s.unlist(ctx, key); err != nil {
			return err
		}
		key, version = movedTo(cur), 0
	}
	if key != "" {
		return fmt.Errorf("%w: %d attempts", ErrConflict, maxAttempts)
	}
	return nil
}

// errForeignID is LoadVersion's answer, under WithAiohttpKeys, for a token
// that is not an ID of a shape this store reads: no session here, but it
// may be another application's, so the middleware leaves its cookie alone.
var errForeignID = fmt.Errorf("%w: not an ID this store reads", ErrNotFound)

// errMoved is LoadVersion's answer for a token whose session was given a
// new one: no session, but ending it (Delete) still ends the new one.
var errMoved = fmt.Errorf("%w: it has a new ID", ErrNotFound)

// A forwarding record is what a rotation leaves under the old key: valid
// JSON that names the new key (a hash, never a usable token), which
// aiohttp_session reads as an empty session and this package as none.
const movedPrefix = `{"httpsession_moved":"`

func movedRecord(newKey string) []byte {
	return []byte(movedPrefix + newKey + `"}`)
}

func isMoved(data []byte) bool {
	return len(data) > len(movedPrefix) && string(data[:len(movedPrefix)]) == movedPrefix
}

// movedTo returns the key a forwarding record names, or "".
func movedTo(data []byte) string {
	if !isMoved(data) || data[len(data)-2] != '"' || data[len(data)-1] != '}' {
		return ""
	}
	return string(data[len(movedPrefix) : len(data)-2])
}

// lastWriterWins adapts a Backend without compare-and-set: every version is
// 0 and ReplaceIf is an unconditional Replace (or Delete), so Commit never
// sees a conflict and the last writer wins.
type lastWriterWins struct{ Backend }

// GetVersion implements ConditionalBackend: Get, at version 0.
func (b lastWriterWins) GetVersion(ctx context.Context, key string) ([]byte, uint64, error) {
	v, err := b.Get(ctx, key)
	return v, 0, err
}

// ReplaceIf implements ConditionalBackend without the condition: Replace,
// or Delete for a nil value.
func (b lastWriterWins) ReplaceIf(ctx context.Context, key string, _ uint64, value []byte, ttl time.Duration) ([]byte, uint64, error) {
	if value == nil {
		return nil, 0, b.Delete(ctx, key)
	}
	return nil, 0, b.Replace(ctx, key, value, ttl)
}

// update writes data under key if key still holds c.Version, merging and
// retrying on conflict. For a rotation data is the forwarding record and
// the merged record goes to newKey instead.
func (s *ServerStore) update(ctx context.Context, key, token, newKey string, data []byte, ttl time.Duration, c *Commit) (string, error) {
	if c.Merge == nil { // unconditional: the last writer wins
		if err := s.backend.Replace(ctx, key, data, ttl); err != nil {
			return "", s.wrap("save", err)
		}
		return token, nil
	}
	version := c.Version
	for attempt := 1; ; attempt++ {
		cur, curVersion, err := s.backend.ReplaceIf(ctx, key, version, data, ttl)
		switch {
		case err == nil:
			if data == nil {
				return "", nil // the merged session was empty: it ended
			}
			return token, nil
		case !errors.Is(err, ErrConflict):
			return "", s.wrap("save", err)
		case c.Touch:
			return "", errorf("save: %w: activity recorded by it", ErrConflict)
		case attempt == maxAttempts:
			return "", errorf("save: %w: %d attempts", ErrConflict, attempt)
		}
		if attempt >= contended {
			// Colliding again and again with the session's other
			// requests: step aside for a random while, then read the
			// newest record right before merging, so that the write
			// follows its read closely (see spread).
			if err := spread(ctx, attempt); err != nil {
				return "", s.wrap("save", err)
			}
			cur = nil
		}
		if cur == nil {
			if cur, curVersion, err = s.backend.GetVersion(ctx, key); err != nil {
				return "", s.wrap("save", err)
			}
		}
		if isMoved(cur) {
			return "", ErrNotFound // another request renewed the session first
		}
		merged, mergedTTL, err := c.Merge.Merge(cur)
		if err != nil {
			return "", err
		}
		version, ttl = curVersion, mergedTTL
		if newKey == "" {
			data = merged
			continue
		}
		if merged == nil { // the merged session is empty: end both
			data = nil
			continue
		}
		if err := s.backend.Replace(ctx, newKey, merged, ttl); err != nil {
			return "", s.wrap("save", err)
		}
	}
}

// contended is the attempt after which a commit's retries spread out.
const contended = 4

// spread waits a random while that grows with attempt (below 4ms), so that
// requests of one session that keep colliding, such as a burst of fetch
// calls on a busy machine, stop retrying in lockstep. The first retries go
// at once: a single conflict is the common case, and its retry uses the
// record the conflict brought back.
func spread(ctx context.Context, attempt int) error {
	t := time.NewTimer(time.Duration(mathrand.Int64N(int64(min(attempt, 16)) * int64(250*time.Microsecond))))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wrap makes every failure errors.Is-able as ErrUnavailable (and as its
// cause), except ErrNotFound, which is an answer and not a failure.
func (s *ServerStore) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound):
		return ErrNotFound
	case errors.Is(err, ErrUnavailable):
		return errorf("%s: %w", op, err)
	default:
		return errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
}
