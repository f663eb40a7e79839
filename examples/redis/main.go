// Command redis is the login example (examples/login) with its sessions in
// Redis: a single node, or a Redis Cluster given as a list of nodes.
//
//	go run ./examples/redis -addr 127.0.0.1:8080 -redis 127.0.0.1:6379
//	go run ./examples/redis -redis 127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002
//
// Log in as alice / wonderland or bob / builder. Because the session lives
// on the server, logout deletes it there: a copy of the cookie is worthless
// afterwards, and several instances of this program can share the sessions.
//
// This file wires the store and the routes; the pages are in app.go.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-httpsession/httpsession"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	redisAddrs := flag.String("redis", "127.0.0.1:6379", "Redis address, or a comma-separated list of Redis Cluster nodes")
	flag.Parse()

	client, err := newClient(*redisAddrs)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	// Fail at start rather than on the first request. Once running, a Redis
	// outage makes session requests answer 503; nobody is logged out.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err = client.Ping(ctx).Err()
	cancel()
	if err != nil {
		log.Fatalf("redis %s: %v", *redisAddrs, err)
	}

	store := httpsession.NewRedisStore(client, httpsession.WithTimeout(time.Second))
	handler, err := newServer(store)
	if err != nil {
		log.Fatal(err)
	}
	// Bind first: a taken port is reported plainly, before "listening".
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	slog.Info("listening", "url", "http://"+*addr+"/", "redis", *redisAddrs)
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

// newClient returns a client for one Redis node, or for a Redis Cluster
// when addrs lists several nodes (redis.NewUniversalClient decides).
// ContextTimeoutEnabled lets the request's context and the store's
// WithTimeout bound every Redis call; without it go-redis applies only its
// own read and write timeouts.
func newClient(addrs string) (redis.UniversalClient, error) {
	var list []string
	for a := range strings.SplitSeq(addrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			list = append(list, a)
		}
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("-redis: no address given")
	}
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 list,
		ContextTimeoutEnabled: true,
	}), nil
}
