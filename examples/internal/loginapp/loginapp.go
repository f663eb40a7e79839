// Package loginapp is the web application of the login examples
// (examples/login, examples/redis, examples/memcached): a login form, logout,
// a page only signed-in users may see, flash messages and "remember me".
// The examples differ only in the session store they hand to New.
package loginapp

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-httpsession/httpsession"
)

// RememberLifetime is the session lifetime when "remember me" is ticked.
const RememberLifetime = 30 * 24 * time.Hour

// userKey is the session key holding the signed-in user's name.
const userKey = "user"

// Users maps user names to passwords.
type Users map[string]string

// DemoUsers are the accounts of the example. A real application keeps
// password hashes (bcrypt, scrypt or argon2id), never the passwords.
var DemoUsers = Users{
	"alice": "wonderland",
	"bob":   "builder",
}

// Check reports whether password is name's password. It compares fixed-size
// digests in constant time, and does the same work for unknown users, so the
// response time tells an attacker neither how much of a password matched
// nor much about which names exist.
func (u Users) Check(name, password string) bool {
	want, known := u[name]
	got := sha256.Sum256([]byte(password))
	exp := sha256.Sum256([]byte(want))
	match := subtle.ConstantTimeCompare(got[:], exp[:]) == 1
	return known && match
}

// New returns the application with the session middleware on store and
// http.CrossOriginProtection in front of it. opts are passed to
// httpsession.Middleware.
func New(store httpsession.Store, opts ...httpsession.Option) (http.Handler, error) {
	return NewWithUsers(store, DemoUsers, opts...)
}

// NewWithUsers is New with a user list other than DemoUsers.
func NewWithUsers(store httpsession.Store, users Users, opts ...httpsession.Option) (http.Handler, error) {
	sessions, err := httpsession.Middleware(store, opts...)
	if err != nil {
		return nil, err
	}
	a := NewHandlers(users)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.Home)
	mux.HandleFunc("GET /login", a.LoginForm)
	mux.HandleFunc("POST /login", a.Login)
	mux.HandleFunc("POST /logout", a.Logout)
	mux.Handle("GET /account", RequireLogin(http.HandlerFunc(a.Account)))

	// Cross-site request forgery: the session cookie is SameSite=Lax, so
	// other sites' POSTs arrive without it, and CrossOriginProtection
	// rejects cross-origin POSTs (Sec-Fetch-Site, else Origin vs Host)
	// before they reach the session middleware. Note that Lax alone would
	// not stop a forged login (the attacker's form needs no cookie).
	csrf := http.NewCrossOriginProtection()
	return csrf.Handler(sessions(mux)), nil
}

// Handlers are the application's pages, for routing with any router (the
// chi and gorilla/mux examples route them themselves). They need the
// session middleware in front of them.
type Handlers struct {
	users Users
}

// NewHandlers returns the pages for users.
func NewHandlers(users Users) *Handlers { return &Handlers{users: users} }

// session returns the request's session. When it reports false the
// response is taken care of: on a store error the middleware's error
// handler answers (503 when the store is down), so the handler just
// returns.
func session(w http.ResponseWriter, r *http.Request) (*httpsession.Session, bool) {
	s, err := httpsession.Get(r)
	if errors.Is(err, httpsession.ErrNoMiddleware) {
		// A wiring mistake: nobody else would answer.
		slog.Error("loginapp: handler mounted outside the session middleware", "path", r.URL.Path)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return nil, false
	}
	return s, err == nil
}

// User returns the signed-in user's name, or "" for an anonymous visitor.
func User(s *httpsession.Session) string {
	name, err := httpsession.GetAs[string](s, userKey)
	if err != nil {
		return ""
	}
	return name
}

// RequireLogin lets signed-in users through to next and sends everyone else
// to /login?next=<this page> with a 303. It writes no session for them: an
// anonymous hit on a protected page must not create a record, or anyone
// could fill the store by requesting it. It must run inside the session
// middleware.
func RequireLogin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := session(w, r)
		if !ok {
			return
		}
		if User(s) == "" {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// localPath returns next if it is a path on this site, else "/": a login
// form must not redirect to another site (an open redirect).
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

// Home shows the user name or "Anonymous" and any flash messages.
func (a *Handlers) Home(w http.ResponseWriter, r *http.Request) {
	s, ok := session(w, r)
	if !ok {
		return
	}
	render(w, s, homePage, http.StatusOK, page{Title: "Home"})
}

// Account is the page for signed-in users; route it behind RequireLogin.
func (a *Handlers) Account(w http.ResponseWriter, r *http.Request) {
	s, ok := session(w, r)
	if !ok {
		return
	}
	render(w, s, accountPage, http.StatusOK, page{
		Title:   "Account",
		Created: s.Created().UTC().Format(time.RFC3339),
		Expires: s.Expires().UTC().Format(time.RFC3339),
	})
}

// LoginForm shows the login form.
func (a *Handlers) LoginForm(w http.ResponseWriter, r *http.Request) {
	s, ok := session(w, r)
	if !ok {
		return
	}
	p := page{Title: "Log in", Next: r.URL.Query().Get("next")}
	if p.Next != "" {
		p.Notice = "Please log in"
	}
	render(w, s, loginPage, http.StatusOK, p)
}

// Login checks the form, starts the user's session with a new identity and redirects home.
func (a *Handlers) Login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	name, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	next := r.PostForm.Get("next")
	remember := r.PostForm.Get("remember") != ""

	s, ok := session(w, r)
	if !ok {
		return
	}
	if !a.users.Check(name, password) {
		render(w, s, loginPage, http.StatusOK, page{
			Title:    "Log in",
			Error:    "Unknown user name or wrong password.",
			Username: name,
			Next:     next,
		})
		return
	}

	// Session fixation defence: the signed-in session gets a new ID (a
	// fresh seal for cookie stores); a cookie planted before the login is
	// worth nothing afterwards.
	s.NewIdentity()
	s.Flashes() // drop messages meant for the anonymous visitor
	if err := s.Set(userKey, name); err != nil {
		serverError(w, err)
		return
	}
	if remember {
		s.SetLifetime(RememberLifetime) // kept in the record's metadata
		s.SetPersistent(true)           // cookie with Max-Age and Expires
	} else {
		s.SetLifetime(0)       // the middleware's default lifetime
		s.SetPersistent(false) // cookie ends when the browser closes
	}
	if err := s.AddFlash("Welcome back, " + name); err != nil {
		serverError(w, err)
		return
	}
	http.Redirect(w, r, localPath(next), http.StatusSeeOther)
}

// Logout ends the session and redirects home.
func (a *Handlers) Logout(w http.ResponseWriter, r *http.Request) {
	s, ok := session(w, r)
	if !ok {
		return
	}
	// Invalidate deletes the server-side record and drops the data; the
	// flash then starts a brand-new session under a new ID.
	s.Invalidate()
	if err := s.AddFlash("Logged out"); err != nil {
		serverError(w, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// page is what the templates see.
type page struct {
	Title    string
	User     string // "" for an anonymous visitor
	Flashes  []string
	Notice   string // login form: why the visitor was sent there
	Next     string // login form: the page to return to
	Error    string // login form error
	Username string // login form: the name typed last time
	Created  string // account page
	Expires  string // account page
}

// render fills in the session's user and flashes and writes the page. The
// page is rendered into a buffer first, so a template error never leaves a
// half-written page, and every session change (Flashes clears them) is made
// before the first byte, when the middleware saves the session.
func render(w http.ResponseWriter, s *httpsession.Session, t *template.Template, status int, p page) {
	p.User = User(s)
	p.Flashes = s.Flashes()
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		serverError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store") // pages are per user
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func serverError(w http.ResponseWriter, err error) {
	slog.Error("loginapp", "err", err)
	http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
}
