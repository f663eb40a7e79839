// A ServerStore's sessions of an owner (Session.SetOwner): how owned
// sessions are named, loaded and listed, and how they are revoked.
//
// An owned session's token is tag + "." + ID, where the tag is a hash of
// the owner. Its record lives under prefix{tag}handle, the handle being a
// hash of the ID (what ListSessions shows, never a usable token), and the
// owner's list of sessions under prefix{tag}. The braces are Redis
// Cluster's hash tag: all of an owner's keys share one slot, and
// NewMemcachedServers puts them on one Memcached server, so one round trip
// (MGET, get with several keys) reads a record and its owner's list.
//
// The list decides: a session is live only while its handle is listed, so
// revoking is an edit of one key whatever the number of sessions, and it
// also stops requests in flight, whose commits update the list first. The
// record's own expiry still ends it; an entry outlives its session by
// listGrace at most and ListSessions hides it once it expired.

package httpsession

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// DefaultMaxOwnerSessions is how many sessions a ServerStore keeps per
// owner by default: binding one more revokes the least recently active.
const DefaultMaxOwnerSessions = 100

// WithMaxOwnerSessions sets how many sessions one owner may have (default
// DefaultMaxOwnerSessions; n <= 0 keeps it). Binding a session beyond it
// revokes the owner's least recently active session. The bound also bounds
// the owner's list, which every load of an owned session reads.
func WithMaxOwnerSessions(n int) ServerOption {
	return func(s *ServerStore) {
		if n > 0 {
			s.maxOwned = n
		}
	}
}

const (
	tagLen    = 16 // base64 characters of an owner tag (96 bits)
	handleLen = 22 // base64 characters of a handle (128 bits)
	// listGrace is how long an entry is kept past the expiry it lists:
	// activity is listed to the minute, so a live session's entry may
	// show an expiry up to a minute early.
	listGrace = 2 * time.Minute
)

// ownerTag derives the owner's tag: a hash, so keys and cookies never
// carry the owner itself.
func ownerTag(owner string) string {
	sum := sha256.Sum256([]byte("httpsession owner\x00" + owner))
	return idEncoding.EncodeToString(sum[:tagLen*6/8])
}

// splitOwned splits an owned session's token into its tag and ID.
func splitOwned(token string) (tag, id string, ok bool) {
	if len(token) != tagLen+1+idEncoding.EncodedLen(idBytes) || token[tagLen] != '.' {
		return "", "", false
	}
	return token[:tagLen], token[tagLen+1:], true
}

// handleOf is the handle of the session with this ID.
func handleOf(id string) string {
	sum := sha256.Sum256([]byte(id))
	return idEncoding.EncodeToString(sum[:handleLen*6/8])
}

func (s *ServerStore) listKey(tag string) string { return s.prefix + "{" + tag + "}" }

func (s *ServerStore) ownedKey(tag, handle string) string { return s.listKey(tag) + handle }

// ownedParts returns the list key and handle of an owned session's record
// key; ok is false for any other key.
func (s *ServerStore) ownedParts(key string) (listKey, handle string, ok bool) {
	n := len(s.prefix) + 1 + tagLen + 1
	if len(key) != n+handleLen || key[:len(s.prefix)] != s.prefix || key[len(s.prefix)] != '{' || key[n-1] != '}' {
		return "", "", false
	}
	return key[:n], key[n:], true
}

// NewOwnedToken implements OwnerStore: a fresh token for a session of
// owner. It is "" for a store in aiohttp_session's format
// (WithAiohttpKeys), whose tokens cannot name an owner: there SetOwner
// records the owner but its sessions cannot be listed or revoked.
func (s *ServerStore) NewOwnedToken(owner string) (string, error) {
	if s.aiohttp {
		return "", nil
	}
	return ownerTag(owner) + "." + newID(), nil
}

// Handle implements OwnerStore: the handle of the owned session named by
// token, as ListSessions shows it, or "".
func (s *ServerStore) Handle(token string) string {
	if _, id, ok := splitOwned(token); ok && !s.aiohttp {
		return handleOf(id)
	}
	return ""
}

// loadOwned reads an owned session's record and its owner's list in one
// round trip; a session that is not listed was revoked.
func (s *ServerStore) loadOwned(ctx context.Context, token string) ([]byte, uint64, error) {
	tag, id, _ := splitOwned(token)
	handle := handleOf(id)
	keys := []string{s.ownedKey(tag, handle), s.listKey(tag)}
	var values [2][]byte
	var versions [2]uint64
	if err := s.getVersions(ctx, keys, values[:], versions[:]); err != nil {
		return nil, 0, s.wrap("load", err)
	}
	switch data := values[0]; {
	case data == nil:
		return nil, 0, ErrNotFound
	case isMoved(data):
		return nil, 0, errMoved
	case !listed(values[1], handle):
		return nil, 0, ErrNotFound
	default:
		return data, versions[0], nil
	}
}

// getVersions reads keys in one round trip on a BatchBackend, else one by
// one.
func (s *ServerStore) getVersions(ctx context.Context, keys []string, values [][]byte, versions []uint64) error {
	if b, ok := s.backend.(BatchBackend); ok {
		return b.GetVersions(ctx, keys, values, versions)
	}
	for i, k := range keys {
		v, ver, err := s.backend.GetVersion(ctx, k)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		values[i], versions[i] = v, ver
	}
	return nil
}

// listEntry is one session in an owner's list. The list is text, one entry
// a line: handle, created, last active and expires in Unix milliseconds,
// and the label, query-escaped.
type listEntry struct {
	handle                   string
	created, active, expires time.Time
	label                    string
}

// listed reports whether handle has an entry in list, without parsing it.
func listed(list []byte, handle string) bool {
	for len(list) > 0 {
		line, rest, _ := bytes.Cut(list, []byte{'\n'})
		if len(line) > len(handle) && line[len(handle)] == ' ' && string(line[:len(handle)]) == handle {
			return true
		}
		list = rest
	}
	return false
}

func parseList(list []byte) []listEntry {
	var out []listEntry
	for len(list) > 0 {
		var line []byte
		line, list, _ = bytes.Cut(list, []byte{'\n'})
		f := bytes.SplitN(line, []byte{' '}, 5)
		if len(f) != 5 {
			continue // not ours; the entry is dropped at the next edit
		}
		label, _ := url.QueryUnescape(string(f[4]))
		out = append(out, listEntry{
			handle: string(f[0]), created: parseMilli(f[1]), active: parseMilli(f[2]), expires: parseMilli(f[3]), label: label,
		})
	}
	return out
}

func parseMilli(b []byte) time.Time {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

func appendList(b []byte, es []listEntry) []byte {
	for _, e := range es {
		b = append(b, e.handle...)
		for _, t := range [...]time.Time{e.created, e.active, e.expires} {
			b = append(b, ' ')
			b = strconv.AppendInt(b, t.UnixMilli(), 10)
		}
		b = append(b, ' ')
		b = append(b, url.QueryEscape(e.label)...)
		b = append(b, '\n')
	}
	return b
}

// entry builds handle's entry from a commit's listing.
func entry(handle string, l *SessionInfo) listEntry {
	return listEntry{handle: handle, created: l.Created, active: l.LastActive, expires: l.Expires, label: l.Label}
}

func find(es []listEntry, handle string) int {
	return slices.IndexFunc(es, func(e listEntry) bool { return e.handle == handle })
}

// list puts the session named by token in its owner's list, when it is
// owned: in place of old's entry when old is the same owner's (which must
// still be listed), else as a new entry, revoking the least recently
// active sessions beyond the store's bound; then old leaves its own
// owner's list, where it also must still be.
func (s *ServerStore) list(ctx context.Context, token, old string, l *SessionInfo, ttl time.Duration) error {
	tag, id, owned := splitOwned(token)
	if !owned {
		return nil
	}
	if l == nil { // a Commit from elsewhere than the middleware
		now := time.Now()
		l = &SessionInfo{Created: now, LastActive: now, Expires: now.Add(ttl)}
	}
	oldTag, oldID, oldOwned := splitOwned(old)
	same := oldOwned && oldTag == tag
	var evicted []string
	err := s.editList(ctx, tag, l.LastActive, func(es []listEntry) ([]listEntry, error) {
		evicted = evicted[:0]
		if same {
			i := find(es, handleOf(oldID))
			if i < 0 {
				return nil, ErrNotFound // revoked while this request ran
			}
			es = slices.Delete(es, i, i+1)
		}
		es = append(es, entry(handleOf(id), l))
		for len(es) > s.maxOwned {
			i := 0
			for j, e := range es[:len(es)-1] { // never the new entry
				if e.active.Before(es[i].active) {
					i = j
				}
			}
			evicted = append(evicted, es[i].handle)
			es = slices.Delete(es, i, i+1)
		}
		return es, nil
	})
	if err != nil {
		return err
	}
	for _, h := range evicted {
		// Unlisted, they are revoked already; deleting frees the space.
		_ = s.backend.Delete(ctx, s.ownedKey(tag, h))
	}
	if oldOwned && !same {
		return s.editList(ctx, oldTag, l.LastActive, func(es []listEntry) ([]listEntry, error) {
			i := find(es, handleOf(oldID))
			if i < 0 {
				return nil, ErrNotFound
			}
			return slices.Delete(es, i, i+1), nil
		})
	}
	return nil
}

// relist updates an owned session's entry; ErrNotFound if it was revoked.
func (s *ServerStore) relist(ctx context.Context, token string, l *SessionInfo) error {
	tag, id, owned := splitOwned(token)
	if !owned {
		return nil
	}
	handle := handleOf(id)
	return s.editList(ctx, tag, l.LastActive, func(es []listEntry) ([]listEntry, error) {
		i := find(es, handle)
		if i < 0 {
			return nil, ErrNotFound
		}
		created := es[i].created
		es[i] = entry(handle, l)
		if es[i].created.IsZero() { // keep what binding listed
			es[i].created = created
		}
		return es, nil
	})
}

// unlist removes the entry of the owned session stored under key, if any.
func (s *ServerStore) unlist(ctx context.Context, key string) error {
	listKey, handle, ok := s.ownedParts(key)
	if !ok {
		return nil
	}
	tag := listKey[len(s.prefix)+1 : len(listKey)-1]
	return s.editList(ctx, tag, time.Now(), func(es []listEntry) ([]listEntry, error) {
		if i := find(es, handle); i >= 0 {
			return slices.Delete(es, i, i+1), nil
		}
		return nil, errUnchanged
	})
}

// errUnchanged is an edit's answer when the list needs no write.
var errUnchanged = errors.New("list unchanged")

// editList rewrites the owner's list with edit, by compare-and-set, retried
// when another request changed the list meanwhile. Entries whose session
// expired more than listGrace before now are dropped on the way; an empty
// list is deleted.
func (s *ServerStore) editList(ctx context.Context, tag string, now time.Time, edit func([]listEntry) ([]listEntry, error)) error {
	if now.IsZero() {
		now = time.Now()
	}
	key := s.listKey(tag)
	for range maxAttempts {
		cur, version, err := s.backend.GetVersion(ctx, key)
		absent := errors.Is(err, ErrNotFound)
		if err != nil && !absent {
			return s.wrap("list", err)
		}
		es := slices.DeleteFunc(parseList(cur), func(e listEntry) bool {
			return !e.expires.IsZero() && now.After(e.expires.Add(listGrace))
		})
		es, err = edit(es)
		if errors.Is(err, errUnchanged) {
			return nil
		}
		if err != nil {
			return err
		}
		var data []byte
		ttl := time.Second
		if len(es) > 0 {
			data = appendList(make([]byte, 0, 64*len(es)), es)
			for _, e := range es {
				ttl = max(ttl, e.expires.Add(listGrace).Sub(now))
			}
		}
		switch {
		case absent && data == nil:
			return nil
		case absent:
			err = s.backend.Add(ctx, key, data, ttl)
		default:
			_, _, err = s.backend.ReplaceIf(ctx, key, version, data, ttl)
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrExists), errors.Is(err, ErrConflict), errors.Is(err, ErrNotFound):
			continue // another request changed the list: edit it again
		default:
			return s.wrap("list", err)
		}
	}
	return fmt.Errorf("httpsession: list: %w: %d attempts", ErrConflict, maxAttempts)
}

// ListSessions implements OwnerStore: the owner's live sessions, most
// recently active first, in one read. Times are as the sessions' commits
// listed them: activity to the minute.
func (s *ServerStore) ListSessions(ctx context.Context, owner string) ([]SessionInfo, error) {
	if s.aiohttp {
		return nil, fmt.Errorf("httpsession: list sessions: %w: aiohttp_session's keys name no owner", errors.ErrUnsupported)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	data, err := s.backend.Get(ctx, s.listKey(ownerTag(owner)))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, s.wrap("list sessions", err)
	}
	now := time.Now()
	var out []SessionInfo
	for _, e := range parseList(data) {
		if !e.expires.IsZero() && !now.Before(e.expires) {
			continue
		}
		out = append(out, SessionInfo{Handle: e.handle, Label: e.label, Created: e.created, LastActive: e.active, Expires: e.expires})
	}
	slices.SortStableFunc(out, func(a, b SessionInfo) int { return b.LastActive.Compare(a.LastActive) })
	return out, nil
}

// RevokeSession implements OwnerStore: it ends the owner's session with
// this handle, at once for every request: it leaves the list, then its
// record is deleted. An unknown handle is not an error.
func (s *ServerStore) RevokeSession(ctx context.Context, owner, handle string) error {
	if s.aiohttp {
		return fmt.Errorf("httpsession: revoke session: %w: aiohttp_session's keys name no owner", errors.ErrUnsupported)
	}
	if len(handle) != handleLen || !validBase64(handle) {
		return nil
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	tag := ownerTag(owner)
	err := s.editList(ctx, tag, time.Now(), func(es []listEntry) ([]listEntry, error) {
		if i := find(es, handle); i >= 0 {
			return slices.Delete(es, i, i+1), nil
		}
		return nil, errUnchanged
	})
	if err != nil {
		return err
	}
	return s.wrap("revoke session", s.backend.Delete(ctx, s.ownedKey(tag, handle)))
}

// RevokeOwner implements OwnerStore: it ends every session of owner but
// the one whose handle is keep ("" for none), with one edit of the owner's
// list whatever their number. Their records are not deleted: unlisted,
// they open nothing, and they expire on their own.
func (s *ServerStore) RevokeOwner(ctx context.Context, owner, keep string) error {
	if s.aiohttp {
		return fmt.Errorf("httpsession: revoke owner: %w: aiohttp_session's keys name no owner", errors.ErrUnsupported)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	return s.editList(ctx, ownerTag(owner), time.Now(), func(es []listEntry) ([]listEntry, error) {
		return slices.DeleteFunc(es, func(e listEntry) bool { return keep == "" || e.handle != keep }), nil
	})
}
