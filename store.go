package httpsession

import (
	"context"
	"time"
)

// Store keeps encoded session records. The middleware encodes and decodes
// records and enforces expiry; a Store only moves bytes.
//
// The token is the cookie's value. A cookie store seals the record into the
// token itself; a server-side store (ServerStore) keeps the record under a
// random session ID and uses the ID as the token.
//
// The middleware calls Load, Save and Delete with the request's context,
// which also tells a CookieStore the cookie's name and path, so that it
// binds its seals to them (see CookieStore). Called with any other context
// (a test, an Example) a cookie store binds and checks nothing.
//
// A Store that wraps another one, to add metrics or tracing, should be a
// VersionedStore when the wrapped one is (every ServerStore is), or
// concurrent requests' updates are last-writer-wins; and it should have an
// Unwrap() Store method returning the wrapped Store, as
// http.ResponseController expects of wrapped ResponseWriters: through it the
// middleware still sees a ServerStore underneath, which Session.ID depends
// on. It must pass the context on (or one derived from it), or a wrapped
// cookie store cannot bind its seals.
type Store interface {
	// Load returns the record named by token. A token that names no live
	// session (unknown, expired, tampered, malformed) returns ErrNotFound;
	// any other error means the store could not answer.
	Load(ctx context.Context, token string) ([]byte, error)
	// Save writes data and returns the token for the cookie. An empty token
	// creates a new session; a non-empty one updates that session only if it
	// still exists, returning ErrNotFound if it was deleted meanwhile. ttl is
	// how long the record must live.
	Save(ctx context.Context, token string, data []byte, ttl time.Duration) (string, error)
	// Delete removes the session named by token. Deleting a missing session
	// is not an error.
	Delete(ctx context.Context, token string) error
}

// validator is a Store or Backend that can tell at Middleware, before any
// request, that it cannot work: a store built on a nil client, which would
// panic on the first request. Its constructor returns no error, so the
// error waits for Middleware.
type validator interface {
	// valid returns nil, or an error wrapping ErrInvalidConfig.
	valid() error
}

// warner is a Store or Backend whose configuration works, but not as its
// user likely expects; Middleware logs the warning once, at construction.
type warner interface {
	// warn returns the warning, or "".
	warn() string
}

// checkStore calls valid and warn on store and on every store it wraps,
// found through Unwrap() Store methods.
func checkStore(store Store) (warnings []string, err error) {
	for range 16 { // a bound, should an Unwrap return its own receiver
		if v, ok := store.(validator); ok {
			if err := v.valid(); err != nil {
				return nil, err
			}
		}
		if w, ok := store.(warner); ok {
			if s := w.warn(); s != "" {
				warnings = append(warnings, s)
			}
		}
		u, ok := store.(interface{ Unwrap() Store })
		if !ok {
			break
		}
		store = u.Unwrap()
	}
	return warnings, nil
}

// wrapsServerStore reports whether store is a *ServerStore or wraps one,
// found through Unwrap() Store methods, so that its tokens are session IDs.
func wrapsServerStore(store Store) bool {
	for range 16 { // a bound, should an Unwrap return its own receiver
		switch s := store.(type) {
		case *ServerStore:
			return true
		case interface{ Unwrap() Store }:
			store = s.Unwrap()
		default:
			return false
		}
	}
	return false
}

// Backend is the few calls a server-side database must provide for
// ServerStore. Keys arrive already hashed and prefixed, and a ttl from
// ServerStore is always positive. Errors other than ErrNotFound and
// ErrExists should wrap ErrUnavailable.
type Backend interface {
	// Get returns the value under key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Add stores value under key only if key is absent, else ErrExists.
	Add(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Replace stores value under key only if key is present, else
	// ErrNotFound. This is what lets a logout win over a request that was
	// in flight when it happened.
	Replace(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// ConditionalBackend is a Backend that can change a key only if it still
// holds the value that was read: a compare-and-set in one round trip. With
// it, ServerStore merges the changes of concurrent requests of one session
// instead of letting the last writer win, and a logout beats every request
// that was in flight. The memory, Redis and Memcached backends implement
// it; a Backend without it gets last-writer-wins updates.
type ConditionalBackend interface {
	Backend
	// GetVersion is Get that also returns the value's version: a number
	// that differs whenever the value under key was written since it was
	// read (a counter, a CAS unique, a digest of the bytes).
	GetVersion(ctx context.Context, key string) (value []byte, version uint64, err error)
	// ReplaceIf stores value under key with ttl only if key is present and
	// still at version; a nil value deletes key under the same condition.
	// It returns ErrNotFound when key is absent and ErrConflict when key
	// holds another version, together with the current value and version
	// when the same round trip brought them back (otherwise nil and 0, and
	// the caller reads them with GetVersion).
	ReplaceIf(ctx context.Context, key string, version uint64, value []byte, ttl time.Duration) (current []byte, currentVersion uint64, err error)
}

// BatchBackend is a ConditionalBackend that reads several keys in one round
// trip. ServerStore loads an owned session together with its owner's list
// of sessions through it (see SetOwner); without it, that load takes two
// reads. The keys of one call share a Redis Cluster hash slot ("{tag}") and,
// with NewMemcachedServers, one Memcached server.
type BatchBackend interface {
	ConditionalBackend
	// GetVersions reads keys into values and versions, which have the
	// length of keys: for a missing key it leaves a nil value and version 0,
	// which is not an error.
	GetVersions(ctx context.Context, keys []string, values [][]byte, versions []uint64) error
}

// VersionedStore is a Store whose updates are conditional: a request's
// changes are written only on top of the record version it loaded, and
// merged with another request's changes when that one wrote first.
// ServerStore implements it. A Store wrapper (metrics, tracing) keeps these
// guarantees by implementing it too; the middleware uses a Store without it
// through Load, Save and Delete, where the last writer wins.
type VersionedStore interface {
	Store
	// LoadVersion is Load that also returns the loaded record's version,
	// to be passed back in Commit.Version.
	LoadVersion(ctx context.Context, token string) (data []byte, version uint64, err error)
	// Commit writes what one request did to its session and returns the
	// session's token afterwards ("" when the session ended). It returns
	// ErrNotFound when the session it updates was ended meanwhile (a
	// logout elsewhere): the logout wins and nothing is written.
	Commit(ctx context.Context, c *Commit) (token string, err error)
}

// Commit is one request's write of its session record, for
// VersionedStore.Commit.
type Commit struct {
	// Token names the session the request loaded ("" if none) and Version
	// is the version it loaded (0 if unknown).
	Token   string
	Version uint64
	// Data is the record to keep; nil ends the session named by Token.
	Data []byte
	// TTL is how long Data must live; it must be positive when Data is not
	// nil.
	TTL time.Duration
	// Rotate gives the record a new token (Session.NewIdentity,
	// NewSession). The old token stops opening anything, and a logout
	// through the old token still ends the session under its new one.
	Rotate bool
	// Touch marks a write that only records activity (the idle timeout's
	// refresh): when Token's record changed since Version, the request
	// that changed it recorded activity already, so the write is dropped
	// without a merge and Commit returns an error wrapping ErrConflict.
	Touch bool
	// Merge is called when Token's record changed since Version. With a
	// nil Merge the write is unconditional: the last writer wins.
	Merge Merger
	// NewToken is the token a new or renewed session gets, made
	// beforehand by OwnerStore.NewOwnedToken so that it was known before
	// the commit (Session.SetOwner); "" lets the store choose.
	NewToken string
	// Listing is what the session's entry in its owner's list of sessions
	// (ListSessions) shows from now on; nil leaves the entry as it is. The
	// middleware sets it for an owned session when the session is bound,
	// renewed or relabelled, and when its activity or expiry moved to
	// another minute. An update with a Listing fails with ErrNotFound when
	// the session was revoked meanwhile.
	Listing *SessionInfo
}

// A Merger rebuilds a request's session record on top of current, the
// record another request wrote since this one loaded it: see Commit.
type Merger interface {
	// Merge returns the record (and its TTL) to write instead of the
	// commit's; nil data ends the session. An error abandons the commit
	// and is returned by it.
	Merge(current []byte) (data []byte, ttl time.Duration, err error)
}

// versioned returns store as a VersionedStore: itself if it is one, else an
// adapter whose writes are unconditional (last writer wins).
func versioned(store Store) VersionedStore {
	if vs, ok := store.(VersionedStore); ok {
		return vs
	}
	return plainStore{store}
}

// plainStore runs a Commit through a Store's Load, Save and Delete. It
// cannot detect a concurrent change, so Merge is never called.
type plainStore struct{ Store }

// LoadVersion implements VersionedStore: Load, at version 0.
func (p plainStore) LoadVersion(ctx context.Context, token string) ([]byte, uint64, error) {
	data, err := p.Load(ctx, token)
	return data, 0, err
}

// Commit implements VersionedStore with Save and Delete, unconditionally.
func (p plainStore) Commit(ctx context.Context, c *Commit) (string, error) {
	switch {
	case c.Data == nil:
		if c.Token == "" {
			return "", nil
		}
		return "", p.Delete(ctx, c.Token)
	case c.Rotate && c.Token != "":
		token, err := p.Save(ctx, "", c.Data, c.TTL)
		if err != nil {
			return "", err
		}
		if token != c.Token { // a cookie store may seal the same bytes alike
			if err := p.Delete(ctx, c.Token); err != nil {
				return "", err
			}
		}
		return token, nil
	default:
		return p.Save(ctx, c.Token, c.Data, c.TTL)
	}
}
