// Command sqlite is the login example with its sessions in a SQLite file:
// they survive a restart of the process, with no database server at all.
//
//	go run . -addr 127.0.0.1:8080 -db sessions.db
//
// Log in as alice / wonderland or bob / builder, stop the program, start it
// again: you are still logged in. Logout deletes the session's row, so a
// copy of the cookie is worthless afterwards.
//
// The driver is modernc.org/sqlite, pure Go (no cgo). It lives in this
// module of its own, so the library's go.mod names no SQL driver.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"flag"
	"html/template"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	_ "modernc.org/sqlite"

	"github.com/go-httpsession/httpsession"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	path := flag.String("db", "sessions.db", "SQLite database file")
	flag.Parse()

	db, err := openDB(*path)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	handler, err := newServer(context.Background(), db)
	if err != nil {
		log.Fatal(err)
	}
	// Bind first: a taken port is reported plainly, before "listening".
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	slog.Info("listening", "url", "http://"+*addr+"/", "db", *path)
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// openDB opens the SQLite file in WAL mode with a busy timeout, so that
// concurrent requests wait for each other's writes instead of failing.
func openDB(path string) (*sql.DB, error) {
	return sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)")
}

// newServer creates the sessions table if needed, deletes the rows that
// expired while the program was stopped, and returns the application.
// While it runs, every 10th new session deletes a few expired rows, so no
// background goroutine is needed.
func newServer(ctx context.Context, db *sql.DB) (http.Handler, error) {
	backend := httpsession.NewSQLBackend(db, httpsession.DialectSQLite)
	if err := backend.CreateTable(ctx); err != nil {
		return nil, err
	}
	if n, err := backend.DeleteExpired(ctx); err != nil {
		return nil, err
	} else if n > 0 {
		slog.Info("deleted expired sessions", "count", n)
	}
	store := httpsession.NewServerStore(backend, httpsession.WithTimeout(5*time.Second))
	sessions, err := httpsession.Middleware(store)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", home)
	mux.HandleFunc("GET /login", loginForm)
	mux.HandleFunc("POST /login", login)
	mux.HandleFunc("POST /logout", logout)
	mux.HandleFunc("GET /account", account)
	// SameSite=Lax keeps the cookie off other sites' POSTs;
	// CrossOriginProtection also stops forged logins.
	return http.NewCrossOriginProtection().Handler(sessions(mux)), nil
}

// users maps names to passwords. A real application keeps password hashes
// (bcrypt, scrypt or argon2id), never the passwords.
var users = map[string]string{"alice": "wonderland", "bob": "builder"}

// checkPassword compares digests in constant time, and does the same work
// for unknown users.
func checkPassword(name, password string) bool {
	want, known := users[name]
	got, exp := sha256.Sum256([]byte(password)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(got[:], exp[:]) == 1 && known
}

// session returns the request's session; false means the middleware's
// error handler answered (503 when the database is down).
func session(r *http.Request) (*httpsession.Session, bool) {
	s, err := httpsession.Get(r)
	return s, err == nil
}

func user(s *httpsession.Session) string {
	name, _ := httpsession.GetAs[string](s, "user")
	return name
}

func home(w http.ResponseWriter, r *http.Request) {
	if s, ok := session(r); ok {
		render(w, s, homePage, page{Title: "Home"})
	}
}

func loginForm(w http.ResponseWriter, r *http.Request) {
	if s, ok := session(r); ok {
		render(w, s, loginPage, page{Title: "Log in", Next: r.URL.Query().Get("next")})
	}
}

func login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	s, ok := session(r)
	if !ok {
		return
	}
	name, next := r.PostForm.Get("username"), r.PostForm.Get("next")
	if !checkPassword(name, r.PostForm.Get("password")) {
		render(w, s, loginPage, page{Title: "Log in", Error: "Unknown user name or wrong password.", Next: next})
		return
	}
	s.NewIdentity() // a session ID planted before the login is worth nothing after it
	if err := s.Set("user", name); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_ = s.AddFlash("Welcome back, " + name)
	http.Redirect(w, r, localPath(next), http.StatusSeeOther)
}

func logout(w http.ResponseWriter, r *http.Request) {
	if s, ok := session(r); ok {
		s.Invalidate() // deletes the row
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
}

// account is for signed-in users; others are sent to the login form,
// without a session being written for them.
func account(w http.ResponseWriter, r *http.Request) {
	s, ok := session(r)
	if !ok {
		return
	}
	if user(s) == "" {
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	render(w, s, accountPage, page{Title: "Account", Created: s.Created().UTC().Format(time.RFC3339)})
}

// localPath returns next if it is a path on this site, else "/".
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

type page struct {
	Title, User, Next, Error, Created string
	Flashes                           []string
}

// render writes the page after every session change (Flashes consumes
// them), so the middleware saves the session before the first byte.
func render(w http.ResponseWriter, s *httpsession.Session, t *template.Template, p page) {
	p.User, p.Flashes = user(s), s.Flashes()
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

const layout = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · httpsession SQLite example</title></head>
<body>
<nav><a href="/">Home</a> <a href="/account">Account</a>
{{if .User}}Signed in as <b id="user">{{.User}}</b> <form method="post" action="/logout" style="display:inline"><button>Log out</button></form>
{{else}}<b id="user">Anonymous</b> <a href="/login">Log in</a>{{end}}</nav>
{{range .Flashes}}<p class="flash">{{.}}</p>{{end}}
<main>{{template "content" .}}</main>
</body></html>
`

var (
	homePage = parsePage(`<h1>Home</h1>
{{if .User}}<p>Hello, {{.User}}. Stop the program and start it again: you are still signed in.</p>
{{else}}<p>Hello, stranger. <a href="/login">Log in</a> as alice / wonderland or bob / builder.</p>{{end}}`)
	loginPage = parsePage(`<h1>Log in</h1>
{{if .Error}}<p class="error">{{.Error}}</p>{{end}}
<form method="post" action="/login">
{{if .Next}}<input type="hidden" name="next" value="{{.Next}}">{{end}}
<label>User name <input name="username" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button>Log in</button>
</form>`)
	accountPage = parsePage(`<h1>Account</h1>
<p>Only for signed-in users. You are <b>{{.User}}</b>; your session started <span id="created">{{.Created}}</span>.</p>`)
)

func parsePage(content string) *template.Template {
	t := template.Must(template.New("layout").Parse(layout))
	template.Must(t.New("content").Parse(content))
	return t
}
