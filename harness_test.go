package httpsession

// The test harness: the helpers that more than one test file uses. The real
// server processes (Redis, Memcached) and the environment that names them
// are in servers_test.go; a helper only one test file uses stays there.

import (
	"log/slog"
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

// logBuffer collects what concurrent writers write: a slog handler's lines,
// or a child process's output, to check or to show when a test fails.
type logBuffer struct {
	mu sync.Mutex
	b  []byte
	// max, when positive, keeps only the last max bytes: for long runs
	// whose log is only shown on failure.
	max int
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	if over := len(l.b) - l.max; l.max > 0 && over > 0 {
		l.b = l.b[over:]
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// newLogger returns a debug-level text logger and the buffer it writes to.
func newLogger() (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}
