package httpsession

// Interop with aiohttp_session's RedisStorage and MemcachedStorage: the
// same scenarios as the cookie storages (interop_test.go) against the real
// Redis and Memcached that scripts/testenv.sh starts, plus server-side
// specifics: the stored record and its TTL, real expiry, and Memcached's
// byte-level format (aiohttp_session-wire.md §6.6) recorded on a fake
// Memcached. aiomcache is not packaged in Debian, so the Python app runs
// the real MemcachedStorage over interop/memcached_peer.py, a pymemcache
// stand-in for aiomcache's client.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"
)

func redisInteropKind(t *testing.T) (*interopKind, redis.UniversalClient) {
	t.Helper()
	addr := splitAddrs(needEnv(t, "HTTPSESSION_REDIS_ADDR"))[0]
	client := redisClient(t, addr)
	return &interopKind{
		name:       "Redis",
		pyArgs:     []string{"--storage", "redis", "--redis-url", "redis://" + addr + "/0"},
		serverSide: true,
		store: func(_ *testing.T, _ *testClock, opts ...ServerOption) Store {
			return NewRedisStore(client, append([]ServerOption{WithAiohttpKeys(aiohttpCookie)}, opts...)...)
		},
		record: func(t *testing.T, id string) (string, bool) {
			v, err := client.Get(t.Context(), aiohttpCookie+"_"+id).Result()
			if err == redis.Nil {
				return "", false
			}
			if err != nil {
				t.Fatal(err)
			}
			return v, true
		},
	}, client
}

func memcachedInteropKind(t *testing.T) (*interopKind, string) {
	t.Helper()
	addr := splitAddrs(needEnv(t, "HTTPSESSION_MEMCACHED_ADDRS"))[0]
	client := memcachedClient(t, addr)
	client.Timeout = 2 * time.Second
	return &interopKind{
		name:       "Memcached",
		pyArgs:     []string{"--storage", "memcached", "--memcached-addr", addr},
		serverSide: true,
		store: func(_ *testing.T, clock *testClock, opts ...ServerOption) Store {
			return aiohttpMemcachedStore(client, clock, opts...)
		},
		record: func(t *testing.T, id string) (string, bool) {
			r := peerGet(t, addr, aiohttpCookie+"_"+id)
			return r.Value, r.Found
		},
	}, addr
}

// aiohttpMemcachedStore is the aiohttp-compatible Memcached store, its absolute
// expiration times taken from clock.
func aiohttpMemcachedStore(client *memcache.Client, clock *testClock, opts ...ServerOption) *ServerStore {
	s := NewMemcachedStore(client, append([]ServerOption{WithAiohttpKeys(aiohttpCookie)}, opts...)...)
	s.backend.(*MemcachedBackend).now = clock.Now
	return s
}

func TestInteropAiohttpRedisStorage(t *testing.T) {
	needPython(t)
	kind, client := redisInteropKind(t)
	runInteropSuite(t, kind)
	interopKeyShapes(t, kind)
	p := newInteropPair(t, kind, interopMaxAge)
	t.Run("RecordAndTTL", func(t *testing.T) {
		t0 := p.fresh(t)
		p.pySet("user", `"alice"`)
		id := p.br.cookie()
		key := aiohttpCookie + "_" + id
		if !validHexID(id) {
			t.Fatalf("Python session key %q is not uuid4().hex", id)
		}
		v, _ := kind.record(t, id)
		if want := fmt.Sprintf(`{"created": %d, "session": {"user": "alice"}}`, t0); v != want {
			t.Errorf("Python record = %s, want %s", v, want)
		}
		ttl := client.TTL(t.Context(), key).Val()
		if ttl <= (interopMaxAge-2)*time.Second || ttl > interopMaxAge*time.Second {
			t.Errorf("TTL after a Python write = %v, want max_age %ds", ttl, interopMaxAge)
		}
		// Go updates in place (SET XX) with what is left of the lifetime
		// counted from the record's created, not a fresh max_age.
		p.at(t0 + 40)
		p.goSet("role", `"admin"`)
		if p.br.cookie() != id {
			t.Errorf("Go changed the session key %s -> %s", id, p.br.cookie())
		}
		ttl = client.TTL(t.Context(), key).Val()
		if ttl <= (interopMaxAge-40-2)*time.Second || ttl > (interopMaxAge-40)*time.Second {
			t.Errorf("TTL after a Go write at created+40 = %v, want the remaining %ds", ttl, interopMaxAge-40)
		}
		// Go's records add metadata beside "session"; Python ignores it and
		// drops it when it writes.
		v, _ = kind.record(t, id)
		var rec map[string]json.RawMessage
		if err := json.Unmarshal([]byte(v), &rec); err != nil || string(rec["created"]) != strconv.FormatInt(t0, 10) {
			t.Errorf("Go record = %s, want created %d", v, t0)
		}
	})
	t.Run("RealTTLExpiry", func(t *testing.T) {
		// Python's per-request session.max_age becomes the Redis TTL.
		p.realExpiry(t, 1200*time.Millisecond, "Redis TTL")
	})
}

func TestInteropAiohttpMemcachedStorage(t *testing.T) {
	needPython(t)
	kind, addr := memcachedInteropKind(t)
	runInteropSuite(t, kind)
	interopKeyShapes(t, kind)
	p := newInteropPair(t, kind, interopMaxAge)
	t.Run("PymemcachePeerReadsGoRecord", func(t *testing.T) {
		t0 := p.fresh(t)
		p.goSet("user", `"bob"`)
		p.view("go", "POST", "/setint", kvQuery("big", "1152921504606846977"))
		r := peerGet(t, addr, aiohttpCookie+"_"+p.br.cookie())
		if !r.Found || r.Flags != 0 {
			t.Fatalf("pymemcache get of the Go record = %+v, want found with flags 0", r)
		}
		s := r.Session
		if s.New || s.Created != t0 || s.Values["user"] != `"bob"` || s.Values["big"] != "1152921504606846977" || s.Types["big"] != "int" {
			t.Errorf("aiohttp_session's Session over the Go record = %+v", s)
		}
	})
	t.Run("PymemcachePeerWritesGoReads", func(t *testing.T) {
		t0 := p.fresh(t)
		const id = "00112233445566778899aabbccddeeff"
		rec := fmt.Sprintf(`{"created": %d, "session": {"user": "carol", "nan": NaN}}`, t0)
		runPeer(t, addr, "set", aiohttpCookie+"_"+id, rec, "60")
		p.br.setCookie(id)
		g := p.goGet()
		if g.New || g.ID != id || g.str(t, "user") != "carol" || g.Created != t0 {
			t.Errorf("Go read of a pymemcache-written record = %+v", g)
		}
	})
	t.Run("LongMaxAgeAbsoluteExptime", func(t *testing.T) {
		// max_age over 30 days: Memcached takes the expiration as an
		// absolute Unix time. A relative one that large would be a time in
		// 1970, and the item would be gone at once.
		const month = 31 * 24 * 3600
		long := newInteropPair(t, kind, month)
		long.fresh(t)
		long.pySet("user", `"alice"`)
		if g := long.goGet(); g.New {
			t.Errorf("Go read of a Python session with max_age 31 days = %+v, want it", g)
		}
		long.fresh(t)
		long.goSet("user", `"bob"`)
		if py := long.pyGet(); py.New {
			t.Errorf("Python read of a Go session with lifetime 31 days = %+v, want it", py)
		}
		if g := long.goGet(); g.New {
			t.Errorf("Go read of its own session with lifetime 31 days = %+v, want it", g)
		}
	})
	t.Run("RealExptimeExpiry", func(t *testing.T) {
		p.realExpiry(t, 2100*time.Millisecond, "exptime") // Memcached's clock ticks in whole seconds
	})
}

// interopKeyShapes: aiohttp_session's key_factory decides the shape of the
// session IDs. Python's str(uuid4()) keys are read and changed by Go, and
// Go mints them with WithAiohttpKeyFactory(UUID4String), both ways; a
// shape Go does not read is another application's session, which a Go
// request never expires (it would log the user out of Python too).
func interopKeyShapes(t *testing.T, kind *interopKind) {
	withFactory := func(factory string, opts ...ServerOption) *interopKind {
		k := *kind
		k.pyArgs = append(slices.Clone(kind.pyArgs), "--key-factory", factory)
		k.store = func(t *testing.T, clock *testClock, _ ...ServerOption) Store { return kind.store(t, clock, opts...) }
		return &k
	}
	// noSetCookie asserts that a Go request answered 200 with no Set-Cookie.
	noSetCookie := func(t *testing.T, p *interopPair, method, path string, want string) {
		t.Helper()
		status, body, h := p.do(p.goURL, method, path, nil)
		if status != 200 || !strings.Contains(body, want) || len(h.Values("Set-Cookie")) != 0 {
			t.Errorf("Go %s %s with cookie %s = %d %s %v, want 200, %s and no Set-Cookie",
				method, path, p.br.cookie(), status, body, h.Values("Set-Cookie"), want)
		}
	}
	p := newInteropPair(t, withFactory("uuid4str", WithAiohttpKeyFactory(UUID4String)), interopMaxAge)
	t.Run("UUID4StringPythonMadeGoReadsAndChanges", func(t *testing.T) {
		p.fresh(t)
		p.pySet("user", `"alice"`)
		id := p.br.cookie()
		if !validUUIDStringID(id) {
			t.Fatalf("Python session key %q is not str(uuid4())", id)
		}
		noSetCookie(t, p, "GET", "/get", `"user":"\"alice\""`)
		p.goSet("role", `"admin"`)
		if p.br.cookie() != id {
			t.Errorf("Go changed the session key %s -> %s", id, p.br.cookie())
		}
		py := p.pyGet()
		if py.New || py.Identity == nil || *py.Identity != id || py.str(t, "user") != "alice" || py.str(t, "role") != "admin" {
			t.Errorf("Python after a Go change of its str(uuid4()) session = %+v", py)
		}
	})
	t.Run("UUID4StringGoMadePythonReadsAndChanges", func(t *testing.T) {
		p.fresh(t)
		p.goSet("user", `"bob"`)
		id := p.br.cookie()
		if !validUUIDStringID(id) {
			t.Fatalf("Go session ID %q is not the shape of str(uuid4())", id)
		}
		if _, found := kind.record(t, id); !found {
			t.Fatalf("no record under %s_%s", aiohttpCookie, id)
		}
		py := p.pySet("role", `"admin"`)
		if py.New || py.Identity == nil || *py.Identity != id || py.str(t, "user") != "bob" {
			t.Errorf("Python read of a Go str(uuid4()) session = %+v", py)
		}
		if g := p.goGet(); g.New || g.ID != id || g.str(t, "role") != "admin" {
			t.Errorf("Go read after the Python change = %+v", g)
		}
	})
	t.Run("HexMintingGoReadsUUID4String", func(t *testing.T) {
		// Reading takes both shapes, whatever Go mints.
		p.fresh(t)
		p.pySet("user", `"carol"`)
		hexGo := goServer(t, kind.store(t, p.clock), p.clock, interopMaxAge)
		status, body, h := p.do(hexGo, "POST", "/set", kvQuery("role", `"admin"`))
		if status != 200 || !strings.Contains(body, `"new":false`) || !strings.Contains(body, "carol") {
			t.Errorf("UUID4Hex Go store with a str(uuid4()) session = %d %s", status, body)
		}
		if ck, _ := setCookie(h, aiohttpCookie); ck == nil || ck.Value != p.br.cookie() {
			t.Errorf("UUID4Hex Go store renamed the session: %v", h.Values("Set-Cookie"))
		}
	})

	tok := newInteropPair(t, withFactory("token"), interopMaxAge)
	t.Run("ForeignKeyShapeNeverExpired", func(t *testing.T) {
		tok.fresh(t)
		tok.pySet("user", `"alice"`)
		id := tok.br.cookie()
		if validHexID(id) || validUUIDStringID(id) {
			t.Fatalf("secrets.token_urlsafe key %q has a shape Go reads", id)
		}
		// A read-only request, a logout and a NewSession that stays empty
		// see no session, and leave the cookie alone.
		noSetCookie(t, tok, "GET", "/get", `"new":true`)
		noSetCookie(t, tok, "POST", "/invalidate", `"new":true`)
		if py := tok.pyGet(); py.New || py.str(t, "user") != "alice" {
			t.Errorf("Python after Go requests with its cookie = %+v, want its session", py)
		}
		// Only a Go write replaces the cookie: with a new session of Go's.
		tok.goSet("role", `"admin"`)
		if got := tok.br.cookie(); got == id || !validHexID(got) {
			t.Errorf("Go write over a foreign cookie: cookie %q, want a new Go ID", got)
		}
	})
}

// realExpiry stores a session from Python with max_age 1 and one from Go
// with a 1 s lifetime, waits, and checks that the store expired both (its
// what, for messages) and that neither side opens them any more.
func (p *interopPair) realExpiry(t *testing.T, wait time.Duration, what string) {
	t.Helper()
	p.fresh(t)
	p.view("py", "POST", "/set", kvaQuery("user", `"alice"`, "max_age", "1"))
	pyCookie := p.br.cookie()
	goShort := goServer(t, p.kind.store(t, p.clock), p.clock, 1)
	br := p.br
	p.br = newBrowser("http://127.0.0.1/", aiohttpCookie, false)
	if status, body, _ := p.do(goShort, "POST", "/set", kvQuery("user", `"bob"`)); status != 200 {
		t.Fatalf("Go set = %d %s", status, body)
	}
	goCookie := p.br.cookie()
	time.Sleep(wait)
	for _, c := range []struct{ who, cookie string }{{"Python", pyCookie}, {"Go", goCookie}} {
		if v, found := p.kind.record(t, c.cookie); found {
			t.Errorf("the %s-written record with a 1 s %s is still there: %s", c.who, what, v)
		}
		p.br.setCookie(c.cookie) // the jar dropped it (Max-Age=1): replay it
		if py := p.pyGet(); !py.New {
			t.Errorf("Python with a %s session past its %s = %+v, want new", c.who, what, py)
		}
		p.br.setCookie(c.cookie)
		p.goFresh(t, c.who+" session past its "+what)
	}
	p.br = br
}

func kvaQuery(k, v, ak, av string) url.Values {
	q := kvQuery(k, v)
	q.Set(ak, av)
	return q
}

// peerResult is memcached_peer.py's answer to get.
type peerResult struct {
	Found   bool        `json:"found"`
	Flags   int         `json:"flags"`
	Value   string      `json:"value"`
	Session sessionView `json:"session"`
}

// runPeer runs interop/memcached_peer.py ADDR ARGS... and returns its output.
func runPeer(t *testing.T, addr string, args ...string) string {
	t.Helper()
	out, err := exec.Command(systemPython, append([]string{peerScript, addr}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("memcached_peer.py %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func peerGet(t *testing.T, addr, key string) peerResult {
	t.Helper()
	var r peerResult
	out := runPeer(t, addr, "get", key)
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("memcached_peer.py get: %v: %s", err, out)
	}
	return r
}

// fakeMemcached is a Memcached text-protocol server that records every
// command byte for byte: the Memcached vectors of aiohttp_session-wire.md
// §6.6 are checked against what each side sends.
type fakeMemcached struct {
	addr string

	mu    sync.Mutex
	items map[string]fakeItem
	cmds  []string // each command line, and a storage command's data block
	cas   uint64   // the last CAS unique handed out
}

type fakeItem struct {
	flags string
	data  []byte
	cas   uint64
}

func startFakeMemcached(t *testing.T) *fakeMemcached {
	t.Helper()
	m := &fakeMemcached{items: map[string]fakeItem{}}
	m.addr = serveTCP(t, m.serve)
	return m
}

func (m *fakeMemcached) serve(c net.Conn) {
	defer c.Close()
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			return
		}
		m.mu.Lock()
		switch f[0] {
		case "get", "gets":
			m.cmds = append(m.cmds, line)
			for _, k := range f[1:] {
				if it, ok := m.items[k]; ok {
					cas := ""
					if f[0] == "gets" {
						cas = " " + strconv.FormatUint(it.cas, 10)
					}
					fmt.Fprintf(w, "VALUE %s %s %d%s\r\n%s\r\n", k, it.flags, len(it.data), cas, it.data)
				}
			}
			w.WriteString("END\r\n")
		case "set", "add", "replace", "cas":
			n, _ := strconv.Atoi(f[4])
			data := make([]byte, n+2)
			if _, err := io.ReadFull(r, data); err != nil {
				m.mu.Unlock()
				return
			}
			m.cmds = append(m.cmds, line+string(data))
			old, exists := m.items[f[1]]
			reply := "STORED\r\n"
			switch {
			case f[0] == "add" && exists || f[0] == "replace" && !exists:
				reply = "NOT_STORED\r\n"
			case f[0] == "cas" && !exists:
				reply = "NOT_FOUND\r\n"
			case f[0] == "cas" && f[5] != strconv.FormatUint(old.cas, 10):
				reply = "EXISTS\r\n"
			case strings.HasPrefix(f[3], "-"): // a negative exptime expires the item at once
				delete(m.items, f[1])
			default:
				m.cas++
				m.items[f[1]] = fakeItem{flags: f[2], data: data[:n], cas: m.cas}
			}
			if f[len(f)-1] != "noreply" {
				w.WriteString(reply)
			}
		case "delete":
			m.cmds = append(m.cmds, line)
			if _, ok := m.items[f[1]]; ok {
				delete(m.items, f[1])
				w.WriteString("DELETED\r\n")
			} else {
				w.WriteString("NOT_FOUND\r\n")
			}
		default:
			m.cmds = append(m.cmds, line)
			w.WriteString("ERROR\r\n")
		}
		m.mu.Unlock()
		if w.Flush() != nil {
			return
		}
	}
}

// take returns and forgets the commands recorded so far.
func (m *fakeMemcached) take() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.cmds
	m.cmds = nil
	return c
}

// TestInteropMemcachedVectors checks the bytes each side sends to
// Memcached (aiohttp_session-wire.md §6.6): key AIOHTTP_SESSION_<32 hex>,
// flags 0, and exptime 0 / max_age / now+max_age past 30 days. The Python
// side is aiohttp_session's real MemcachedStorage with pymemcache standing
// in for aiomcache, so its key, flags, exptime and value are the library's.
func TestInteropMemcachedVectors(t *testing.T) {
	needPython(t)
	const t0 = 1700000000
	fake := startFakeMemcached(t)
	kind := &interopKind{
		name:       "FakeMemcached",
		pyArgs:     []string{"--storage", "memcached", "--memcached-addr", fake.addr},
		serverSide: true,
		store: func(_ *testing.T, clock *testClock, _ ...ServerOption) Store {
			c := memcache.New(fake.addr)
			c.Timeout = 2 * time.Second
			return aiohttpMemcachedStore(c, clock)
		},
	}
	p := newInteropPair(t, kind, 3600)
	p.fresh(t)
	p.at(t0)
	keyRE := `AIOHTTP_SESSION_([0-9a-f]{32})`

	// Python writes: the spec's worked example, byte for byte.
	p.pySet("user", `"alice"`)
	cmds := fake.take()
	want := regexp.MustCompile(`^set ` + keyRE + " 0 3600 53\r\n" +
		regexp.QuoteMeta(`{"created": 1700000000, "session": {"user": "alice"}}`) + "\r\n$")
	if len(cmds) != 1 || !want.MatchString(cmds[len(cmds)-1]) {
		t.Fatalf("Python's Memcached commands = %q, want the §6.6 vector", cmds)
	}
	id := want.FindStringSubmatch(cmds[len(cmds)-1])[1]
	if p.br.cookie() != id {
		t.Errorf("Python cookie %q, want the key's ID %q", p.br.cookie(), id)
	}

	// Go reads the same bytes: one get of the same key.
	p.at(t0 + 60)
	g := p.goGet()
	if g.New || g.ID != id || g.str(t, "user") != "alice" || g.Created != t0 {
		t.Errorf("Go read of the Python vector = %+v", g)
	}
	if cmds := fake.take(); len(cmds) != 1 || cmds[0] != "gets AIOHTTP_SESSION_"+id+"\r\n" {
		t.Errorf("Go's load = %q, want gets of AIOHTTP_SESSION_%s (aiomcache sends get; both read the item)", cmds, id)
	}

	// Go updates it: same key, flags 0, exptime = what is left of the
	// lifetime since created (3600-60); the value is Python-readable JSON.
	p.goSet("role", `"admin"`)
	cmds = fake.take()
	upd := regexp.MustCompile(`^(?:gets [^\r]*\r\n)?(set|replace|cas) AIOHTTP_SESSION_` + id + ` 0 3540 (\d+)(?: \d+)?\r\n(.*)\r\n$`)
	last := ""
	if len(cmds) > 0 {
		last = cmds[len(cmds)-1]
	}
	m := upd.FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("Go's update = %q, want set/replace/cas AIOHTTP_SESSION_%s 0 3540 N", cmds, id)
	}
	if n, _ := strconv.Atoi(m[2]); n != len(m[3]) {
		t.Errorf("byte count %s, value has %d bytes", m[2], len(m[3]))
	}
	if py := p.pyGet(); py.New || py.str(t, "user") != "alice" || py.str(t, "role") != "admin" || py.Created != t0 {
		t.Errorf("Python read of the Go update = %+v", py)
	}
	fake.take()

	// Python's invalidate stores "{}" under the key and deletes the cookie;
	// Go's deletes the key.
	p.view("py", "POST", "/invalidate", nil)
	if cmds := fake.take(); len(cmds) != 2 || cmds[1] != "set AIOHTTP_SESSION_"+id+" 0 3600 2\r\n{}\r\n" {
		t.Errorf("Python invalidate = %q, want get then set AIOHTTP_SESSION_%s 0 3600 2 {}", cmds, id)
	}
	p.goSet("user", `"bob"`)
	gid := p.br.cookie()
	fake.take()
	// Go's delete is conditional on the value just read (a cas that
	// expires the item at once), so a concurrent renewal cannot slip by.
	p.view("go", "POST", "/invalidate", nil)
	del := regexp.MustCompile(`^cas AIOHTTP_SESSION_` + gid + ` 0 -1 2 \d+\r\n\{\}\r\n$`)
	if cmds := fake.take(); len(cmds) != 2 || !del.MatchString(cmds[1]) {
		t.Errorf("Go Invalidate = %q, want gets then cas AIOHTTP_SESSION_%s 0 -1 2 <cas> {}", cmds, gid)
	}

	// exptime: relative up to 30 days, absolute Unix time beyond.
	const day = 24 * 3600
	for _, c := range []struct {
		maxAge int
		want   int64
	}{
		{3600, 3600},
		{30 * day, 30 * day},
		{30*day + 1, t0 + 30*day + 1},
		{31 * day, t0 + 31*day},
	} {
		q := newInteropPair(t, kind, c.maxAge)
		q.fresh(t)
		q.at(t0)
		fake.take()
		q.pySet("user", `"alice"`)
		q.br = newBrowser("http://127.0.0.1/", aiohttpCookie, false) // Go creates its own session
		q.goSet("user", `"bob"`)
		cmds := fake.take()
		re := regexp.MustCompile(`^(set|add) ` + keyRE + ` 0 (\d+) \d+\r\n`)
		var got []string
		for _, cmd := range cmds {
			if m := re.FindStringSubmatch(cmd); m != nil {
				got = append(got, m[1]+" "+m[3])
			}
		}
		wantCmds := []string{"set " + strconv.FormatInt(c.want, 10), "add " + strconv.FormatInt(c.want, 10)}
		if strings.Join(got, ",") != strings.Join(wantCmds, ",") {
			t.Errorf("max_age %d: exptimes (Python set, Go add) = %v, want %v", c.maxAge, got, wantCmds)
		}
	}

	// max_age=None: Python stores with exptime 0 (no expiry). Go always has
	// a lifetime, so it never writes 0.
	q := newInteropPair(t, kind, -1)
	q.fresh(t)
	fake.take()
	q.pySet("user", `"alice"`)
	if cmds := fake.take(); len(cmds) != 1 || !regexp.MustCompile(`^set `+keyRE+` 0 0 `).MatchString(cmds[0]) {
		t.Errorf("Python with max_age=None = %q, want exptime 0", cmds)
	}
}
