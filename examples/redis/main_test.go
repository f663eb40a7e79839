package main

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/go-httpsession/httpsession"
	"github.com/go-httpsession/httpsession/examples/internal/loginapptest"
)

func TestLoginRedis(t *testing.T) {
	runFlow(t, loginapptest.ServerAddr(t, "HTTPSESSION_REDIS_ADDR"))
}

func TestLoginRedisCluster(t *testing.T) {
	runFlow(t, loginapptest.ServerAddr(t, "HTTPSESSION_REDIS_CLUSTER_ADDRS"))
}

func runFlow(t *testing.T, addrs string) {
	client, err := newClient(addrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	if _, ok := client.(*redis.ClusterClient); ok != strings.Contains(addrs, ",") {
		t.Fatalf("newClient(%q) returned %T", addrs, client)
	}
	// A prefix of its own keeps this test's keys apart from other tests'.
	store := httpsession.NewRedisStore(client, httpsession.WithKeyPrefix("httpsession-example-"+rand.Text()+":"))
	h, err := newServer(store)
	if err != nil {
		t.Fatal(err)
	}
	loginapptest.Run(t, h, true)
}

func TestNewClientNoAddress(t *testing.T) {
	if _, err := newClient(" , "); err == nil {
		t.Fatal("newClient with no address: no error")
	}
}
