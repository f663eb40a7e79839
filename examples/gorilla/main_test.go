package main

import (
	"testing"

	"github.com/go-httpsession/httpsession/examples/internal/loginapptest"
)

// TestLoginFlow runs the login example's end-to-end flow (a real server on a
// loopback port, a cookie-jar client) through the gorilla/mux router, with a
// server-side and a cookie store.
func TestLoginFlow(t *testing.T) { loginapptest.RunStores(t, newRouter) }
