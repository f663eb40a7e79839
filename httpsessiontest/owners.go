package httpsessiontest

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-httpsession/httpsession"
)

// testOwners checks sessions of a user (Session.SetOwner) on the backend:
// an owned load reads the record and its owner's list in one round trip
// on a httpsession.BatchBackend; revoking all of an owner's sessions costs
// the same for 1 session as for 20 and ends them all, requests that come
// later included; "log out other devices" keeps the current one; revoking
// one session ends exactly that one; the list shows the live sessions.
func (k *kit) testOwners(t *testing.T) {
	t.Run("OwnedLoad", func(t *testing.T) {
		t.Parallel()
		f := k.newFixture(t)
		a := newOwnerApp(t, f.store())
		d := a.signIn(t, "alice")
		before := f.rec.snapshot()
		if got := a.whoami(t, d); got != "alice" {
			t.Fatalf("owned session opens %q", got)
		}
		want := int64(2)
		if _, ok := f.inner.(httpsession.BatchBackend); ok {
			want = 1
		}
		if c := f.rec.since(before); c.gets != want || c.writes() != 0 {
			t.Fatalf("an owned read-only request cost %+v, want %d read(s) and no write", c, want)
		}
	})

	t.Run("RevokeOwner", func(t *testing.T) {
		t.Parallel()
		f := k.newFixture(t)
		s := f.store()
		a := newOwnerApp(t, s)
		cost := func(owner string, n int) (counts, []device) {
			var ds []device
			for range n {
				ds = append(ds, a.signIn(t, owner))
			}
			before := f.rec.snapshot()
			if err := s.RevokeOwner(t.Context(), owner, ""); err != nil {
				t.Fatal(err)
			}
			return f.rec.since(before), ds
		}
		bob := a.signIn(t, "bob")
		one, _ := cost("solo", 1)
		many, ds := cost("alice", 20)
		if one != many {
			t.Fatalf("revoking 1 session cost %+v, 20 cost %+v", one, many)
		}
		for i, d := range ds {
			if got := a.whoami(t, d); got != "" {
				t.Fatalf("revoked session %d opens %q", i, got)
			}
		}
		if got := a.whoami(t, bob); got != "bob" {
			t.Fatalf("another owner's session: %q", got)
		}
		if list, err := s.ListSessions(t.Context(), "alice"); err != nil || len(list) != 0 {
			t.Fatalf("list after revocation: %v, %v", list, err)
		}
	})

	t.Run("RevokeOtherDevices", func(t *testing.T) {
		t.Parallel()
		f := k.newFixture(t)
		s := f.store()
		a := newOwnerApp(t, s)
		laptop, phone := a.signIn(t, "alice"), a.signIn(t, "alice")
		if r := a.get(t, "/revoke-others", laptop.cookie); r.status != http.StatusOK {
			t.Fatalf("revoke-others: %d %s", r.status, r.body)
		}
		if got := a.whoami(t, laptop); got != "alice" {
			t.Fatalf("the current session after logging out other devices: %q", got)
		}
		if got := a.whoami(t, phone); got != "" {
			t.Fatalf("another device still opens %q", got)
		}
		list, err := s.ListSessions(t.Context(), "alice")
		if err != nil || len(list) != 1 || list[0].Handle != laptop.handle {
			t.Fatalf("list: %+v, %v; want only the current session", list, err)
		}
	})

	t.Run("RevokeSession", func(t *testing.T) {
		t.Parallel()
		f := k.newFixture(t)
		s := f.store()
		a := newOwnerApp(t, s)
		ds := []device{a.signIn(t, "alice"), a.signIn(t, "alice"), a.signIn(t, "alice")}
		before := f.rec.snapshot()
		list, err := s.ListSessions(t.Context(), "alice")
		if err != nil || len(list) != 3 {
			t.Fatalf("list: %v, %v; want 3 sessions", list, err)
		}
		if c := f.rec.since(before); c.total() != 1 {
			t.Fatalf("listing cost %+v, want one read", c)
		}
		for _, info := range list {
			for _, d := range ds {
				if strings.Contains(d.cookie, info.Handle) || info.Expires.IsZero() || info.Created.IsZero() {
					t.Fatalf("listed session %+v: a handle within a token, or no times", info)
				}
			}
		}
		if err := s.RevokeSession(t.Context(), "alice", ds[1].handle); err != nil {
			t.Fatal(err)
		}
		for i, want := range []string{"alice", "", "alice"} {
			if got := a.whoami(t, ds[i]); got != want {
				t.Fatalf("session %d opens %q, want %q", i, got, want)
			}
		}
		if list, _ := s.ListSessions(t.Context(), "alice"); len(list) != 2 {
			t.Fatalf("list after revoking one: %v", list)
		}
	})
}

// device is one browser signed in as an owner.
type device struct{ cookie, handle string }

// ownerApp is a real HTTP server over the middleware with routes for
// owners: /own?u= binds (SetOwner) and answers the handle, /whoami answers
// the owner, /revoke-others is "log out other devices".
type ownerApp struct{ *app }

func newOwnerApp(t *testing.T, store httpsession.Store) *ownerApp {
	t.Helper()
	a := newApp(t, store)
	mux := a.mux
	mux.HandleFunc("/own", func(w http.ResponseWriter, r *http.Request) {
		s, err := httpsession.Get(r)
		if err == nil {
			err = s.SetOwner(r.FormValue("u"))
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = fmt.Fprint(w, s.Handle())
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		if s, err := httpsession.Get(r); err == nil {
			_, _ = fmt.Fprint(w, s.Owner())
		}
	})
	mux.HandleFunc("/revoke-others", func(w http.ResponseWriter, r *http.Request) {
		s, err := httpsession.Get(r)
		if err == nil {
			err = s.RevokeOwner(true)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	return &ownerApp{a}
}

func (a *ownerApp) signIn(t *testing.T, owner string) device {
	t.Helper()
	r := a.get(t, "/own?u="+url.QueryEscape(owner), "")
	if r.status != http.StatusOK || r.cookie == nil || r.body == "" {
		t.Fatalf("login as %s: %d %q, cookie %v", owner, r.status, r.body, r.cookie)
	}
	return device{r.cookie.Value, r.body}
}

func (a *ownerApp) whoami(t *testing.T, d device) string {
	t.Helper()
	r := a.get(t, "/whoami", d.cookie)
	if r.status != http.StatusOK {
		t.Fatalf("whoami: %d %s", r.status, r.body)
	}
	return r.body
}
