package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestRoundTrips counts the Redis and Memcached commands and the SQL
// statements each library sends per request in every scenario. It asserts
// httpsession's budget (untouched 0, read 1, modify 2, new 1, plus on SQL
// the bounded cleanup DELETE of every 10th create) and logs everyone's
// counts in lines that cmd/report reads:
//
//	ROUNDTRIPS server=redis lib=scs-redis scenario=untouched cmds=1.00 client=1.00 detail=get:1.00
//
// cmds is counted by the server (Redis INFO commandstats deltas, less the
// commands scripts run, see counts.total; Memcached "stats" deltas summed
// over every server) or, for PostgreSQL and SQLite, by a database/sql
// driver wrapper that counts every statement the connections run, by its
// first word (sqlCounter); client is the go-redis hook's count of calls (a
// pipeline counts once), which is the number of round trips. The requests
// are the benchmark's, one at a time, after a warm-up.
func TestRoundTrips(t *testing.T) {
	e := newEnv()
	const requests = 20
	for _, l := range libs {
		if l.server == "" {
			continue
		}
		for _, sc := range scenarios {
			t.Run(l.name+"/"+sc, func(t *testing.T) {
				e.need(t, l.server)
				hook := &countingHook{}
				le := *e
				le.redisHook = hook
				le.statements = newSQLCounter()
				s, err := prepare(t, &le, l, sc, payload(5), cookiePad)
				if err != nil {
					t.Fatal(err)
				}
				counter := newServerCounter(t, &le, l.server)
				before := counter.snapshot(t)
				hook.reset()
				src, w := newReqSource(s.raw), newBenchWriter()
				for range requests {
					w.reset()
					s.h.ServeHTTP(w, src.next())
					if err := check(w, s.want, false); err != nil {
						t.Fatal(err)
					}
				}
				delta := counter.snapshot(t).minus(before)
				cmds := float64(delta.total()) / requests
				client := "-"
				if l.server == "redis" {
					client = fmt.Sprintf("%.2f", float64(hook.calls())/requests)
				}
				t.Logf("ROUNDTRIPS server=%s lib=%s scenario=%s cmds=%.2f client=%s detail=%s",
					l.server, l.name, sc, cmds, client, delta.detail(requests))
				if !strings.HasPrefix(l.name, "httpsession-") {
					return
				}
				want := map[string]float64{"untouched": 0, "read": 1, "modify": 2, "new": 1}[sc]
				if sc == "new" && (l.server == "postgres" || l.server == "sqlite") {
					// Every 10th create also deletes a bounded batch of
					// expired rows: one DELETE per 10 requests, on top of
					// the INSERT of each.
					if delta["insert"] != requests || delta["delete"] != requests/10 || len(delta) != 2 {
						t.Errorf("%s %s: %s per request, want insert:1.00,delete:0.10", l.name, sc, delta.detail(requests))
					}
					return
				}
				if cmds != want {
					t.Errorf("%s %s: %.2f commands per request, want %v (%s)", l.name, sc, cmds, want, delta.detail(requests))
				}
				if l.server == "redis" && float64(hook.calls())/requests != want {
					t.Errorf("%s %s: %.2f round trips per request, want %v", l.name, sc, float64(hook.calls())/requests, want)
				}
			})
		}
	}
}

// countingHook counts the go-redis calls made through a client.
type countingHook struct {
	mu sync.Mutex
	n  int
}

func (h *countingHook) reset()     { h.mu.Lock(); h.n = 0; h.mu.Unlock() }
func (h *countingHook) calls() int { h.mu.Lock(); defer h.mu.Unlock(); return h.n }
func (h *countingHook) inc()       { h.mu.Lock(); h.n++; h.mu.Unlock() }

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.inc()
		return next(ctx, cmd)
	}
}

func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.inc()
		return next(ctx, cmds)
	}
}

// counts maps a command name to how often the servers executed it.
type counts map[string]int64

func (c counts) minus(o counts) counts {
	d := counts{}
	for k, v := range c {
		if v -= o[k]; v != 0 {
			d[k] = v
		}
	}
	return d
}

// total is the number of commands clients sent. Redis's commandstats also
// count the commands a script runs: httpsession's compare-and-set script
// runs a GET and then a SET or DEL, which are not sent by the client, so
// they are taken out (2 per EVALSHA or EVAL: the benchmark's requests are
// sequential and never conflict, when the script runs only its GET).
func (c counts) total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n - 2*(c["evalsha"]+c["eval"])
}

func (c counts) detail(requests int) string {
	if len(c) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range c {
		parts = append(parts, fmt.Sprintf("%s:%.2f", k, float64(v)/float64(requests)))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// serverCounter snapshots the servers' own command counters.
type serverCounter struct {
	snapshot func(t *testing.T) counts
}

func newServerCounter(t *testing.T, e *env, server string) *serverCounter {
	switch server {
	case "redis":
		c := redis.NewClient(&redis.Options{Addr: e.redisAddr})
		t.Cleanup(func() { c.Close() })
		return &serverCounter{snapshot: func(t *testing.T) counts { return redisCommandStats(t, c) }}
	case "memcached":
		return &serverCounter{snapshot: func(t *testing.T) counts { return memcachedStats(t, e.memcachedAddrs) }}
	case "postgres", "sqlite":
		return &serverCounter{snapshot: e.statements.snapshot}
	}
	panic("unknown server " + server)
}

// redisCommandStats parses INFO commandstats (cmdstat_get:calls=12,...),
// leaving out the INFO calls of the counter itself.
func redisCommandStats(t *testing.T, c *redis.Client) counts {
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	cs := counts{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		name = strings.TrimPrefix(name, "cmdstat_")
		if name == "info" {
			continue
		}
		for _, f := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				cs[name] = n
			}
		}
	}
	return cs
}

// memcachedCommands are the "stats" counters that count commands.
var memcachedCommands = []string{
	"cmd_get", "cmd_set", "cmd_touch", "cmd_flush",
	"delete_hits", "delete_misses", "incr_hits", "incr_misses", "decr_hits", "decr_misses",
}

// memcachedStats sums the command counters of every server, over a raw
// connection each.
func memcachedStats(t *testing.T, addrs []string) counts {
	cs := counts{}
	for _, addr := range addrs {
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Write([]byte("stats\r\n")); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(conn)
		for sc.Scan() {
			line := sc.Text()
			if line == "END" {
				break
			}
			f := strings.Fields(line)
			if len(f) != 3 || f[0] != "STAT" {
				continue
			}
			for _, name := range memcachedCommands {
				if f[1] == name {
					n, _ := strconv.ParseInt(f[2], 10, 64)
					cs[name] += n
				}
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}
	return cs
}
