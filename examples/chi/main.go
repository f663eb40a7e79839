// Command chi is httpsession's login example on the chi router
// (github.com/go-chi/chi/v5): the session middleware goes in with the
// router's own Use, and a route group with its own Use keeps the account
// page for signed-in users.
//
//	cd examples/chi && go run . -addr 127.0.0.1:8080
//
// Log in as alice / wonderland or bob / builder. Sessions live in this
// process's memory, so logout ends them on the server; any other
// httpsession.Store fits newRouter unchanged.
//
// This directory is a Go module of its own, so that chi stays out of the
// library's go.mod. The pages are the login example's, in app.go; what
// this file shows is routing them with chi.
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-httpsession/httpsession"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()

	router, err := newRouter(httpsession.NewMemoryStore())
	if err != nil {
		log.Fatal(err)
	}
	// Bind first: a taken port is reported plainly, before "listening".
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on http://%s/", *addr)
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// newRouter returns the application with its sessions in store.
func newRouter(store httpsession.Store) (http.Handler, error) {
	sessions, err := httpsession.Middleware(store, sessionOptions(store)...)
	if err != nil {
		return nil, err
	}

	r := chi.NewRouter()
	r.Use(http.NewCrossOriginProtection().Handler) // refuses cross-origin POSTs (CSRF)
	r.Use(sessions)

	r.Get("/", home)
	r.Get("/login", loginForm)
	r.Post("/login", login)
	r.Post("/logout", logout)

	// Routes for signed-in users only.
	r.Group(func(r chi.Router) {
		r.Use(requireLogin)
		r.Get("/account", account)
		r.Get("/sessions", sessionsPage)
		r.Post("/sessions/revoke", revokeSession)
		r.Post("/sessions/revoke-others", revokeOthers)
	})
	return r, nil
}
