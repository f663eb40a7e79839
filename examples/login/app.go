// This file is the login application: pages, login check and templates. It
// is the same file in examples/login, redis, memcached, chi and gorilla (a
// test keeps the copies equal); main.go beside it chooses the session store
// and routes the pages. Copy both files to start your own.
//
// To add a page: write its handler below, add its template to the pages
// map, and route it in main.go (behind requireLogin if it is private).
//
// Logging in binds the session to the user (SetOwner), so the user's
// sessions can be listed and revoked on the "Sessions" page.

package main

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

// rememberLifetime is the session lifetime when "remember me" is ticked.
const rememberLifetime = 30 * 24 * time.Hour

// users maps the demo accounts to their passwords. A real application keeps
// password hashes (bcrypt, scrypt or argon2id), never the passwords.
var users = map[string]string{"alice": "wonderland", "bob": "builder"}

// checkPassword compares fixed-size digests in constant time and does the
// same work for unknown users, so the response time tells an attacker
// neither how much of a password matched nor which names exist.
func checkPassword(name, password string) bool {
	want, known := users[name]
	got, exp := sha256.Sum256([]byte(password)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(got[:], exp[:]) == 1 && known
}

// session returns the request's session. On false the response is taken
// care of: on a store error the middleware's error handler answers (503
// when the store is down), so the handler just returns.
func session(w http.ResponseWriter, r *http.Request) (*httpsession.Session, bool) {
	s, err := httpsession.Get(r)
	if errors.Is(err, httpsession.ErrNoMiddleware) { // a wiring mistake: nobody else would answer
		slog.Error("handler mounted outside the session middleware", "path", r.URL.Path)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return nil, false
	}
	return s, err == nil
}

// currentUser is the signed-in user's name, or "" for a visitor.
func currentUser(s *httpsession.Session) string { return s.Owner() }

// sessionOptions are the middleware's options for store. The "Sessions"
// page lists each user's sessions: server stores keep those lists
// themselves; a cookie store needs a server store for them
// (WithCookieRevocation), here this process's memory, with no staleness. An
// application with several processes would give it its Redis store.
func sessionOptions(store httpsession.Store) []httpsession.Option {
	if _, ok := store.(httpsession.OwnerStore); ok {
		return nil
	}
	return []httpsession.Option{httpsession.WithCookieRevocation(httpsession.NewMemoryStore(), 0)}
}

// requireLogin lets signed-in users through to next and sends everyone
// else to /login?next=<this page>. It writes no session for them: anonymous
// hits on a private page must not be able to fill the store.
func requireLogin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := session(w, r)
		if !ok {
			return
		}
		if currentUser(s) == "" {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// localPath returns next if it is a path on this site, else "/": the login
// form must not send anyone to another site (an open redirect).
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

func home(w http.ResponseWriter, r *http.Request) {
	if s, ok := session(w, r); ok {
		render(w, s, "home", page{Title: "Home"})
	}
}

// account is private: route it behind requireLogin.
func account(w http.ResponseWriter, r *http.Request) {
	if s, ok := session(w, r); ok {
		render(w, s, "account", page{Title: "Account", Created: s.Created(), Expires: s.Expires()})
	}
}

func loginForm(w http.ResponseWriter, r *http.Request) {
	if s, ok := session(w, r); ok {
		p := page{Title: "Log in", Next: r.URL.Query().Get("next")}
		if p.Next != "" {
			p.Notice = "Please log in"
		}
		render(w, s, "login", p)
	}
}

func login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	name, next := r.PostForm.Get("username"), r.PostForm.Get("next")
	s, ok := session(w, r)
	if !ok {
		return
	}
	if !checkPassword(name, r.PostForm.Get("password")) {
		render(w, s, "login", page{Title: "Log in", Error: "Unknown user name or wrong password.", Username: name, Next: next})
		return
	}
	// Bind the session to the user: a new session ID (a fresh seal for
	// cookie stores), so a cookie planted before the login is worth nothing
	// afterwards; a full lifetime from now; and a place in the user's list
	// of sessions, labelled with a coarse device name.
	if err := s.SetOwner(name); err != nil {
		serverError(w, err)
		return
	}
	s.SetLabel(deviceName(r.UserAgent()))
	s.Flashes() // drop messages meant for the anonymous visitor
	remember := r.PostForm.Get("remember") != ""
	if remember {
		s.SetLifetime(rememberLifetime) // kept in the record's metadata
	} else {
		s.SetLifetime(0) // the middleware's default lifetime
	}
	s.SetPersistent(remember) // without it the cookie ends when the browser closes
	if err := s.AddFlash("Welcome back, " + name); err != nil {
		serverError(w, err)
		return
	}
	http.Redirect(w, r, localPath(next), http.StatusSeeOther)
}

func logout(w http.ResponseWriter, r *http.Request) {
	s, ok := session(w, r)
	if !ok {
		return
	}
	s.Invalidate() // ends the session on the server; the flash starts a new one
	if err := s.AddFlash("Logged out"); err != nil {
		serverError(w, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// sessionsPage is the "Sessions" page: the user's sessions, this one marked;
// private, so route it behind requireLogin.
func sessionsPage(w http.ResponseWriter, r *http.Request) {
	s, ok := session(w, r)
	if !ok {
		return
	}
	list, err := s.ListSessions()
	if err != nil {
		serverError(w, err)
		return
	}
	render(w, s, "sessions", page{Title: "Sessions", Sessions: list})
}

// revokeSession ends one of the user's sessions (POST handle=...), then
// shows the list again. Handles name sessions without opening them, and
// only the user's own sessions can be revoked.
func revokeSession(w http.ResponseWriter, r *http.Request) {
	s, ok := session(w, r)
	if !ok {
		return
	}
	if err := s.RevokeSession(r.PostFormValue("handle")); err != nil {
		serverError(w, err)
		return
	}
	_ = s.AddFlash("Session revoked")
	http.Redirect(w, r, "/sessions", http.StatusSeeOther)
}

// revokeOthers is "log out other devices": every session of the user but
// this one ends.
func revokeOthers(w http.ResponseWriter, r *http.Request) {
	s, ok := session(w, r)
	if !ok {
		return
	}
	if err := s.RevokeOwner(true); err != nil {
		serverError(w, err)
		return
	}
	_ = s.AddFlash("Logged out of every other device")
	http.Redirect(w, r, "/sessions", http.StatusSeeOther)
}

// deviceName is a coarse name for the browser that sent userAgent, enough
// for a user to tell their sessions apart, and no more.
func deviceName(userAgent string) string {
	browser, system := "A browser", ""
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"Chrome/", "Chrome"},
		{"Safari/", "Safari"}, {"curl/", "curl"}, {"Go-http-client", "A Go program"},
	} {
		if strings.Contains(userAgent, b.token) {
			browser = b.name
			break
		}
	}
	for _, o := range []struct{ token, name string }{
		{"Android", "Android"}, {"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Windows", "Windows"},
		{"Mac OS X", "macOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(userAgent, o.token) {
			system = " on " + o.name
			break
		}
	}
	return browser + system
}

// page is what the templates see.
type page struct {
	Title            string
	User             string // "" for a visitor
	Flashes          []string
	Notice, Error    string // login form: why the visitor is there; what went wrong
	Next, Username   string // login form: the page to return to; the name typed last time
	Created, Expires time.Time
	Sessions         []httpsession.SessionInfo // the sessions page: the user's sessions
}

// render fills in the user and the flashes and writes the page. It renders
// into a buffer first, so a template error never leaves half a page, and
// the session's changes (Flashes clears them) come before the first byte,
// when the middleware saves the session.
func render(w http.ResponseWriter, s *httpsession.Session, name string, p page) {
	p.User, p.Flashes = currentUser(s), s.Flashes()
	var buf bytes.Buffer
	if err := pages[name].Execute(&buf, p); err != nil {
		serverError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store") // pages are per user
	_, _ = w.Write(buf.Bytes())
}

func serverError(w http.ResponseWriter, err error) {
	slog.Error("server error", "err", err)
	http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
}

// layout frames every page; each page defines "content".
const layout = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Example app</title>
<style>
body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: #1f2328; background: #f4f5f7; }
nav { display: flex; gap: 1.25rem; align-items: center; padding: .75rem 1.5rem; background: #24292f; color: #fff; }
nav a { color: #fff; } nav form { margin: 0 0 0 auto; }
main { max-width: 30rem; margin: 2rem auto; padding: 1.5rem 2rem; background: #fff; border-radius: 8px; box-shadow: 0 1px 3px #0002; }
.flash, .notice, .error { padding: .5rem .75rem; border-radius: 6px; background: #e6f4ea; }
.notice { background: #fff4d6; } .error { background: #fde7e9; }
label { display: block; margin: .75rem 0; }
input:not([type=checkbox]) { display: block; width: 100%; box-sizing: border-box; padding: .4rem; }
button { padding: .4rem 1rem; cursor: pointer; }
table { width: 100%; border-collapse: collapse; margin: 1rem 0; } td { padding: .4rem 0; border-top: 1px solid #d0d7de; vertical-align: top; }
td form { margin: 0; text-align: right; } .current { color: #1a7f37; font-weight: 600; } small { color: #59636e; }
</style></head>
<body>
<nav><a href="/">Home</a> <a href="/account">Account</a> <a href="/sessions">Sessions</a>
{{if .User}}<form method="post" action="/logout">Signed in as <b id="user">{{.User}}</b> <button>Log out</button></form>
{{else}}<span style="margin-left: auto"><b id="user">Anonymous</b> · <a href="/login">Log in</a></span>{{end}}</nav>
<main>
{{range .Flashes}}<p class="flash">{{.}}</p>
{{end}}{{template "content" .}}
</main>
</body></html>
`

// when is how the pages show a time: readable, with the exact time in the
// datetime attribute.
const when = `{{define "when"}}<time datetime="{{.UTC.Format "2006-01-02T15:04:05Z07:00"}}">{{.UTC.Format "Mon 2 Jan 2006, 15:04 MST"}}</time>{{end}}`

// pages are the templates by name, each framed by layout.
var pages = parsePages(map[string]string{
	"home": `<h1>Home</h1>
{{if .User}}<p>Hello, {{.User}}. Your <a href="/account">account page</a> is open to you.</p>
{{else}}<p>Hello, stranger. The <a href="/account">account page</a> needs you to <a href="/login">log in</a>
(try alice / wonderland or bob / builder).</p>{{end}}`,

	"login": `<h1>Log in</h1>
{{if .Notice}}<p class="notice">{{.Notice}}</p>
{{end}}{{if .Error}}<p class="error">{{.Error}}</p>
{{end}}<form method="post" action="/login">
{{if .Next}}<input type="hidden" name="next" value="{{.Next}}">
{{end}}<label>User name <input name="username" value="{{.Username}}" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<label><input name="remember" type="checkbox" value="1"> Remember me for 30 days</label>
<button>Log in</button>
</form>`,

	"sessions": `<h1>Your sessions</h1>
<p>Every browser signed in as {{.User}}. Revoke one you do not recognise: it is logged out at once.</p>
<table>{{range .Sessions}}
<tr class="session" data-handle="{{.Handle}}"><td><b>{{or .Label "Unknown device"}}</b>{{if .Current}} <span class="current">· this browser</span>{{end}}<br>
<small>Signed in {{template "when" .Created}} · last active {{template "when" .LastActive}}</small></td>
<td>{{if not .Current}}<form method="post" action="/sessions/revoke"><input type="hidden" name="handle" value="{{.Handle}}"><button>Revoke</button></form>{{end}}</td></tr>
{{end}}</table>
<form method="post" action="/sessions/revoke-others"><button>Log out other devices</button></form>`,

	"account": `<h1>Account</h1>
<p>This page is only for signed-in users. You are <b>{{.User}}</b>.</p>
<p>Signed in since <span id="created">{{template "when" .Created}}</span>;
the session ends <span id="expires">{{template "when" .Expires}}</span> at the latest.</p>`,
})

func parsePages(contents map[string]string) map[string]*template.Template {
	m := make(map[string]*template.Template, len(contents))
	for name, content := range contents {
		t := template.Must(template.New("layout").Parse(layout + when))
		template.Must(t.New("content").Parse(content))
		m[name] = t
	}
	return m
}
