package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-httpsession/httpsession"
)

// TestLoginFlow runs the login flow against a real server on a loopback
// port with a cookie-jar client, once with a server-side store and once
// with a cookie store.
func TestLoginFlow(t *testing.T) {
	nacl, err := httpsession.NewNaClCookieStore([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		store      httpsession.Store
		serverSide bool
	}{
		{"MemoryStore", httpsession.NewMemoryStore(), true},
		{"NaClCookieStore", nacl, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := newRouter(tc.store)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			loginFlow(t, newClient(t, srv.URL), tc.serverSide)
			wrongPassword(t, newClient(t, srv.URL))
			crossOrigin(t, newClient(t, srv.URL))
		})
	}
}

func loginFlow(t *testing.T, c *client, serverSide bool) {
	// An anonymous visitor gets no session and no cookie.
	r := c.get("/")
	r.wantStatus(http.StatusOK)
	r.wantUser("Anonymous")
	r.wantFlashes()
	if sc := r.Header.Get("Set-Cookie"); sc != "" {
		t.Fatalf("anonymous home page sets a cookie: %q", sc)
	}

	// The protected page redirects to the login form, with a flash shown once.
	c.get("/account").wantRedirect("/login")
	r = c.get("/login")
	r.wantUser("Anonymous")
	r.wantFlashes("Please log in")
	c.get("/login").wantFlashes()

	// Logging in with a session in hand: the cookie must change (NewIdentity).
	c.get("/account").wantRedirect("/login")
	before := c.cookie()
	if before == "" {
		t.Fatal("no session cookie after the redirect to /login")
	}
	r = c.post("/login", url.Values{"username": {"alice"}, "password": {"wonderland"}}, nil)
	r.wantRedirect("/")
	sc := r.sessionCookie()
	if sc == nil || !sc.HttpOnly || !sc.Secure || sc.SameSite != http.SameSiteLaxMode || sc.Path != "/" {
		t.Fatalf("login cookie %q, want HttpOnly, Secure, SameSite=Lax, Path=/", r.Header.Get("Set-Cookie"))
	}
	loggedIn := c.cookie()
	if loggedIn == "" || loggedIn == before {
		t.Fatal("the session cookie did not change at login")
	}
	c.replay(before).wantUser("Anonymous") // the pre-login cookie is worthless

	// Signed in: the welcome flash shows once; the protected page opens.
	r = c.get("/")
	r.wantUser("alice")
	r.wantFlashes("Welcome back, alice")
	r = c.get("/")
	r.wantUser("alice")
	r.wantFlashes()
	r = c.get("/account")
	r.wantStatus(http.StatusOK)
	r.wantUser("alice")

	// Logout: anonymous again, the protected page is closed.
	c.post("/logout", nil, nil).wantRedirect("/")
	r = c.get("/")
	r.wantUser("Anonymous")
	r.wantFlashes("Logged out")
	c.get("/account").wantRedirect("/login")
	if r := c.get("/logout"); r.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /logout: status %d, want 405", r.StatusCode)
	}

	// A copy of the signed-in cookie, replayed after the logout.
	if serverSide {
		c.replay(loggedIn).wantUser("Anonymous") // the record is gone
	} else {
		c.replay(loggedIn).wantUser("alice") // cookie stores cannot revoke (README)
	}
}

func wrongPassword(t *testing.T, c *client) {
	r := c.post("/login", url.Values{"username": {"alice"}, "password": {"builder"}}, nil)
	r.wantStatus(http.StatusOK)
	r.wantUser("Anonymous")
	if !strings.Contains(r.body, "Unknown user name or wrong password.") {
		t.Fatalf("wrong password: no error message in\n%s", r.body)
	}
	c.get("/account").wantRedirect("/login")
}

func crossOrigin(t *testing.T, c *client) {
	form := url.Values{"username": {"alice"}, "password": {"wonderland"}}
	r := c.post("/login", form, map[string]string{"Sec-Fetch-Site": "cross-site"})
	if r.StatusCode != http.StatusForbidden || r.Header.Get("Set-Cookie") != "" {
		t.Fatalf("cross-origin login: status %d, Set-Cookie %q; want 403 and none", r.StatusCode, r.Header.Get("Set-Cookie"))
	}
	c.get("/").wantUser("Anonymous")
}

// client is a browser stand-in: a cookie jar, and no redirect following so
// that every 303 can be checked.
type client struct {
	t    *testing.T
	base *url.URL
	hc   *http.Client
}

func newClient(t *testing.T, base string) *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, base: u, hc: &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type response struct {
	*http.Response
	t    *testing.T
	what string
	body string
}

func (c *client) do(hc *http.Client, method, path string, body io.Reader, header map[string]string) *response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base.String()+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return &response{Response: resp, t: c.t, what: method + " " + path, body: string(b)}
}

func (c *client) get(path string) *response {
	c.t.Helper()
	return c.do(c.hc, http.MethodGet, path, nil, nil)
}

func (c *client) post(path string, form url.Values, header map[string]string) *response {
	c.t.Helper()
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for k, v := range header {
		h[k] = v
	}
	return c.do(c.hc, http.MethodPost, path, strings.NewReader(form.Encode()), h)
}

// replay sends GET / with only the given session cookie, as someone holding
// a copy of it would, without touching the jar.
func (c *client) replay(value string) *response {
	c.t.Helper()
	hc := &http.Client{Timeout: c.hc.Timeout, CheckRedirect: c.hc.CheckRedirect}
	return c.do(hc, http.MethodGet, "/", nil, map[string]string{"Cookie": httpsession.DefaultCookieName + "=" + value})
}

// cookie returns the session cookie's value in the jar, or "".
func (c *client) cookie() string {
	for _, ck := range c.hc.Jar.Cookies(c.base) {
		if ck.Name == httpsession.DefaultCookieName {
			return ck.Value
		}
	}
	return ""
}

func (r *response) wantStatus(code int) {
	r.t.Helper()
	if r.StatusCode != code {
		r.t.Fatalf("%s: status %d, want %d; body:\n%s", r.what, r.StatusCode, code, r.body)
	}
}

func (r *response) wantRedirect(location string) {
	r.t.Helper()
	r.wantStatus(http.StatusSeeOther)
	if got := r.Header.Get("Location"); got != location {
		r.t.Fatalf("%s: redirect to %q, want %q", r.what, got, location)
	}
}

var (
	userRE  = regexp.MustCompile(`<b id="user">([^<]*)</b>`)
	flashRE = regexp.MustCompile(`<p class="flash">([^<]*)</p>`)
)

func (r *response) wantUser(name string) {
	r.t.Helper()
	m := userRE.FindStringSubmatch(r.body)
	if m == nil || m[1] != name {
		r.t.Fatalf("%s: status %d, want user %q in the page:\n%s", r.what, r.StatusCode, name, r.body)
	}
}

func (r *response) wantFlashes(want ...string) {
	r.t.Helper()
	var got []string
	for _, m := range flashRE.FindAllStringSubmatch(r.body, -1) {
		got = append(got, m[1])
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		r.t.Fatalf("%s: flashes %q, want %q", r.what, got, want)
	}
}

func (r *response) sessionCookie() *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == httpsession.DefaultCookieName {
			return c
		}
	}
	return nil
}
