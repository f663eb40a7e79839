package httpsession

// The test harness: the helpers that more than one test file uses. The real
// server processes (Redis, Memcached) and the environment that names them
// are in servers_test.go; a helper only one test file uses stays there.

import (
	"sync"
	"time"
)

// testClock is an injectable clock, safe for concurrent use: the test sets
// and advances it while the middleware and the stores read it through Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

// newTestClock returns a clock at a fixed instant, 2030-01-02 03:04:05 UTC,
// so that expiry arithmetic does not depend on when the test runs.
func newTestClock() *testClock { return testClockAt(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) }

// testClockAt returns a clock stopped at t.
func testClockAt(t time.Time) *testClock { return &testClock{t: t} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}
