// Command basic is httpsession's smallest example: it remembers when you
// last visited, in an encrypted NaCl cookie.
//
//	go run ./examples/basic -addr 127.0.0.1:8080
//
// The key comes from HTTPSESSION_KEY (32 bytes, standard base64, e.g.
// `openssl rand -base64 32`). Without it a random key is generated at start,
// so sessions do not survive a restart.
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
	flag.Parse()

	key, err := loadKey()
	if err != nil {
		log.Fatal(err)
	}
	store, err := httpsession.NewNaClCookieStore(key)
	if err != nil {
		log.Fatal(err)
	}
	sessions, err := httpsession.Middleware(store)
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", lastVisited)

	// Bind first: a taken port is reported plainly, before "listening".
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	slog.Info("listening", "url", "http://"+*addr+"/")
	srv := &http.Server{Handler: sessions(mux), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// lastVisited shows the time of the previous visit and records this one.
func lastVisited(w http.ResponseWriter, r *http.Request) {
	session, err := httpsession.Get(r)
	if err != nil {
		return // the middleware's error handler answers
	}
	last := "None"
	if t, err := httpsession.GetAs[time.Time](session, "last_visit"); err == nil {
		last = t.Format(time.RFC3339)
	}
	if err := session.Set("last_visit", time.Now().UTC().Truncate(time.Second)); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "Last visited: %s\n", last)
}

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
