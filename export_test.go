package httpsession

// Test helpers exported to the external test package (conformance_test.go),
// which runs the httpsessiontest suite: that package imports httpsession,
// so only an external test package can import it.

var (
	NeedEnv         = needEnv
	SplitAddrs      = splitAddrs
	RedisClient     = redisClient
	MemcachedClient = memcachedClient
	MemcachedTTL    = memcachedTTL
	MemoryTTL       = memoryTTL
)
