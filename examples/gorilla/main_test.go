package main

import (
	"testing"

	"github.com/go-httpsession/httpsession"
	"github.com/go-httpsession/httpsession/examples/internal/loginapp/loginapptest"
)

// TestLoginFlow runs the login example's end-to-end flow (a real server on a
// loopback port, a cookie-jar client) through this router, once with a
// server-side store and once with a cookie store.
func TestLoginFlow(t *testing.T) {
	nacl, err := httpsession.NewNaClCookieStore([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		store      httpsession.Store
		serverSide bool
	}{
		{"MemoryStore", httpsession.NewMemoryStore(), true},
		{"NaClCookieStore", nacl, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := newRouter(tc.store)
			if err != nil {
				t.Fatal(err)
			}
			loginapptest.Run(t, h, tc.serverSide)
		})
	}
}
