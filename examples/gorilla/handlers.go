package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"html/template"
	"net/http"

	"github.com/go-httpsession/httpsession"
)

// users are the demo accounts. A real application keeps password hashes
// (bcrypt, scrypt or argon2id), never the passwords.
var users = map[string]string{"alice": "wonderland", "bob": "builder"}

// checkPassword compares fixed-size digests in constant time, and does the
// same work for unknown users.
func checkPassword(name, password string) bool {
	want, known := users[name]
	got, exp := sha256.Sum256([]byte(password)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(got[:], exp[:]) == 1 && known
}

// session returns the request's session. When it reports false the
// response is taken care of: on a store error the session middleware
// answers (503 when the store is down), so the handler just returns.
func session(w http.ResponseWriter, r *http.Request) (*httpsession.Session, bool) {
	s, err := httpsession.Get(r)
	if errors.Is(err, httpsession.ErrNoMiddleware) { // a wiring mistake
		http.Error(w, "session middleware missing", http.StatusInternalServerError)
	}
	return s, err == nil
}

// user returns the signed-in user's name, or "" for an anonymous visitor.
func user(s *httpsession.Session) string {
	name, _ := httpsession.GetAs[string](s, "user")
	return name
}

// requireLogin lets signed-in users through and sends everyone else to
// /login with a flash.
func requireLogin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := session(w, r)
		if !ok {
			return
		}
		if user(s) == "" {
			_ = s.AddFlash("Please log in") // fails only once the response has started
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func home(w http.ResponseWriter, r *http.Request) {
	if s, ok := session(w, r); ok {
		render(w, s, view{Title: "Home"})
	}
}

func account(w http.ResponseWriter, r *http.Request) {
	if s, ok := session(w, r); ok {
		render(w, s, view{Title: "Account"})
	}
}

func loginForm(w http.ResponseWriter, r *http.Request) {
	if s, ok := session(w, r); ok {
		render(w, s, view{Title: "Log in"})
	}
}

func login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	name := r.PostForm.Get("username")
	s, ok := session(w, r)
	if !ok {
		return
	}
	if !checkPassword(name, r.PostForm.Get("password")) {
		render(w, s, view{Title: "Log in", Error: "Unknown user name or wrong password."})
		return
	}
	s.NewIdentity() // a new session ID (or seal) at login defeats session fixation
	s.Flashes()     // drop "Please log in"
	if err := s.Set("user", name); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_ = s.AddFlash("Welcome back, " + name)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func logout(w http.ResponseWriter, r *http.Request) {
	s, ok := session(w, r)
	if !ok {
		return
	}
	s.Invalidate()               // deletes the server-side record, expires the cookie
	_ = s.AddFlash("Logged out") // starts a new, anonymous session
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// view is what the page template sees.
type view struct {
	Title   string
	User    string
	Flashes []string
	Error   string
}

// render writes the page. It reads the session first (Flashes clears the
// messages): every session change must come before the response's first
// byte, when the middleware saves the session.
func render(w http.ResponseWriter, s *httpsession.Session, v view) {
	v.User, v.Flashes = user(s), s.Flashes()
	var buf bytes.Buffer
	if err := page.Execute(&buf, v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store") // pages are per user
	_, _ = w.Write(buf.Bytes())
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body>
<nav><a href="/">Home</a> <a href="/account">Account</a>
{{if .User}}Signed in as <b id="user">{{.User}}</b>
<form method="post" action="/logout"><button>Log out</button></form>
{{else}}<b id="user">Anonymous</b> <a href="/login">Log in</a>
{{end}}</nav>
{{range .Flashes}}<p class="flash">{{.}}</p>
{{end}}<h1>{{.Title}}</h1>
{{if eq .Title "Log in"}}{{with .Error}}<p class="error">{{.}}</p>
{{end}}<form method="post" action="/login">
<label>User name <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button>Log in</button>
</form>
{{else if eq .Title "Account"}}<p>Only signed-in users see this page.</p>
{{else}}<p>Hello, {{or .User "stranger"}}.</p>
{{end}}</body>
</html>
`))
