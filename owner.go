package httpsession

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// OwnerStore is a Store whose sessions can belong to owners, so that an
// owner's sessions can be listed and revoked: "your sessions", "log out
// other devices", "log out everywhere" after a password reset. ServerStore
// implements it (the memory, Redis and Memcached stores). A Store that
// wraps one keeps these features by implementing OwnerStore too, passing
// every call through; the middleware uses only the store it was given.
//
// A background job that has only the store calls ListSessions,
// RevokeSession and RevokeOwner with the owner's name; a handler uses the
// Session's methods of the same names, which know the owner and mark the
// request's own session.
type OwnerStore interface {
	VersionedStore
	// NewOwnedToken returns a fresh token for a session of owner, which a
	// Commit creates under Commit.NewToken; "" when this store cannot
	// name owners in its tokens (then SetOwner only records the owner).
	NewOwnedToken(owner string) (string, error)
	// Handle returns the handle ListSessions shows for the session named
	// by token, or "" if it is not an owned session. A handle names a
	// session without being able to open it.
	Handle(token string) string
	// ListSessions returns owner's live sessions, most recently active
	// first.
	ListSessions(ctx context.Context, owner string) ([]SessionInfo, error)
	// RevokeSession ends owner's session with this handle: no request,
	// not even one in flight, opens it afterwards. An unknown handle is
	// not an error.
	RevokeSession(ctx context.Context, owner, handle string) error
	// RevokeOwner ends every session of owner except the one whose handle
	// is keep ("" keeps none), at a cost independent of their number.
	RevokeOwner(ctx context.Context, owner, keep string) error
}

// SessionInfo is one session in its owner's list (ListSessions). It never
// holds a token: Handle names the session for RevokeSession only.
type SessionInfo struct {
	// Handle names the session for RevokeSession; it cannot open it.
	Handle string
	// Label is what the application called the session (Session.SetLabel),
	// for example a coarse device name such as "Firefox on Linux".
	Label string
	// Created is when the session was bound to its owner (the login).
	Created time.Time
	// LastActive is when a request last saved the session, to the minute.
	LastActive time.Time
	// Expires is when the session ends unless a request extends it (the
	// idle timeout) or ends it first.
	Expires time.Time
	// Current marks the session of the request that asked
	// (Session.ListSessions).
	Current bool
}

// maxLabel bounds a session's label in bytes.
const maxLabel = 100

// SetOwner binds the session to owner, the user who just signed in (a
// stable user ID; it is stored, so never a secret): call it at login,
// after checking the credentials. Binding
//
//   - gives the session a new identity, as NewIdentity does, against
//     session fixation; with an OwnerStore the new ID (Session.ID) and
//     handle (Session.Handle) are known at once, before the response;
//   - restarts its absolute lifetime, so a login late in an anonymous
//     session still gets a full lifetime;
//   - with an OwnerStore, lists the session among owner's sessions, where
//     ListSessions shows it and RevokeSession and RevokeOwner end it.
//
// Binding the session to the owner it already has changes nothing. The
// data in the session is kept; Invalidate at logout drops it and the
// owner. Cookie stores keep the owner in the sealed cookie, where Owner
// reads it; their sessions cannot be listed or revoked.
func (s *Session) SetOwner(owner string) error {
	if owner == "" {
		return errors.New("httpsession: SetOwner: empty owner")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.mutable("SetOwner"); err != nil {
		return err
	}
	if owner == s.owner && s.life.fate == fateKeep {
		return nil
	}
	var token string
	if os := s.req.m.owners; os != nil {
		var err error
		if token, err = os.NewOwnedToken(owner); err != nil {
			return fmt.Errorf("httpsession: SetOwner: %w", err)
		}
	}
	s.restartIfEnded()
	s.life.rotate()
	s.life.newToken = token
	if token != "" && s.req.m.serverSide {
		s.id = token
	}
	s.owner, s.created = owner, time.Time{} // encode starts the lifetime anew
	s.changes.owner = true
	return nil
}

// Owner returns the owner the session is bound to (SetOwner), or "" for an
// anonymous session.
func (s *Session) Owner() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.owner
}

// SetLabel sets the label an owned session shows in its owner's list
// (SessionInfo.Label), for example a coarse device name derived from the
// User-Agent. It is cut to 100 bytes.
func (s *Session) SetLabel(label string) {
	for len(label) > maxLabel || !utf8.ValidString(label) {
		label = label[:min(len(label), maxLabel)]
		for len(label) > 0 && !utf8.ValidString(label) {
			label = label[:len(label)-1]
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if label == s.label || s.mutable("SetLabel") != nil {
		return
	}
	s.label = label
	s.changes.label = true
}

// Label returns the session's label (SetLabel).
func (s *Session) Label() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.label
}

// Handle returns the session's handle in its owner's list, as ListSessions
// shows it: known as soon as SetOwner returns. It is "" for an anonymous
// session and with a store that is not an OwnerStore.
func (s *Session) Handle() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handle()
}

func (s *Session) handle() string {
	if s.req == nil || s.req.m.owners == nil || s.owner == "" {
		return ""
	}
	token := s.life.newToken
	if token == "" {
		token = s.ref // until a renewal's commit, the entry listed is the loaded one
	}
	return s.req.m.owners.Handle(token)
}

// owners returns the request's OwnerStore, the session's owner and handle,
// or an error when sessions cannot be listed.
func (s *Session) owners(op string) (OwnerStore, string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.req == nil {
		return nil, "", "", ErrNoMiddleware
	}
	os := s.req.m.owners
	if os == nil {
		return nil, "", "", fmt.Errorf("httpsession: %s: %w: the store keeps no owners' sessions", op, errors.ErrUnsupported)
	}
	return os, s.owner, s.handle(), nil
}

// ListSessions returns the live sessions of this session's owner, most
// recently active first, with this one marked Current (listed even before
// its first save, in the request that bound it). It is nil for an
// anonymous session. It reads the store once; its error wraps
// errors.ErrUnsupported when the store is not an OwnerStore.
func (s *Session) ListSessions() ([]SessionInfo, error) {
	os, owner, current, err := s.owners("ListSessions")
	if err != nil || owner == "" {
		return nil, err
	}
	list, err := os.ListSessions(s.req, owner)
	if err != nil {
		return nil, err
	}
	found := false
	for i := range list {
		if list[i].Handle == current {
			list[i].Current, found = true, true
		}
	}
	if !found && current != "" {
		s.mu.Lock()
		now := s.req.m.now()
		self := SessionInfo{Handle: current, Label: s.label, Created: s.created, LastActive: s.lastActive(), Current: true}
		if self.Created.IsZero() {
			self.Created, self.LastActive = now, now
		}
		self.Expires = s.req.m.deadline(self.Created, self.LastActive, s.lifetime)
		s.mu.Unlock()
		list = append([]SessionInfo{self}, list...)
	}
	return list, nil
}

// RevokeSession ends the session with this handle among this session's
// owner's sessions, at once: no request of it, not even one in flight,
// opens it afterwards. Revoking this very session is Invalidate as well.
// An unknown handle, or another owner's, changes nothing.
func (s *Session) RevokeSession(handle string) error {
	os, owner, current, err := s.owners("RevokeSession")
	if err != nil || owner == "" {
		return err
	}
	if err := os.RevokeSession(s.req, owner, handle); err != nil {
		return err
	}
	if r := s.req.m.revocation; r != nil {
		r.forgetOwner(owner)
	}
	if handle == current {
		s.Invalidate()
	}
	return nil
}

// RevokeOwner ends every session of this session's owner, with a cost
// independent of their number: "log out other devices" with keepCurrent
// (this session goes on working, in parallel requests too), "log out
// everywhere" without it (then this session is invalidated as well).
func (s *Session) RevokeOwner(keepCurrent bool) error {
	os, owner, current, err := s.owners("RevokeOwner")
	if err != nil || owner == "" {
		return err
	}
	keep := ""
	if keepCurrent {
		keep = current
	}
	if err := os.RevokeOwner(s.req, owner, keep); err != nil {
		return err
	}
	if r := s.req.m.revocation; r != nil {
		r.forgetOwner(owner)
	}
	if !keepCurrent {
		s.Invalidate()
	}
	return nil
}
