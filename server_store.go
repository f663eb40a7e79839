package httpsession

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// ServerStore is the server-side Store shared by the memory, Redis and
// Memcached stores: it mints session IDs, checks their syntax before any
// backend call, and hides them from the backend behind a hash.
type ServerStore struct {
	backend Backend
	prefix  string
	timeout time.Duration
	aiohttp bool // aiohttp_session's IDs and keys: 32 hex digits, not hashed
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
// sessions: the ID is 32 lowercase hex digits (uuid4().hex, 128 bits) and
// the key is cookieName + "_" + ID, not hashed. Use it with
// WithCookieName(cookieName) on the middleware ("AIOHTTP_SESSION" is
// aiohttp_session's default).
func WithAiohttpKeys(cookieName string) ServerOption {
	return func(s *ServerStore) { s.prefix, s.aiohttp = cookieName+"_", true }
}

// NewServerStore returns a Store that keeps records in backend.
func NewServerStore(backend Backend, opts ...ServerOption) *ServerStore {
	s := &ServerStore{backend: backend, prefix: "httpsession:"}
	for _, o := range opts {
		o(s)
	}
	return s
}

// idBytes is the entropy of a session ID: 256 bits, twice the minimum that
// OWASP asks for, at a cost of 43 cookie bytes.
const idBytes = 32

var idEncoding = base64.RawURLEncoding

// newID returns a fresh random session ID in the store's format.
func (s *ServerStore) newID() string {
	if s.aiohttp {
		return newHexID()
	}
	return newID()
}

// validID checks the token's syntax so garbage never reaches the backend.
func (s *ServerStore) validID(token string) bool {
	if s.aiohttp {
		return validHexID(token)
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
	if len(token) != idEncoding.EncodedLen(idBytes) {
		return false
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
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

// key hashes the ID, so a dump of the store hands out no live cookies and
// lookups do not depend on secret bytes. aiohttp_session keys are the plain
// ID, as Python expects.
func (s *ServerStore) key(id string) string {
	if s.aiohttp {
		return s.prefix + id
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
	if !s.validID(token) {
		return nil, ErrNotFound
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	data, err := s.backend.Get(ctx, s.key(token))
	return data, s.wrap("load", err)
}

// Save implements Store.
func (s *ServerStore) Save(ctx context.Context, token string, data []byte, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		// Backends read a zero TTL as "never expires"; a session must.
		return "", fmt.Errorf("httpsession: save: ttl %v is not positive", ttl)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if token != "" {
		if !s.validID(token) {
			return "", ErrNotFound
		}
		return token, s.wrap("save", s.backend.Replace(ctx, s.key(token), data, ttl))
	}
	// A collision among 256-bit random IDs is not expected; Add still
	// refuses to overwrite, and a few retries cover a broken generator.
	for range 3 {
		id := s.newID()
		err := s.backend.Add(ctx, s.key(id), data, ttl)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, ErrExists) {
			return "", s.wrap("create", err)
		}
	}
	return "", fmt.Errorf("httpsession: create: %w: session ID collisions", ErrUnavailable)
}

// Delete implements Store.
func (s *ServerStore) Delete(ctx context.Context, token string) error {
	if !s.validID(token) {
		return nil
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	return s.wrap("delete", s.backend.Delete(ctx, s.key(token)))
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
		return fmt.Errorf("httpsession: %s: %w", op, err)
	default:
		return fmt.Errorf("httpsession: %s: %w: %w", op, ErrUnavailable, err)
	}
}
