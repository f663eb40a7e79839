// Command login is httpsession's login example: a login form, logout, a
// page only signed-in users may see, flash messages and "remember me".
//
//	go run ./examples/login -addr 127.0.0.1:8080
//
// Log in as alice / wonderland or bob / builder. Sessions live in an
// encrypted NaCl cookie by default; the key comes from HTTPSESSION_KEY (32
// bytes, standard base64, e.g. `openssl rand -base64 32`), or is generated at
// start with a warning, so sessions do not survive a restart. With
// -store memory they live in this process's memory instead. Either way the
// "Sessions" page lists the user's sessions and revokes them: the cookie
// store is made revocable with WithCookieRevocation (see app.go).
//
// This file wires the store and the routes; the pages are in app.go.
package main

import (
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/go-httpsession/httpsession"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	storeName := flag.String("store", "nacl", `session store: "nacl" (encrypted cookie) or "memory" (server-side, this process only)`)
	flag.Parse()

	store, err := newStore(*storeName)
	if err != nil {
		log.Fatal(err)
	}
	handler, err := newServer(store)
	if err != nil {
		log.Fatal(err)
	}
	// Bind first: a taken port is reported plainly, before "listening".
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	slog.Info("listening", "url", "http://"+*addr+"/", "store", *storeName)
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// newServer returns the application with its sessions in store.
func newServer(store httpsession.Store) (http.Handler, error) {
	sessions, err := httpsession.Middleware(store, sessionOptions(store)...)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", home)
	mux.HandleFunc("GET /login", loginForm)
	mux.HandleFunc("POST /login", login)
	mux.HandleFunc("POST /logout", logout)
	mux.Handle("GET /account", requireLogin(http.HandlerFunc(account)))
	mux.Handle("GET /sessions", requireLogin(http.HandlerFunc(sessionsPage)))
	mux.Handle("POST /sessions/revoke", requireLogin(http.HandlerFunc(revokeSession)))
	mux.Handle("POST /sessions/revoke-others", requireLogin(http.HandlerFunc(revokeOthers)))
	// The cookie is SameSite=Lax, so other sites' POSTs come without it,
	// and CrossOriginProtection refuses cross-origin POSTs outright: Lax
	// alone would not stop a forged login, which needs no cookie.
	return http.NewCrossOriginProtection().Handler(sessions(mux)), nil
}

// newStore builds the store the -store flag names.
func newStore(name string) (httpsession.Store, error) {
	switch name {
	case "nacl":
		key, err := loadKey()
		if err != nil {
			return nil, err
		}
		return httpsession.NewNaClCookieStore(key)
	case "memory":
		return httpsession.NewMemoryStore(), nil
	default:
		return nil, fmt.Errorf("-store %q: want nacl or memory", name)
	}
}

// loadKey reads the 32-byte NaCl key from HTTPSESSION_KEY, or makes a
// random one.
func loadKey() ([]byte, error) {
	if s := os.Getenv("HTTPSESSION_KEY"); s != "" {
		key, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("HTTPSESSION_KEY: %w", err)
		}
		return key, nil
	}
	slog.Warn("HTTPSESSION_KEY is not set: using a random key; sessions end when the server restarts")
	key := make([]byte, 32)
	_, err := rand.Read(key)
	return key, err
}
