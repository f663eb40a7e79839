// Command gorilla is httpsession's login example on gorilla/mux
// (github.com/gorilla/mux): the session middleware goes in with the
// router's own Use, and a subrouter with its own Use keeps the account page
// for signed-in users.
//
//	cd examples/gorilla && go run . -addr 127.0.0.1:8080
//
// Log in as alice / wonderland or bob / builder. Sessions live in this
// process's memory, so logout ends them on the server; any other
// httpsession.Store fits newRouter unchanged.
//
// This directory is a Go module of its own, so that gorilla/mux stays out
// of the library's go.mod. The pages are the login example's, in app.go;
// what this file shows is routing them with gorilla/mux.
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/go-httpsession/httpsession"
	"github.com/gorilla/mux"
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

	r := mux.NewRouter()
	// mux runs middleware only for a request that matched a route.
	r.Use(http.NewCrossOriginProtection().Handler) // refuses cross-origin POSTs (CSRF)
	r.Use(sessions)

	r.HandleFunc("/", home).Methods(http.MethodGet)
	r.HandleFunc("/login", loginForm).Methods(http.MethodGet)
	r.HandleFunc("/login", login).Methods(http.MethodPost)
	r.HandleFunc("/logout", logout).Methods(http.MethodPost)

	// Routes for signed-in users only.
	private := r.NewRoute().Subrouter()
	private.Use(requireLogin)
	private.HandleFunc("/account", account).Methods(http.MethodGet)
	private.HandleFunc("/sessions", sessionsPage).Methods(http.MethodGet)
	private.HandleFunc("/sessions/revoke", revokeSession).Methods(http.MethodPost)
	private.HandleFunc("/sessions/revoke-others", revokeOthers).Methods(http.MethodPost)
	return r, nil
}
