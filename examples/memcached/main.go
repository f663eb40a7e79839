// Command memcached is the login example (examples/login) with its sessions
// in Memcached, spread over one or more servers.
//
//	go run ./examples/memcached -addr 127.0.0.1:8080 -memcached 127.0.0.1:11211,127.0.0.1:11212
//
// Log in as alice / wonderland or bob / builder. Because the session lives
// on the server, logout deletes it there: a copy of the cookie is worthless
// afterwards. Memcached may evict sessions under memory pressure; that logs
// the user out.
//
// This file wires the store and the routes; the pages are in app.go.
package main

import (
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/go-httpsession/httpsession"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	servers := flag.String("memcached", "127.0.0.1:11211", "comma-separated list of Memcached servers (host:port)")
	flag.Parse()

	client, err := newClient(*servers)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	// Fail at start rather than on the first request. Once running, an
	// unreachable server makes the requests whose sessions live on it
	// answer 503; nobody is logged out.
	if err := client.Ping(); err != nil {
		log.Fatalf("memcached %s: %v", *servers, err)
	}

	store := httpsession.NewMemcachedStore(client, httpsession.WithTimeout(time.Second))
	handler, err := newServer(store)
	if err != nil {
		log.Fatal(err)
	}
	// Bind first: a taken port is reported plainly, before "listening".
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	slog.Info("listening", "url", "http://"+*addr+"/", "memcached", *servers)
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// newServer returns the application with its sessions in store, behind
// CrossOriginProtection, which refuses cross-origin POSTs (CSRF).
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
	return http.NewCrossOriginProtection().Handler(sessions(mux)), nil
}

// newClient returns a client that spreads keys over the listed servers.
func newClient(servers string) (*memcache.Client, error) {
	var list []string
	for s := range strings.SplitSeq(servers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			list = append(list, s)
		}
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("-memcached: no server given")
	}
	ss := new(memcache.ServerList)
	if err := ss.SetServers(list...); err != nil {
		return nil, fmt.Errorf("-memcached: %w", err)
	}
	return memcache.NewFromSelector(ss), nil
}
