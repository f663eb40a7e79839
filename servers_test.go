package httpsession

// Real servers for the tests: those scripts/testenv.sh starts and names in
// the environment, and the processes the fault tests start, kill and
// restart themselves. A test whose server is missing skips, except under
// CI=true, where it fails: CI must run everything.

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"
)

const howToRun = "run `make test` (it installs the Debian packages, Python's among them, and starts real " +
	"Redis, Redis Cluster and Memcached servers), or `bash scripts/testenv.sh go test -race .`"

// missing skips the test for a missing prerequisite, or fails it under
// CI=true.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s, and CI=true: every test must run in CI; %s", msg, howToRun)
	}
	t.Skipf("%s: %s", msg, howToRun)
}

// needEnv returns the environment variable name, which scripts/testenv.sh
// sets, or skips the test (fails it under CI=true) when it is unset.
func needEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		missing(t, "%s is not set", name)
	}
	return v
}

// splitAddrs splits a comma-separated address list.
func splitAddrs(v string) []string {
	var out []string
	for _, a := range strings.Split(v, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// needBinary finds a server binary the fault tests start themselves, with
// the same skip/fail rule as needEnv.
func needBinary(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, "%s not found", name)
	}
	return p
}

// keyPrefix returns a key prefix unique to this test, so tests sharing a
// server neither see nor clean up each other's keys.
func keyPrefix(t *testing.T) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "httpsession-test:" + hex.EncodeToString(b[:]) + ":"
}

// redisClient connects to addrs: one address is a single node, several a
// Cluster (redis.NewUniversalClient decides).
func redisClient(t *testing.T, addrs ...string) redis.UniversalClient {
	t.Helper()
	if len(addrs) > 1 {
		clusterReady(t, addrs)
	}
	c := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 addrs,
		ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { c.Close() })
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("redis %v: %v", addrs, err)
	}
	return c
}

// clusterReady waits until every node of the Cluster reports
// cluster_state:ok: right after "redis-cli --cluster create" some nodes
// still answer CLUSTERDOWN. A ready node answers at once.
func clusterReady(t *testing.T, addrs []string) {
	t.Helper()
	for _, addr := range addrs {
		n := redis.NewClient(&redis.Options{Addr: addr})
		deadline := time.Now().Add(20 * time.Second)
		for {
			info, err := n.ClusterInfo(t.Context()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				n.Close()
				t.Fatalf("cluster node %s not ready: %v %q", addr, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		n.Close()
	}
}

// memcachedClient returns a client for addrs after checking that each
// server answers, so a server that testenv.sh failed to start is reported
// as such rather than as a string of 503s.
func memcachedClient(t *testing.T, addrs ...string) *memcache.Client {
	t.Helper()
	for _, a := range addrs {
		if err := pingMemcached(a); err != nil {
			t.Fatalf("memcached %s does not answer: %v", a, err)
		}
	}
	servers, err := NewMemcachedServers(addrs...)
	if err != nil {
		t.Fatal(err)
	}
	client := memcache.NewFromSelector(servers)
	// gomemcache keeps 2 idle connections per server by default: parallel
	// tests would dial and drop a connection per call.
	client.MaxIdleConns = 16
	t.Cleanup(func() { client.Close() })
	return client
}

// rawCommand sends one command line to addr over a fresh connection and
// returns the reply's lines without their CRLF: the first only when last
// is nil, else up to the first line for which last is true.
func rawCommand(addr, cmd string, last func(line string) bool) ([]string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, cmd+"\r\n"); err != nil {
		return nil, err
	}
	r := bufio.NewReader(c)
	var lines []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return lines, err
		}
		lines = append(lines, strings.TrimSuffix(line, "\r\n"))
		if last == nil || last(lines[len(lines)-1]) {
			return lines, nil
		}
	}
}

// pingRedis sends PING over a raw connection.
func pingRedis(addr string) error {
	lines, err := rawCommand(addr, "PING", nil)
	if err != nil {
		return err
	}
	if lines[0] != "+PONG" {
		return fmt.Errorf("PING: %q", lines[0])
	}
	return nil
}

// pingMemcached sends "version" over a raw connection.
func pingMemcached(addr string) error {
	lines, err := rawCommand(addr, "version", nil)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(lines[0], "VERSION ") {
		return fmt.Errorf("version: %q", lines[0])
	}
	return nil
}

// serveTCP listens on a loopback port and runs handle on every connection,
// each in a goroutine of its own; handle need not close it. When the test
// ends the listener and every connection are closed and the goroutines
// awaited.
func serveTCP(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { handle(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// silentListener accepts connections and never answers: a store that
// hangs.
func silentListener(t *testing.T) string {
	t.Helper()
	return serveTCP(t, func(net.Conn) {})
}

// serverProc is a server process on a fixed loopback port; it can be killed
// and started again on the same port (and, for Redis, the same data dir).
type serverProc struct {
	t    *testing.T
	name string
	args []string
	addr string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *logBuffer // its output, shown when it fails to start
}

// freePort returns a loopback port that was free a moment ago. It
// prefers 23000-29999: below the kernel's ephemeral range, so that an
// outgoing connection does not take the port while a server the test
// stopped is down, and clear of scripts/testenv.sh's ports (20000-22767)
// and their Cluster bus ports (+10000).
func freePort(t *testing.T) int {
	t.Helper()
	const first = 23000
	high := 30000
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n < high {
				high = n
			}
		}
	}
	for range 50 {
		if high <= first {
			break
		}
		port := first + mathrand.IntN(high-first)
		if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			ln.Close()
			return port
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// startRedis starts redis-server on a free port with dir as its data
// directory and extra arguments (persistence settings).
func startRedis(t *testing.T, dir string, extra ...string) *serverProc {
	t.Helper()
	bin := needBinary(t, "redis-server")
	return startProc(t, bin, func(port int) []string {
		return append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
			"--daemonize", "no", "--save", "", "--appendonly", "no", "--logfile", ""}, extra...)
	}, pingRedis)
}

// startMemcached starts memcached on a free port.
func startMemcached(t *testing.T) *serverProc {
	t.Helper()
	bin := needBinary(t, "memcached")
	name := "nobody"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return startProc(t, bin, func(port int) []string {
		return []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "16", "-u", name}
	}, pingMemcached)
}

func startProc(t *testing.T, bin string, args func(port int) []string, ping func(addr string) error) *serverProc {
	t.Helper()
	var lastErr error
	for range 5 { // a port picked by freePort may be taken meanwhile
		port := freePort(t)
		p := &serverProc{t: t, name: bin, args: args(port), addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		if lastErr = p.start(ping); lastErr == nil {
			t.Cleanup(p.kill)
			return p
		}
		p.kill()
	}
	t.Fatalf("could not start %s: %v", bin, lastErr)
	return nil
}

// start runs the process and waits until ping succeeds.
func (p *serverProc) start(ping func(addr string) error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.name, p.args...)
	dieWithParent(cmd)
	p.log = &logBuffer{}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := ping(p.addr)
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("%s exited: %v\n%s", p.name, cmd.ProcessState, p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s on %s not ready: %v", p.name, p.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restart starts the process again on the same port with the same args.
func (p *serverProc) restart(ping func(addr string) error) {
	p.t.Helper()
	if err := p.start(ping); err != nil {
		p.t.Fatal(err)
	}
}

// kill stops the process with SIGKILL, as a crash would, and reaps it.
func (p *serverProc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

// checkGoroutines fails if the goroutine count does not come back to
// within a small tolerance of base.
func checkGoroutines(t *testing.T, base int, cleanup ...func()) {
	t.Helper()
	var n int
	for range 100 {
		for _, f := range cleanup {
			f()
		}
		if n = runtime.NumGoroutine(); n <= base+3 {
			t.Logf("goroutines: %d before, %d after", base, n)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	var stacks strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
	t.Errorf("goroutine leak: %d before, %d after\n%s", base, n, stacks.String())
}
