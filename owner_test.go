package httpsession

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// newOwnerApp is a conflictApp with the routes of "sessions of a user":
//
//	/own?u=&l=        logs in as u (SetOwner) with label l; answers "<ID> <Handle>"
//	/sessions         the owner's sessions, one "handle label [current]" a line
//	/revoke?h=        RevokeSession(h)
//	/revoke-others    RevokeOwner(true): log out other devices
//	/revoke-all       RevokeOwner(false): log out everywhere
//	/whoami           the owner, or "new"
func newOwnerApp(t *testing.T, cb *countingBackend, at int64, opts ...Option) *conflictApp {
	t.Helper()
	return addOwnerRoutes(buildConflictApp(t, cb, at, false, opts...))
}

// forEachOwnerStore runs test on every store whose sessions can have
// owners: each server store, and a NaCl cookie store made revocable by a
// list on each server store.
func forEachOwnerStore(t *testing.T, test func(t *testing.T, newApp func(t *testing.T, at int64) *conflictApp)) {
	for name, nb := range conflictBackends() {
		for _, cookie := range []bool{false, true} {
			if cookie {
				name = "nacl+" + name
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				test(t, func(t *testing.T, at int64) *conflictApp {
					return addOwnerRoutes(buildConflictApp(t, nb(t), at, cookie))
				})
			})
		}
	}
}

func addOwnerRoutes(a *conflictApp) *conflictApp {
	route := func(path string, fn func(w http.ResponseWriter, r *http.Request, s *Session) error) {
		a.mux.HandleFunc("/c"+path, func(w http.ResponseWriter, r *http.Request) {
			s, err := Get(r)
			if err == nil {
				err = fn(w, r, s)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		})
	}
	route("/own", func(w http.ResponseWriter, r *http.Request, s *Session) error {
		if err := s.SetOwner(r.FormValue("u")); err != nil {
			return err
		}
		s.SetLabel(r.FormValue("l"))
		if err := s.Set("user", r.FormValue("u")); err != nil {
			return err
		}
		_, err := fmt.Fprintf(w, "%s %s", s.ID(), s.Handle())
		return err
	})
	route("/sessions", func(w http.ResponseWriter, r *http.Request, s *Session) error {
		list, err := s.ListSessions()
		for _, e := range list {
			mark := ""
			if e.Current {
				mark = " current"
			}
			_, _ = fmt.Fprintf(w, "%s %s%s\n", e.Handle, e.Label, mark)
		}
		return err
	})
	route("/revoke", func(w http.ResponseWriter, r *http.Request, s *Session) error {
		return s.RevokeSession(r.FormValue("h"))
	})
	route("/revoke-others", func(w http.ResponseWriter, r *http.Request, s *Session) error {
		return s.RevokeOwner(true)
	})
	route("/revoke-all", func(w http.ResponseWriter, r *http.Request, s *Session) error {
		return s.RevokeOwner(false)
	})
	route("/whoami", func(w http.ResponseWriter, r *http.Request, s *Session) error {
		owner := s.Owner()
		if owner == "" {
			owner = "new"
		}
		_, err := io.WriteString(w, owner)
		return err
	})
	return a
}

// ownerRoutes are the routes most owner tests need, to which a test may
// add its own:
//
//	/login   SetOwner("alice")
//	/whoami  the session's owner ("" for none; the error handler's answer
//	         when the session cannot load)
//	/visit   an anonymous visitor's write: n++
func ownerRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if s, err := Get(r); err == nil {
			_ = s.SetOwner("alice")
		}
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		if s, err := Get(r); err == nil {
			_, _ = io.WriteString(w, s.Owner())
		}
	})
	mux.HandleFunc("/visit", func(w http.ResponseWriter, r *http.Request) {
		if s, err := Get(r); err == nil {
			n, _ := GetAs[int](s, "n")
			_ = s.Set("n", n+1)
		}
	})
	return mux
}

// device is one browser signed in as an owner.
type device struct{ cookie, id, handle string }

// signIn logs in as user from a fresh browser labelled label.
func (a *conflictApp) signIn(t *testing.T, user, label string) device {
	t.Helper()
	r := a.must(t, "/own?u="+url.QueryEscape(user)+"&l="+url.QueryEscape(label), "")
	if r.cookie == nil {
		t.Fatal("login set no cookie")
	}
	id, handle, _ := strings.Cut(r.body, " ")
	if !a.cookie && id != r.cookie.Value || handle == "" {
		t.Fatalf("in the login request ID %q, handle %q; the cookie is %q", id, handle, r.cookie.Value)
	}
	return device{r.cookie.Value, id, handle}
}

func (a *conflictApp) whoami(t *testing.T, d device) string {
	t.Helper()
	return a.must(t, "/whoami", d.cookie).body
}

// sessions returns the handles the owner's list shows to d, "*" marking
// the current one, sorted.
func (a *conflictApp) sessions(t *testing.T, d device) string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(a.must(t, "/sessions", d.cookie).body), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		h := f[0]
		if f[len(f)-1] == "current" {
			h += "*"
		}
		out = append(out, h)
	}
	return strings.Join(sortedCopy(out), ",")
}

func sortedCopy(s []string) []string { return slices.Sorted(slices.Values(s)) }

// TestRevokeOwner: a background job (another ServerStore on the same
// backend, as another process would have) revokes every session of alice,
// including one whose request is in flight; bob's session is untouched.
func TestRevokeOwner(t *testing.T) {
	forEachOwnerStore(t, func(t *testing.T, newApp func(t *testing.T, at int64) *conflictApp) {
		a := newApp(t, 1) // after A's load
		laptop, phone := a.signIn(t, "alice", "laptop"), a.signIn(t, "alice", "phone")
		bob := a.signIn(t, "bob", "desktop")
		finish, ok := a.paused(t, "/set?k=x&v=new", phone.cookie)
		if !ok {
			t.Fatal("the phone's request did not pause")
		}
		job := NewServerStore(a.backend.counted(), WithKeyPrefix(a.store.prefix))
		if err := job.RevokeOwner(t.Context(), "alice", ""); err != nil {
			t.Fatal(err)
		}
		if r := finish(); r.err != nil {
			t.Fatal(r.err)
		}
		for _, d := range []device{laptop, phone} {
			if got := a.whoami(t, d); got != "new" {
				t.Fatalf("a revoked cookie opens %q", got)
			}
		}
		if got := a.whoami(t, bob); got != "bob" {
			t.Fatalf("bob's session: %q", got)
		}
		if list, err := job.ListSessions(t.Context(), "alice"); err != nil || len(list) != 0 {
			t.Fatalf("alice's list after revocation: %v, %v", list, err)
		}
	})
}

// TestRevokeOtherDevices: "log out other devices" from the laptop while
// another request of the laptop is in flight: the laptop goes on, its
// in-flight change lands, the other devices are out.
func TestRevokeOtherDevices(t *testing.T) {
	forEachOwnerStore(t, func(t *testing.T, newApp func(t *testing.T, at int64) *conflictApp) {
		a := newApp(t, 1)
		laptop := a.signIn(t, "alice", "laptop")
		phone, tablet := a.signIn(t, "alice", "phone"), a.signIn(t, "alice", "tablet")
		finish := a.overlap(t, "/set?k=a&v=1", "/revoke-others", laptop.cookie)
		r := finish()
		if r.status != http.StatusOK {
			t.Fatalf("the laptop's parallel request: %d %s", r.status, r.body)
		}
		if r.cookie != nil { // a cookie store's data is in the newest cookie
			laptop.cookie = r.cookie.Value
		}
		if got := a.dump(t, laptop.cookie); !strings.Contains(got, `a="1"`) {
			t.Fatalf("the laptop's session = %s, want its parallel change", got)
		}
		for _, d := range []device{phone, tablet} {
			if got := a.whoami(t, d); got != "new" {
				t.Fatalf("another device still opens %q", got)
			}
		}
		if got, want := a.sessions(t, laptop), laptop.handle+"*"; got != want {
			t.Fatalf("sessions = %s, want %s", got, want)
		}
	})
}

// TestRevokeSession kills exactly the session named, and the list shows
// every live session (the current one marked) and no dead one.
func TestRevokeSession(t *testing.T) {
	forEachOwnerStore(t, func(t *testing.T, newApp func(t *testing.T, at int64) *conflictApp) {
		a := newApp(t, -1)
		laptop, phone, tablet := a.signIn(t, "alice", "laptop"), a.signIn(t, "alice", "phone"), a.signIn(t, "alice", "tablet")
		want := strings.Join(sortedCopy([]string{laptop.handle + "*", phone.handle, tablet.handle}), ",")
		if got := a.sessions(t, laptop); got != want {
			t.Fatalf("sessions = %s, want %s", got, want)
		}
		a.must(t, "/revoke?h="+phone.handle, laptop.cookie)
		if got := a.whoami(t, phone); got != "new" {
			t.Fatalf("the revoked phone opens %q", got)
		}
		for _, d := range []device{laptop, tablet} {
			if got := a.whoami(t, d); got != "alice" {
				t.Fatalf("a session that was not revoked opens %q", got)
			}
		}
		a.must(t, "/logout", tablet.cookie) // a logout leaves the list too
		if got, want := a.sessions(t, laptop), laptop.handle+"*"; got != want {
			t.Fatalf("sessions = %s, want %s", got, want)
		}
		// Another owner's handle changes nothing.
		bob := a.signIn(t, "bob", "desktop")
		a.must(t, "/revoke?h="+laptop.handle, bob.cookie)
		if got := a.whoami(t, laptop); got != "alice" {
			t.Fatalf("bob revoked alice's session: %q", got)
		}
		// Revoking the current session logs it out.
		a.must(t, "/revoke?h="+bob.handle, bob.cookie)
		if got := a.whoami(t, bob); got != "new" {
			t.Fatalf("bob's self-revoked session opens %q", got)
		}
	})
}

// TestStolenCookieAfterRevoke: a cookie copied from the laptop opens
// nothing after "log out everywhere" from the phone, nor does the phone's.
func TestStolenCookieAfterRevoke(t *testing.T) {
	forEachOwnerStore(t, func(t *testing.T, newApp func(t *testing.T, at int64) *conflictApp) {
		a := newApp(t, -1)
		stolen := a.signIn(t, "alice", "laptop").cookie
		a.must(t, "/set?k=x&v=secret", stolen)
		phone := a.signIn(t, "alice", "phone")
		a.must(t, "/revoke-all", phone.cookie)
		if got := a.whoami(t, phone); got != "new" {
			t.Fatalf("the device that logged out everywhere opens %q", got)
		}
		if got := a.dump(t, stolen); got != "new" {
			t.Fatalf("the stolen cookie opens %s", got)
		}
	})
}

// TestRevokeDuringRenewal: a request that renews the session's ID is in
// flight when its owner is revoked: neither the old nor a new cookie opens
// anything afterwards.
func TestRevokeDuringRenewal(t *testing.T) {
	forEachOwnerStore(t, func(t *testing.T, newApp func(t *testing.T, at int64) *conflictApp) {
		a := newApp(t, 1)
		d := a.signIn(t, "alice", "laptop")
		finish, ok := a.paused(t, "/renew", d.cookie)
		if !ok {
			t.Fatal("renewal did not pause")
		}
		if err := a.store.RevokeOwner(t.Context(), "alice", ""); err != nil {
			t.Fatal(err)
		}
		r := finish()
		if got := a.whoami(t, d); got != "new" {
			t.Fatalf("old cookie opens %q", got)
		}
		if r.cookie != nil && r.cookie.Value != "" {
			if got := a.whoami(t, device{cookie: r.cookie.Value}); got != "new" {
				t.Fatalf("the renewal's cookie opens %q", got)
			}
		}
		if list, _ := a.store.ListSessions(t.Context(), "alice"); len(list) != 0 {
			t.Fatalf("list after revocation: %v", list)
		}
	})
}

// TestSetOwnerKnownAtOnce: inside the login request the session's ID and
// handle are known, the list already shows it as current, and after it the
// cookie and the list agree with them.
func TestSetOwnerKnownAtOnce(t *testing.T) {
	var inside []SessionInfo
	store, _ := countedMemoryStore(nil)
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		s, _ := Get(r)
		if err := s.SetOwner("alice"); err != nil {
			t.Error(err)
		}
		s.SetLabel("laptop")
		inside, _ = s.ListSessions()
		_, _ = fmt.Fprintf(w, "%s %s", s.ID(), s.Handle())
	})
	app := startApp(t, store, mux)
	r := app.getWithCookie(t, "/login", "")
	id, handle, _ := strings.Cut(r.body, " ")
	if r.cookie == nil || r.cookie.Value != id || handle == "" || strings.Contains(id, handle) {
		t.Fatalf("ID %q, handle %q, cookie %v", id, handle, r.cookie)
	}
	if len(inside) != 1 || inside[0].Handle != handle || !inside[0].Current || inside[0].Label != "laptop" {
		t.Fatalf("list inside the login request: %+v", inside)
	}
	list, err := store.ListSessions(t.Context(), "alice")
	if err != nil || len(list) != 1 || list[0].Handle != handle || list[0].Label != "laptop" || list[0].Current {
		t.Fatalf("list afterwards: %+v, %v", list, err)
	}
	if !list[0].Expires.After(list[0].Created) || list[0].LastActive.Before(list[0].Created) {
		t.Fatalf("times: %+v", list[0])
	}
}

// TestLoginLateGetsFullLifetime: an anonymous session 23 h 59 min into its
// 24 h lifetime signs in; the signed-in session lives 24 h from the login.
func TestLoginLateGetsFullLifetime(t *testing.T) {
	clock := newTestClock()
	store, _ := countedMemoryStore(clock.Now)
	app := startApp(t, store, ownerRoutes(), WithClock(clock.Now), WithLifetime(24*time.Hour))
	r := app.getWithCookie(t, "/visit", "")
	clock.Advance(23*time.Hour + 59*time.Minute)
	r = app.getWithCookie(t, "/login", r.cookie.Value)
	if r.cookie == nil {
		t.Fatal("login set no cookie")
	}
	clock.Advance(23 * time.Hour)
	if got := app.getWithCookie(t, "/whoami", r.cookie.Value).body; got != "alice" {
		t.Fatalf("23 h after a late login: %q, want alice", got)
	}
	clock.Advance(time.Hour)
	if got := app.getWithCookie(t, "/whoami", r.cookie.Value).body; got != "" {
		t.Fatalf("24 h after the login: %q, want no session", got)
	}
}

// TestSetOwnerOnCookieStore: a cookie store keeps the owner in the seal;
// listing is unsupported there.
func TestSetOwnerOnCookieStore(t *testing.T) {
	var listErr error
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		s, _ := Get(r)
		_ = s.SetOwner("alice")
		_, listErr = s.ListSessions()
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		s, _ := Get(r)
		_, _ = io.WriteString(w, s.Owner()+" "+s.Handle())
	})
	store, err := NewNaClCookieStore(randomKey(t))
	if err != nil {
		t.Fatal(err)
	}
	app := startApp(t, store, mux)
	r := app.getWithCookie(t, "/login", "")
	if !errors.Is(listErr, errors.ErrUnsupported) {
		t.Fatalf("ListSessions on a cookie store: %v", listErr)
	}
	if got := app.getWithCookie(t, "/whoami", r.cookie.Value).body; got != "alice " {
		t.Fatalf("owner and handle after login: %q", got)
	}
}

// TestSetOwnerTwice: binding to the same owner again changes nothing; to
// another owner moves the session to that owner's list.
func TestSetOwnerTwice(t *testing.T) {
	forEachOwnerStore(t, func(t *testing.T, newApp func(t *testing.T, at int64) *conflictApp) {
		a := newApp(t, -1)
		d := a.signIn(t, "alice", "laptop")
		r := a.must(t, "/own?u=alice&l=laptop", d.cookie)
		if _, h, _ := strings.Cut(r.body, " "); h != d.handle {
			t.Fatalf("binding to the same owner renewed the session: handle %s, was %s", h, d.handle)
		}
		r = a.must(t, "/own?u=bob&l=laptop", d.cookie)
		if _, h, _ := strings.Cut(r.body, " "); r.cookie == nil || h == d.handle {
			t.Fatal("binding to another owner kept the session's identity")
		}
		if got := a.whoami(t, d); got != "new" {
			t.Fatalf("the old ID opens %q", got)
		}
		if list, _ := a.store.ListSessions(t.Context(), "alice"); len(list) != 0 {
			t.Fatalf("alice still lists %v", list)
		}
		if list, _ := a.store.ListSessions(t.Context(), "bob"); len(list) != 1 {
			t.Fatalf("bob lists %v", list)
		}
	})
}
