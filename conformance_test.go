package httpsession_test

import (
	"testing"
	"time"

	"github.com/go-httpsession/httpsession"
	"github.com/go-httpsession/httpsession/httpsessiontest"
	"github.com/redis/go-redis/v9"
)

// The backend conformance suite (package httpsessiontest) on every backend
// of this module: memory, Redis, Redis Cluster and Memcached. The SQL
// backend runs it from the sqltest module.

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	httpsessiontest.TestBackend(t, func(t *testing.T) httpsession.Backend {
		return httpsession.NewMemoryBackend(0, nil)
	}, httpsessiontest.WithTTL(func(t *testing.T, b httpsession.Backend, key string) time.Duration {
		return httpsession.MemoryTTL(t, b.(*httpsession.MemoryBackend), key)
	}))
}

func TestRedisConformance(t *testing.T) {
	addr := httpsession.NeedEnv(t, "HTTPSESSION_REDIS_ADDR")
	t.Parallel()
	c := httpsession.RedisClient(t, addr)
	if _, ok := c.(*redis.Client); !ok {
		t.Fatalf("client %T, want *redis.Client", c)
	}
	testRedisConformance(t, c)
}

func TestRedisClusterConformance(t *testing.T) {
	addrs := httpsession.SplitAddrs(httpsession.NeedEnv(t, "HTTPSESSION_REDIS_CLUSTER_ADDRS"))
	t.Parallel()
	c := httpsession.RedisClient(t, addrs...)
	if _, ok := c.(*redis.ClusterClient); !ok {
		t.Fatalf("client %T, want *redis.ClusterClient", c)
	}
	testRedisConformance(t, c)
}

func testRedisConformance(t *testing.T, c redis.UniversalClient) {
	httpsessiontest.TestBackend(t, func(t *testing.T) httpsession.Backend {
		return httpsession.NewRedisBackend(c)
	}, httpsessiontest.WithTTL(func(t *testing.T, _ httpsession.Backend, key string) time.Duration {
		t.Helper()
		d, err := c.PTTL(t.Context(), key).Result()
		if err != nil {
			t.Fatalf("PTTL %q: %v", key, err)
		}
		return d
	}))
}

func TestMemcachedConformance(t *testing.T) {
	addrs := httpsession.SplitAddrs(httpsession.NeedEnv(t, "HTTPSESSION_MEMCACHED_ADDRS"))
	t.Parallel()
	t.Logf("memcached servers %v", addrs)
	client := httpsession.MemcachedClient(t, addrs...)
	httpsessiontest.TestBackend(t, func(t *testing.T) httpsession.Backend {
		return httpsession.NewMemcachedBackend(client)
	},
		httpsessiontest.WithConflictWithoutCurrent(),
		httpsessiontest.WithTTL(func(t *testing.T, _ httpsession.Backend, key string) time.Duration {
			return time.Duration(httpsession.MemcachedTTL(t, addrs, key)) * time.Second
		}))
}
