package httpsession

import "time"

// fate is what a request's commit does with the record the request loaded.
type fate uint8

const (
	fateKeep    fate = iota // update it if anything changed or activity is due
	fateRotate              // same data under a new identity (NewIdentity)
	fateEnd                 // end it (Invalidate)
	fateRestart             // end it; the data added since starts a new session (NewSession)
)

// lifecycle is where a request's session came from and what its commit
// will do with it. Together with the Session's changes it is the whole
// commit decision (plan).
type lifecycle struct {
	token     string // cookie value of the loaded session (or of a renewed one, see load)
	newToken  string // the token SetOwner made for the commit to create; "" lets the store choose
	version   uint64 // the loaded record's version, for a conditional update
	hadCookie bool   // the request carried a session cookie, live or not
	foreign   bool   // a cookie the store could not read, shared with Python (WithAiohttpKeys): never expired
	loaded    bool   // a cookie opened to a live record
	refresh   bool   // the idle timeout's activity record is due
	fate      fate
}

// isNew reports whether the session's identity is created by this request.
func (l *lifecycle) isNew() bool { return !l.loaded || l.fate == fateRestart }

func (l *lifecycle) rotate() {
	if l.fate == fateKeep {
		l.fate = fateRotate
	}
}

func (l *lifecycle) end() { l.fate = fateEnd }

// restartIfEnded turns an invalidated session into a new one when data is
// added to it again, so the new data never reuses the old identity.
func (s *Session) restartIfEnded() {
	if s.life.fate == fateEnd {
		s.life.fate = fateRestart
		s.created = time.Time{}
	}
}

// plan is what commit must do, decided under the session's lock so that the
// store I/O runs without it.
type plan struct {
	commit Commit    // the store write
	now    time.Time // when the record is written (zero when nothing is)
	write  bool      // run commit against the store
	expire bool      // send a deletion cookie unless a new cookie results
}

// plan decides the commit into p. It runs once, when the response's
// headers are about to go out; the session is read-only from then on.
func (s *Session) plan(m *manager, p *plan) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := &s.life
	*p = plan{}
	if s.changes.inPlace {
		if err := s.reencode(); err != nil {
			return err
		}
	}
	empty := s.vals.len() == 0 && len(s.flashes) == 0 && s.owner == ""
	switch {
	case l.fate == fateKeep && !s.changes.any() && !l.refresh:
		// A cookie that named no live session (expired, revoked, sealed
		// with a retired key) is removed, so the browser stops sending it;
		// one shared with Python that Go could not read is left alone,
		// as it may be a live session there.
		p.expire = l.hadCookie && !l.loaded && !l.foreign
		return nil
	case !l.loaded && empty:
		p.expire = l.hadCookie && !l.foreign // an anonymous visitor never creates a record
		if l.fate == fateEnd && l.token != "" {
			// Logout through a cookie whose session was renewed while
			// this request was in flight: end the renewed session too.
			p.write, p.commit = true, Commit{Token: l.token}
		}
		return nil
	case empty && l.fate != fateKeep:
		// Invalidated, or renewed with nothing in it: the record ends,
		// whatever another request wrote meanwhile (logout wins).
		p.write, p.expire = true, true
		p.commit = Commit{Token: l.token, Version: l.version}
		return nil
	}
	p.write = true
	p.commit = Commit{Rotate: l.fate != fateKeep, Touch: l.fate == fateKeep && !s.changes.any(), NewToken: l.newToken}
	if l.loaded {
		p.commit.Token, p.commit.Version = l.token, l.version
		p.commit.Merge = (*sessionMerger)(s)
	}
	p.now = m.now()
	if empty { // the last key was deleted: end the record unless merged into life
		p.expire = true
		return nil
	}
	listed := s.owner != "" && m.owners != nil
	var was, wasDeadline time.Time
	if listed {
		was = s.lastActive()
		wasDeadline = m.deadline(s.created, was, s.lifetime)
	}
	var err error
	p.commit.Data, p.commit.TTL, err = s.encode(m, p.now)
	if err != nil {
		return err
	}
	if listed {
		p.commit.Listing = s.listing(p, was, wasDeadline)
	}
	if p.commit.TTL <= 0 {
		// Already past its deadline (a shortened lifetime, a slow request):
		// end it rather than store a record with no expiry.
		p.commit = Commit{Token: p.commit.Token, Version: p.commit.Version}
		p.expire = true
	}
	return nil
}

// encode builds the record to save at now and its time to live. The
// creation time of a new session is whole seconds, as aiohttp_session
// writes it; the activity time keeps milliseconds, so a short idle
// timeout's throttle holds.
func (s *Session) encode(m *manager, now time.Time) ([]byte, time.Duration, error) {
	if s.created.IsZero() || s.life.isNew() {
		s.created = now.Truncate(time.Second)
	}
	accessed := now.Truncate(time.Millisecond)
	if accessed.Before(s.accessed) { // a merged record's later activity
		accessed = s.accessed
	}
	s.accessed = accessed
	rec := Record{ // on the stack: see encodeRecord (encodeSession calls it)
		Created: s.created, Accessed: accessed, Lifetime: s.lifetime, Persistent: s.persist,
		Flashes: s.flashes, Owner: s.owner, Label: s.label,
	}
	if m.revocation != nil && s.owner != "" {
		rec.Ref = s.ref
		if s.life.newToken != "" {
			rec.Ref = s.life.newToken
		}
	}
	data, err := encodeSession(s.codec, &rec, &s.vals)
	if err != nil {
		return nil, 0, errorf("save session: %w: %w", ErrEncode, err)
	}
	if len(data) > m.maxRecord {
		return nil, 0, errorf("save session: %w: %d bytes, the limit is %d", ErrRecordTooLarge, len(data), m.maxRecord)
	}
	return data, m.deadline(s.created, accessed, s.lifetime).Sub(now), nil
}

// reencode re-encodes the values the handler read, which MarkChanged says
// it may have mutated in place; those whose bytes changed count as set.
func (s *Session) reencode() error {
	return s.cache.each(func(k string, v any) error {
		raw, err := s.codec.EncodeValue(v)
		if err != nil {
			return errorf("save session: %w: %q: %w", ErrEncode, k, err)
		}
		if old, ok := s.vals.get(k); !ok || string(old) != string(raw) {
			s.touch(k)
			s.vals.set(k, raw)
		}
		return nil
	})
}

// listing is what the commit writes to the owned session's entry in its
// owner's list: set when the session is bound, renewed or relabelled, or
// when its activity or expiry moved to another minute since it loaded
// (was, wasDeadline), so a busy session rewrites its entry once a minute.
func (s *Session) listing(p *plan, was, wasDeadline time.Time) *SessionInfo {
	expires := p.now.Add(p.commit.TTL)
	if s.life.loaded && s.life.fate == fateKeep && !s.changes.owner && !s.changes.label &&
		was.Truncate(time.Minute).Equal(s.accessed.Truncate(time.Minute)) &&
		wasDeadline.Truncate(time.Minute).Equal(expires.Truncate(time.Minute)) {
		return nil
	}
	return &SessionInfo{Label: s.label, Created: s.created, LastActive: s.accessed, Expires: expires}
}

// lastActive is when the session was last saved.
func (s *Session) lastActive() time.Time {
	if s.accessed.IsZero() {
		return s.created
	}
	return s.accessed
}
