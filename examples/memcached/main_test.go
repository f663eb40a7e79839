package main

import (
	"crypto/rand"
	"testing"

	"github.com/go-httpsession/httpsession"
	"github.com/go-httpsession/httpsession/examples/internal/loginapptest"
)

func TestLoginMemcached(t *testing.T) {
	client, err := newClient(loginapptest.ServerAddr(t, "HTTPSESSION_MEMCACHED_ADDRS"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	// A prefix of its own keeps this test's keys apart from other tests'.
	store := httpsession.NewMemcachedStore(client, httpsession.WithKeyPrefix("httpsession-example-"+rand.Text()+":"))
	h, err := newServer(store)
	if err != nil {
		t.Fatal(err)
	}
	loginapptest.Run(t, h, true)
}

func TestNewClientErrors(t *testing.T) {
	if _, err := newClient(" , "); err == nil {
		t.Fatal("newClient with no server: no error")
	}
	if _, err := newClient("no-port-here"); err == nil {
		t.Fatal("newClient with a bad address: no error")
	}
}
