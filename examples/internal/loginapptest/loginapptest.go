// Package loginapptest runs the login examples' end-to-end flow against a
// real HTTP server and a cookie-jar client, for every session store the
// examples use. Each example (login, redis, memcached, chi, gorilla) is
// self-contained; only their tests share this package.
package loginapptest

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-httpsession/httpsession"
)

// rememberLifetime is the session lifetime the examples give "remember me".
const rememberLifetime = 30 * 24 * time.Hour

// ServerAddr returns the environment variable env, the address of a real
// server for a test. Unset, the test is skipped, or fails when CI=true: CI
// must never skip a server test silently.
func ServerAddr(t *testing.T, env string) string {
	t.Helper()
	v := strings.TrimSpace(os.Getenv(env))
	if v == "" {
		msg := env + " is not set; run the tests through `make test` or `bash scripts/testenv.sh go test ./examples/...`"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return v
}

// RunStores runs the flow on the application build makes, once with a
// server-side store (memory) and once with a cookie store (NaCl): for the
// examples that route the pages with a router of their own.
func RunStores(t *testing.T, build func(httpsession.Store) (http.Handler, error)) {
	t.Helper()
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
			h, err := build(tc.store)
			if err != nil {
				t.Fatal(err)
			}
			Run(t, h, tc.serverSide)
		})
	}
}

// Run checks the whole login flow against h, an example's application. serverSide says whether the store keeps sessions on the server:
// then a cookie replayed after logout must be refused. A cookie store
// cannot revoke it, and Run checks that this limitation is what the README
// says it is.
func Run(t *testing.T, h http.Handler, serverSide bool) {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	t.Run("LoginLogout", func(t *testing.T) { loginLogout(t, srv.URL, serverSide) })
	t.Run("WrongPassword", func(t *testing.T) { wrongPassword(t, srv.URL) })
	t.Run("RememberMe", func(t *testing.T) { rememberMe(t, srv.URL) })
	t.Run("BrowserSessionCookie", func(t *testing.T) { browserSession(t, srv.URL) })
	t.Run("CrossOriginPost", func(t *testing.T) { crossOrigin(t, srv.URL) })
	t.Run("Sessions", func(t *testing.T) { yourSessions(t, srv.URL) })
	t.Run("LogoutNeedsPost", func(t *testing.T) {
		c := newClient(t, srv.URL)
		if r := c.get("/logout"); r.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("GET /logout: status %d, want 405", r.StatusCode)
		}
	})
}

func loginLogout(t *testing.T, base string, serverSide bool) {
	c := newClient(t, base)

	// An anonymous visitor: no session is created, no cookie is sent.
	r := c.get("/")
	r.wantStatus(http.StatusOK)
	r.wantUser("Anonymous")
	r.wantFlashes()
	if r.Header.Get("Set-Cookie") != "" {
		t.Fatalf("anonymous home page sets a cookie: %q", r.Header.Get("Set-Cookie"))
	}
	if !strings.Contains(r.Header.Get("Vary"), "Cookie") {
		t.Fatalf("home page: Vary %q, want Cookie", r.Header.Get("Vary"))
	}

	// A protected page sends the visitor to the login form and back, and
	// writes no session: anonymous hits cannot fill the store.
	r = c.get("/account")
	r.wantRedirect("/login?next=%2Faccount")
	if c.cookie() != "" || r.Header.Get("Set-Cookie") != "" {
		t.Fatalf("an anonymous hit on a protected page set a cookie: %q", r.Header.Get("Set-Cookie"))
	}
	r = c.get("/login?next=%2Faccount")
	r.wantStatus(http.StatusOK)
	r.wantUser("Anonymous")
	if !strings.Contains(r.body, `<p class="notice">Please log in</p>`) ||
		!strings.Contains(r.body, `<input type="hidden" name="next" value="/account">`) {
		t.Fatalf("login form after a protected page: no notice or next field:\n%s", r.body)
	}
	if c.cookie() != "" {
		t.Fatal("the login form set a session cookie")
	}

	// A visitor arriving with a session someone else planted (here the
	// anonymous session an attacker's own logout left) logs in: the cookie
	// that comes back must be a different one.
	attacker := newClient(t, base)
	attacker.post("/logout", nil).wantRedirect("/")
	before := attacker.cookie()
	if before == "" {
		t.Fatal("no session cookie after the attacker's logout")
	}
	c.hc.Jar.SetCookies(c.base, []*http.Cookie{{Name: httpsession.DefaultCookieName, Value: before, Path: "/"}})
	if c.cookie() != before {
		t.Fatal("could not plant the cookie")
	}
	r = c.post("/login", url.Values{"username": {"alice"}, "password": {"wonderland"}, "next": {"/account"}})
	r.wantRedirect("/account")
	sc := r.sessionCookie()
	if sc == nil {
		t.Fatal("login response sets no session cookie")
	}
	if !sc.HttpOnly || !sc.Secure || sc.SameSite != http.SameSiteLaxMode || sc.Path != "/" {
		t.Fatalf("login cookie attributes: %q, want HttpOnly, Secure, SameSite=Lax, Path=/", r.Header.Get("Set-Cookie"))
	}
	after := c.cookie()
	if after == "" || after == before {
		t.Fatal("the session cookie did not change at login (NewIdentity)")
	}
	// The pre-login cookie is worth nothing: never alice's session.
	c.withCookie("/", before).wantUser("Anonymous")

	// Signed in: the welcome flash shows once.
	r = c.get("/")
	r.wantUser("alice")
	r.wantFlashes("Welcome back, alice")
	r = c.get("/")
	r.wantUser("alice")
	r.wantFlashes()
	r = c.get("/account")
	r.wantStatus(http.StatusOK)
	r.wantUser("alice")

	// Logout.
	loggedIn := c.cookie()
	r = c.post("/logout", nil)
	r.wantRedirect("/")
	if c.cookie() == loggedIn {
		t.Fatal("the session cookie did not change at logout")
	}
	r = c.get("/")
	r.wantUser("Anonymous")
	r.wantFlashes("Logged out")
	c.get("/account").wantRedirect("/login?next=%2Faccount")

	// Someone who copied the signed-in cookie replays it after the logout.
	// A server store deleted the record; the examples make their cookie
	// store revocable (WithCookieRevocation), and the logout took the
	// session off alice's list: either way the copy opens nothing.
	c.withCookie("/", loggedIn).wantUser("Anonymous")
}

func wrongPassword(t *testing.T, base string) {
	c := newClient(t, base)
	for _, form := range []url.Values{
		{"username": {"alice"}, "password": {"builder"}},
		{"username": {"alice"}, "password": {""}},
		{"username": {"mallory"}, "password": {""}},
		{"username": {""}, "password": {""}},
	} {
		r := c.post("/login", form)
		r.wantStatus(http.StatusOK)
		if !strings.Contains(r.body, "Unknown user name or wrong password.") {
			t.Fatalf("login as %q/%q: no error message in the page", form.Get("username"), form.Get("password"))
		}
		r.wantUser("Anonymous")
		c.get("/").wantUser("Anonymous")
		c.get("/account").wantRedirect("/login?next=%2Faccount")
	}
}

func rememberMe(t *testing.T, base string) {
	c := newClient(t, base)
	r := c.post("/login", url.Values{"username": {"bob"}, "password": {"builder"}, "remember": {"1"}})
	r.wantRedirect("/")
	sc := r.sessionCookie()
	if sc == nil {
		t.Fatal("no session cookie")
	}
	want := int(rememberLifetime / time.Second)
	if sc.MaxAge < want-60 || sc.MaxAge > want {
		t.Fatalf("remember me: Max-Age %d, want about %d (30 days)", sc.MaxAge, want)
	}
	if d := time.Until(sc.Expires) - rememberLifetime; d < -time.Minute || d > time.Minute {
		t.Fatalf("remember me: Expires %v, want about 30 days from now", sc.Expires)
	}
	// The lifetime is enforced from the record too, not only the cookie.
	r = c.get("/account")
	r.wantUser("bob")
	r.wantExpiresIn(rememberLifetime)
}

func browserSession(t *testing.T, base string) {
	c := newClient(t, base)
	r := c.post("/login", url.Values{"username": {"bob"}, "password": {"builder"}})
	r.wantRedirect("/")
	sc := r.sessionCookie()
	if sc == nil {
		t.Fatal("no session cookie")
	}
	if sc.MaxAge != 0 || sc.RawExpires != "" {
		t.Fatalf("remember me unticked: %q, want a cookie without Max-Age and Expires", r.Header.Get("Set-Cookie"))
	}
	r = c.get("/account")
	r.wantUser("bob")
	r.wantExpiresIn(httpsession.DefaultLifetime)
}

func crossOrigin(t *testing.T, base string) {
	c := newClient(t, base)
	form := url.Values{"username": {"alice"}, "password": {"wonderland"}}
	for _, hdr := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Origin": "https://evil.example"},
	} {
		r := c.postWith("/login", form, hdr)
		if r.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-origin login %v: status %d, want 403", hdr, r.StatusCode)
		}
		if r.Header.Get("Set-Cookie") != "" {
			t.Fatalf("cross-origin login %v set a cookie", hdr)
		}
	}
	c.get("/").wantUser("Anonymous")
	// A browser's same-origin form post passes.
	c.postWith("/login", form, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": base}).wantRedirect("/")
	c.get("/").wantUser("alice")
}

// sessionRE finds a row of the "Sessions" page: its handle, label and
// whether it is this browser's.
var sessionRE = regexp.MustCompile(`<tr class="session" data-handle="([^"]+)"><td><b>([^<]*)</b>( <span class="current">)?`)

// sessionRows returns the "Sessions" page's rows as handle → label, and the
// current session's handle.
func sessionRows(r *response) (rows map[string]string, current string) {
	r.t.Helper()
	r.wantStatus(http.StatusOK)
	rows = map[string]string{}
	for _, m := range sessionRE.FindAllStringSubmatch(r.body, -1) {
		rows[m[1]] = m[2]
		if m[3] != "" {
			if current != "" {
				r.t.Fatalf("%s: two sessions marked current:\n%s", r.what, r.body)
			}
			current = m[1]
		}
	}
	return rows, current
}

// yourSessions: bob signs in from three browsers; the "Sessions" page lists
// all three, this one marked; revoking one logs exactly that browser out;
// "log out other devices" logs out the rest and keeps this one.
func yourSessions(t *testing.T, base string) {
	login := func(userAgent string) *client {
		c := newClient(t, base)
		c.postWith("/login", url.Values{"username": {"bob"}, "password": {"builder"}},
			map[string]string{"User-Agent": userAgent}).wantRedirect("/")
		return c
	}
	laptop := login("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	// Bob's sessions from the other flows end first.
	laptop.post("/sessions/revoke-others", nil).wantRedirect("/sessions")
	phone := login("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36")
	tablet := login("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15")

	rows, current := sessionRows(laptop.get("/sessions"))
	if len(rows) != 3 || rows[current] != "Firefox on Linux" {
		t.Fatalf("laptop's sessions page: %v, current %q; want 3 sessions, this one Firefox on Linux", rows, current)
	}
	for _, label := range []string{"Chrome on Android", "Safari on iPad"} {
		if !strings.Contains(laptop.get("/sessions").body, label) {
			t.Fatalf("no %q session listed", label)
		}
	}
	if strings.Contains(laptop.get("/sessions").body, laptop.cookie()) {
		t.Fatal("the sessions page shows a session cookie")
	}
	_, phoneHandle := sessionRows(phone.get("/sessions"))

	// Revoke the phone from the laptop: the phone is out, the tablet in.
	laptop.post("/sessions/revoke", url.Values{"handle": {phoneHandle}}).wantRedirect("/sessions")
	phone.get("/account").wantRedirect("/login?next=%2Faccount")
	tablet.get("/account").wantStatus(http.StatusOK)
	if rows, _ := sessionRows(laptop.get("/sessions")); len(rows) != 2 || rows[phoneHandle] != "" {
		t.Fatalf("after revoking the phone: %v", rows)
	}

	// Log out other devices: the tablet is out, the laptop stays in.
	laptop.post("/sessions/revoke-others", nil).wantRedirect("/sessions")
	tablet.get("/account").wantRedirect("/login?next=%2Faccount")
	r := laptop.get("/sessions")
	r.wantFlashes("Logged out of every other device")
	if rows, cur := sessionRows(r); len(rows) != 1 || cur != current {
		t.Fatalf("after logging out other devices: %v, current %q; want only %q", rows, cur, current)
	}
	laptop.get("/account").wantStatus(http.StatusOK)

	// Anonymous visitors have no sessions page.
	newClient(t, base).get("/sessions").wantRedirect("/login?next=%2Fsessions")
}

// client is a browser stand-in: a cookie jar and no redirect following, so
// every 303 can be checked.
type client struct {
	t    *testing.T
	base *url.URL
	hc   *http.Client
}

func newClient(t *testing.T, base string) *client {
	t.Helper()
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

func (c *client) do(req *http.Request, hc *http.Client) *response {
	c.t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return &response{Response: resp, t: c.t, what: req.Method + " " + req.URL.Path, body: string(b)}
}

func (c *client) get(path string) *response {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.base.String()+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.do(req, c.hc)
}

func (c *client) post(path string, form url.Values) *response {
	c.t.Helper()
	return c.postWith(path, form, nil)
}

func (c *client) postWith(path string, form url.Values, header map[string]string) *response {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.base.String()+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return c.do(req, c.hc)
}

// withCookie sends a GET carrying only the given session cookie value, as
// someone holding a copy of it would, without touching the jar.
func (c *client) withCookie(path, value string) *response {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.base.String()+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: httpsession.DefaultCookieName, Value: value})
	return c.do(req, &http.Client{Timeout: c.hc.Timeout, CheckRedirect: c.hc.CheckRedirect})
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
	userRE    = regexp.MustCompile(`<b id="user">([^<]*)</b>`)
	flashRE   = regexp.MustCompile(`<p class="flash">([^<]*)</p>`)
	expiresRE = regexp.MustCompile(`<span id="expires"><time datetime="([^"]*)">([^<]*)</time></span>`)
	// readableRE is how the pages show a time to people.
	readableRE = regexp.MustCompile(`^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) [1-9][0-9]? (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4}, [0-9]{2}:[0-9]{2} UTC$`)
)

func (r *response) wantUser(name string) {
	r.t.Helper()
	m := userRE.FindStringSubmatch(r.body)
	if m == nil {
		r.t.Fatalf("%s: status %d, no user in the page:\n%s", r.what, r.StatusCode, r.body)
	}
	if m[1] != name {
		r.t.Fatalf("%s: page shows user %q, want %q", r.what, m[1], name)
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

// wantExpiresIn checks the session deadline the account page shows.
func (r *response) wantExpiresIn(d time.Duration) {
	r.t.Helper()
	m := expiresRE.FindStringSubmatch(r.body)
	if m == nil {
		r.t.Fatalf("%s: no expiry in the page:\n%s", r.what, r.body)
	}
	exp, err := time.Parse(time.RFC3339, m[1])
	if err != nil {
		r.t.Fatal(err)
	}
	if !readableRE.MatchString(m[2]) || m[2] != exp.UTC().Format("Mon 2 Jan 2006, 15:04 MST") {
		r.t.Fatalf("%s: session end shown as %q, want a readable date of %v", r.what, m[2], exp)
	}
	if off := time.Until(exp) - d; off < -time.Minute || off > time.Minute {
		r.t.Fatalf("%s: session ends %v, want about %v from now", r.what, exp, d)
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
