// Command report turns one `make bench` run into bench/RESULTS.md and
// bench/chart.svg.
//
// It reads the raw `go test -bench` output (medians are computed here, the
// same centre benchstat prints), the benchstat summaries to quote verbatim,
// TestRoundTrips' -v output and a few facts about the run, and writes the
// Markdown report and the chart. It uses only the standard library: the
// chart is hand-written SVG (rectangles and text), which needs no font
// rasteriser or plotting dependency for a single bar chart, stays sharp at
// any zoom, and diffs as text.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"html"
	"math"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	benchFile  = flag.String("bench", "bench.out", "raw go test -bench output")
	roundTrips = flag.String("roundtrips", "roundtrips.out", "go test -v -run TestRoundTrips output")
	goMod      = flag.String("gomod", "go.mod", "the bench module's go.mod, for peer versions")
	metaFile   = flag.String("meta", "meta.out", "key: value facts about the run (load, server versions, flags)")
	outFile    = flag.String("out", "RESULTS.md", "report to write")
	chartFile  = flag.String("chart", "chart.svg", "chart to write")
	benchstats multiFlag
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	flag.Var(&benchstats, "benchstat", "Title=path of a benchstat text summary to quote (repeatable)")
	flag.Parse()
	res, cpu, err := parseBench(*benchFile)
	if err != nil {
		fail(err)
	}
	if len(res) == 0 {
		fail(fmt.Errorf("%s: no benchmark results", *benchFile))
	}
	meta := readMeta(*metaFile)
	if cpu != "" && meta["cpu"] == "" {
		meta["cpu"] = cpu
	}
	rts, _ := parseRoundTrips(*roundTrips)
	versions := parseGoMod(*goMod)

	var md strings.Builder
	writeReport(&md, res, meta, rts, versions)
	if err := os.WriteFile(*outFile, []byte(md.String()), 0o644); err != nil {
		fail(err)
	}
	if err := os.WriteFile(*chartFile, []byte(chart(res)), 0o644); err != nil {
		fail(err)
	}
	fmt.Printf("report: wrote %s and %s from %d benchmarks\n", *outFile, *chartFile, len(res))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "report:", err)
	os.Exit(1)
}

// ---- input ----

// stat is one benchmark's samples.
type stat struct {
	ns, bytes, allocs, cpu, overFloor []float64
}

type summary struct {
	ns, bytes, allocs float64 // medians
	cpu               float64 // median cpu-ns/op, NaN if not reported
	overFloor         float64 // median over-floor-ns/op (UntouchedPaired), NaN if not reported
	n                 int
}

type results map[string]*stat

var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// parseBench reads go test -bench output. Names lose "Benchmark" and the
// -GOMAXPROCS suffix: "Middleware/scenario=read/lib=floor".
func parseBench(path string) (results, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	res, cpu := results{}, ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "cpu: "); ok {
			cpu = strings.TrimSpace(v)
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		st := res[m[1]]
		if st == nil {
			st = &stat{}
			res[m[1]] = st
		}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				st.ns = append(st.ns, v)
			case "B/op":
				st.bytes = append(st.bytes, v)
			case "allocs/op":
				st.allocs = append(st.allocs, v)
			case "cpu-ns/op":
				st.cpu = append(st.cpu, v)
			case "over-floor-ns/op":
				st.overFloor = append(st.overFloor, v)
			}
		}
	}
	return res, cpu, sc.Err()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r results) get(name string) (summary, bool) {
	st, ok := r[name]
	if !ok || len(st.ns) == 0 {
		return summary{}, false
	}
	return summary{ns: median(st.ns), bytes: median(st.bytes), allocs: median(st.allocs), cpu: median(st.cpu),
		overFloor: median(st.overFloor), n: len(st.ns)}, true
}

// paired is the median over runs of f(a_i, b_i), pairing the i-th samples
// of two benchmarks: with interleaved passes they ran minutes apart from
// other runs but seconds apart from each other, so load that comes and goes
// cancels out of each pair.
func (r results) paired(a, b string, f func(x, y float64) float64) float64 {
	sa, sb := r[a], r[b]
	if sa == nil || sb == nil {
		return math.NaN()
	}
	var v []float64
	for i := 0; i < len(sa.ns) && i < len(sb.ns); i++ {
		v = append(v, f(sa.ns[i], sb.ns[i]))
	}
	return median(v)
}

func mw(scenario, lib string) string { return "Middleware/scenario=" + scenario + "/lib=" + lib }

func readMeta(path string) map[string]string {
	m := map[string]string{}
	data, err := os.ReadFile(path)
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// roundTrip is one ROUNDTRIPS line of TestRoundTrips.
type roundTrip struct{ server, lib, scenario, cmds, client, detail string }

func parseRoundTrips(path string) ([]roundTrip, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []roundTrip
	for _, line := range strings.Split(string(data), "\n") {
		_, rest, ok := strings.Cut(line, "ROUNDTRIPS ")
		if !ok {
			continue
		}
		kv := map[string]string{}
		for _, f := range strings.Fields(rest) {
			if k, v, ok := strings.Cut(f, "="); ok {
				kv[k] = v
			}
		}
		out = append(out, roundTrip{kv["server"], kv["lib"], kv["scenario"], kv["cmds"], kv["client"], kv["detail"]})
	}
	return out, nil
}

// parseGoMod returns module path → version from require lines.
func parseGoMod(path string) map[string]string {
	v := map[string]string{}
	data, err := os.ReadFile(path)
	if err != nil {
		return v
	}
	inBlock := false
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if c := strings.Index(line, "//"); c >= 0 {
			line = strings.TrimSpace(line[:c])
		}
		switch {
		case line == "require (":
			inBlock = true
			continue
		case line == ")":
			inBlock = false
			continue
		}
		f := strings.Fields(line)
		if inBlock && len(f) == 2 {
			v[f[0]] = f[1]
		} else if len(f) == 3 && f[0] == "require" {
			v[f[1]] = f[2]
		}
	}
	return v
}

// ---- report ----

var (
	scenarios = []string{"new", "read", "modify", "untouched"}
	libs      = []string{
		"floor", "floor-context", "httpsession-signed", "httpsession-encrypted", "httpsession-nacl", "httpsession-memory",
		"httpsession-redis", "httpsession-memcached", "gorilla-cookie", "gorilla-redis", "gorilla-memcached",
		"scs-memory", "scs-redis", "httpsession-postgres", "httpsession-sqlite", "scs-postgres", "scs-sqlite",
	}
	peers   = []string{"gorilla-cookie", "gorilla-redis", "gorilla-memcached", "scs-memory", "scs-redis", "scs-postgres", "scs-sqlite"}
	ourLibs = []string{"httpsession-signed", "httpsession-encrypted", "httpsession-nacl", "httpsession-memory", "httpsession-redis", "httpsession-memcached",
		"httpsession-postgres", "httpsession-sqlite"}
	// ourSQL pairs each SQL library of ours with scs's store on the same
	// database and driver.
	ourSQL     = [][2]string{{"httpsession-postgres", "scs-postgres"}, {"httpsession-sqlite", "scs-sqlite"}}
	ourCookie  = []string{"httpsession-signed", "httpsession-encrypted", "httpsession-nacl"}
	libModules = map[string][]string{
		"gorilla-cookie":    {"github.com/gorilla/sessions", "github.com/gorilla/securecookie"},
		"gorilla-redis":     {"github.com/rbcervilla/redisstore/v9", "github.com/gorilla/sessions", "github.com/redis/go-redis/v9"},
		"gorilla-memcached": {"github.com/bradleypeabody/gorilla-sessions-memcache", "github.com/gorilla/sessions", "github.com/bradfitz/gomemcache"},
		"scs-memory":        {"github.com/alexedwards/scs/v2"},
		"scs-redis":         {"github.com/alexedwards/scs/goredisstore", "github.com/alexedwards/scs/v2", "github.com/redis/go-redis/v9"},
		"scs-postgres":      {"github.com/alexedwards/scs/postgresstore", "github.com/alexedwards/scs/v2", "github.com/jackc/pgx/v5"},
		"scs-sqlite":        {"github.com/alexedwards/scs/sqlite3store", "github.com/alexedwards/scs/v2", "modernc.org/sqlite"},
	}
	libWhat = map[string]string{
		"floor":                 "the same request chain without sessions",
		"floor-context":         "floor behind a middleware that only wraps the writer and calls r.WithContext (no sessions): the least any middleware that hands handlers state through the request costs",
		"httpsession-signed":    "NewSignedCookieStore (HMAC-SHA256)",
		"httpsession-encrypted": "NewEncryptedCookieStore (securecookie AES-CTR + HMAC, raw bytes)",
		"httpsession-nacl":      "NewNaClCookieStore (secretbox)",
		"httpsession-memory":    "ServerStore on MemoryBackend (NewMemoryStore's, larger capacity)",
		"httpsession-redis":     "NewRedisStore (go-redis client)",
		"httpsession-memcached": "NewMemcachedStore (gomemcache client, 2 servers)",
		"gorilla-cookie":        "sessions.CookieStore, 32-byte hash key + 32-byte block key",
		"gorilla-redis":         "rbcervilla/redisstore (gob)",
		"gorilla-memcached":     "gorilla-sessions-memcache, default securecookie method, same keys",
		"scs-memory":            "scs memstore (gob codec)",
		"scs-redis":             "scs goredisstore (gob codec)",
		"httpsession-postgres":  "NewSQLStore on PostgreSQL (ServerStore on SQLBackend, DialectPostgres; pgx's database/sql driver), a table of its own",
		"httpsession-sqlite":    "NewSQLStore on SQLite (DialectSQLite; modernc.org/sqlite), a file of its own in WAL mode with a busy timeout",
		"scs-postgres":          "scs postgresstore (gob codec), same driver and *sql.DB settings, the table of its README",
		"scs-sqlite":            "scs sqlite3store (gob codec), same driver, DSN and *sql.DB settings, the table of its README",
	}
)

func us(ns float64) string {
	switch {
	case math.IsNaN(ns):
		return "—"
	case ns >= 100_000:
		return fmt.Sprintf("%.0f µs", ns/1000)
	case ns >= 10_000:
		return fmt.Sprintf("%.1f µs", ns/1000)
	}
	return fmt.Sprintf("%.2f µs", ns/1000)
}

func ratio(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "—"
	}
	return fmt.Sprintf("%.2f×", x)
}

func num(x float64) string {
	if math.IsNaN(x) {
		return "—"
	}
	return strconv.FormatFloat(x, 'f', -1, 64)
}

func writeReport(w *strings.Builder, res results, meta map[string]string, rts []roundTrip, versions map[string]string) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("# httpsession benchmarks\n\n")
	p("Generated by `make bench` (bench/cmd/report) on %s; do not edit by hand. ", orDefault(meta["date"], time.Now().UTC().Format("2006-01-02 15:04 UTC")))
	p("All numbers are medians of %s runs of one `make bench` invocation (`%s`). ", orDefault(meta["count"], "6"), orDefault(meta["flags"], "-count 6 -benchmem"))
	p("Ratios are between medians of that same run.\n\n")

	p("## Machine\n\n| | |\n|---|---|\n")
	p("| CPU | %s |\n", orDefault(meta["cpu"], cpuModel()))
	p("| cores (nproc) | %s |\n", orDefault(meta["nproc"], strconv.Itoa(runtime.NumCPU())))
	p("| memory | %s |\n", orDefault(meta["memory"], memTotal()))
	p("| Go | %s |\n", orDefault(meta["go"], runtime.Version()))
	p("| OS/arch | %s/%s, kernel %s |\n", runtime.GOOS, runtime.GOARCH, orDefault(meta["kernel"], "?"))
	p("| Redis | %s |\n", orDefault(meta["redis"], "?"))
	p("| Memcached | %s |\n", orDefault(meta["memcached"], "?"))
	p("| PostgreSQL | %s |\n", orDefault(meta["postgres"], "?"))
	p("| load average before / after | %s / %s |\n\n", orDefault(meta["load_before"], "?"), orDefault(meta["load_after"], "?"))
	p("The servers run on the same machine over loopback, so a Redis, Memcached or PostgreSQL round trip also competes with the benchmark for the two cores. " +
		"SQLite is a file on the local disk (WAL mode), so its writes wait for the disk's fsync.\n\n")

	p("## Libraries\n\n| lib | what | modules |\n|---|---|---|\n")
	for _, l := range libs {
		var mods []string
		for _, m := range libModules[l] {
			mods = append(mods, fmt.Sprintf("%s %s", m, orDefault(versions[m], "?")))
		}
		if strings.HasPrefix(l, "httpsession-") {
			mods = append(mods, "this repository")
			switch l {
			case "httpsession-redis":
				mods = append(mods, "github.com/redis/go-redis/v9 "+orDefault(versions["github.com/redis/go-redis/v9"], "?"))
			case "httpsession-memcached":
				mods = append(mods, "github.com/bradfitz/gomemcache "+orDefault(versions["github.com/bradfitz/gomemcache"], "?"))
			case "httpsession-postgres":
				mods = append(mods, "github.com/jackc/pgx/v5 "+orDefault(versions["github.com/jackc/pgx/v5"], "?"))
			case "httpsession-sqlite":
				mods = append(mods, "modernc.org/sqlite "+orDefault(versions["modernc.org/sqlite"], "?"))
			}
		}
		p("| %s | %s | %s |\n", l, libWhat[l], strings.Join(mods, "<br>"))
	}
	p("\n")

	p("## What one iteration is\n\n")
	p("Every library runs the same chain (see `bench/doc.go`): a fresh `*http.Request` parsed by `http.ReadRequest` " +
		"(the parser net/http's server uses) from the wire bytes of a browser-like GET, through a reused " +
		"`bufio.Reader`; TLS state attached; the library's middleware if it has one; an `http.ServeMux` with one route; " +
		"the scenario's handler; a reused in-memory `ResponseWriter`. **floor** is that chain without sessions, so it is roughly " +
		"what net/http's server spends on a small request between socket read and socket write. " +
		"The Cookie header carries the library's session cookie after a third-party cookie that pads it to the same size " +
		"for every library and for floor (512 bytes here; gorilla-cookie's 480-byte cookie is the largest), so parsing the " +
		"header costs everyone the same and **+floor** is the library's own work.\n\n")
	p("Scenarios: **new** (no cookie; the handler sets one string), **read** (valid cookie; reads one key), " +
		"**modify** (valid cookie; reads and increments a counter), **untouched** (valid cookie; never touches the session). " +
		"Payload: 5 short string keys plus the counter. Before timing, each sub-benchmark checks one response for status, body " +
		"and the presence or absence of Set-Cookie, and checks status and Set-Cookie again after timing.\n\n")

	p("![time per request, by scenario and library](chart.svg)\n\n")

	writeTargets(p, res)
	writeRatios(p, res)
	writeRoundTrips(p, rts)
	writeRaw(p, res)
	writeUntouchedPaired(p, res)
	writeScale(p, res)
	writeParallel(p, res)
	writeMemoryFlood(p, res)

	p("## benchstat\n\n")
	p("`%s`, on the raw output of the run.\n\n", orDefault(meta["benchstat"], "benchstat"))
	for _, b := range benchstats {
		title, path, _ := strings.Cut(b, "=")
		data, err := os.ReadFile(path)
		if err != nil {
			p("### %s\n\n(missing: %v)\n\n", title, err)
			continue
		}
		p("### %s\n\n```\n%s\n```\n\n", title, strings.TrimRight(string(data), "\n"))
	}
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func memTotal() string {
	data, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err == nil {
				return fmt.Sprintf("%.1f GiB", kb/(1<<20))
			}
		}
	}
	return "?"
}

type printer func(format string, a ...any)

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}

func writeTargets(p printer, res results) {
	p("## Targets\n\n")
	p("The issue's targets, judged on medians of this run (ratio of medians, as the issue defines them). " +
		"*paired* is a robustness check: the median over the runs of the same quantity computed within each run " +
		"(floor and library measured seconds apart); when the two disagree about a verdict, the machine was too busy " +
		"to decide that target, and the result says *undecided*. *CPU time* is the same quantity from the process's CPU time per request (cpu-ns/op, " +
		"which other work on the machine does not stretch as it stretches wall time); it does not apply to the network wait. " +
		"In the untouched rows, where the differences are a few percent of a request and below the run-to-run noise, " +
		"*paired* is BenchmarkUntouchedPaired's over-floor-ns/op instead (floor and the library interleaved in chunks of " +
		"64 requests within one benchmark, median over the chunk pairs; here its median over the runs), and " +
		"*floor-context* is the same quantity for a middleware that does nothing but wrap the writer and call " +
		"r.WithContext: net/http lets a middleware hand state to handlers only through a copy of the request, so no " +
		"such middleware can cost less.\n\n")
	p("| target | measured | paired | CPU time | limit | result |\n|---|---|---|---|---|---|\n")
	cpuCol := ""
	// row prints one target; ok is the verdict (medians), pairedOK
	// the robustness check's, and a disagreement is shown, not settled.
	row := func(target, measured, paired, limit string, ok, pairedOK, have bool) {
		if !have {
			p("| %s | not run | | | %s | — |\n", target, limit)
			return
		}
		result := verdict(ok)
		if ok != pairedOK {
			result = fmt.Sprintf("**undecided**: %s by the medians, %s paired", strings.Trim(verdict(ok), "*"), strings.Trim(verdict(pairedOK), "*"))
		}
		p("| %s | %s | %s | %s | %s | %s |\n", target, measured, paired, cpuCol, limit, result)
	}
	// le and ge compare a paired figure with a limit; a missing figure
	// (NaN) agrees with the medians.
	le := func(x, limit float64, ok bool) bool { return ok && math.IsNaN(x) || x <= limit }
	ge := func(x, limit float64, ok bool) bool { return ok && math.IsNaN(x) || x >= limit }
	cpuRatio := func(a, b summary) string {
		if math.IsNaN(a.cpu) || math.IsNaN(b.cpu) {
			return "—"
		}
		return ratio(a.cpu / b.cpu)
	}
	floor := map[string]summary{}
	for _, sc := range scenarios {
		floor[sc], _ = res.get(mw(sc, "floor"))
	}
	div := func(x, y float64) float64 { return x / y }
	overFloor := func(l string) float64 {
		s, ok := res.get("UntouchedPaired/lib=" + l)
		if !ok {
			return math.NaN()
		}
		return s.overFloor
	}
	fmtOver := func(ns float64) string {
		if math.IsNaN(ns) {
			return "—"
		}
		return fmt.Sprintf("%+.3f µs", ns/1000)
	}
	bound := fmtOver(overFloor("floor-context"))
	for _, l := range ourLibs {
		s, ok := res.get(mw("untouched", l))
		f := floor["untouched"]
		dt, da := s.ns-f.ns, s.allocs-f.allocs
		cpuCol = "—"
		if !math.IsNaN(s.cpu) && !math.IsNaN(f.cpu) {
			cpuCol = fmt.Sprintf("%+.3f µs", (s.cpu-f.cpu)/1000)
		}
		met, over := dt <= 200 && da <= 2, overFloor(l)
		row(fmt.Sprintf("untouched: %s ≤ floor + 0.2 µs, + 2 allocs", l),
			fmt.Sprintf("floor %+.3f µs, %+.0f allocs", dt/1000, da),
			fmt.Sprintf("%s (floor-context %s)", fmtOver(over), bound), "+0.200 µs, +2 allocs",
			met, le(over, 200, met) && da <= 2, ok && f.n > 0)
	}
	limits := []struct {
		lib, sc string
		max     float64
	}{
		{"httpsession-nacl", "read", 2.0}, {"httpsession-nacl", "modify", 3.0},
		{"httpsession-encrypted", "read", 3.0}, {"httpsession-encrypted", "modify", 4.0},
	}
	for _, t := range limits {
		s, ok := res.get(mw(t.sc, t.lib))
		r := s.ns / floor[t.sc].ns
		pr := res.paired(mw(t.sc, t.lib), mw(t.sc, "floor"), div)
		cpuCol = cpuRatio(s, floor[t.sc])
		row(fmt.Sprintf("%s %s ≤ %.1f× floor", t.lib, t.sc, t.max), ratio(r)+" floor ("+us(s.ns)+" vs "+us(floor[t.sc].ns)+")",
			ratio(pr), fmt.Sprintf("%.1f×", t.max), r <= t.max, le(pr, t.max, r <= t.max), ok)
	}
	for _, l := range ourCookie {
		for _, sc := range []string{"read", "modify"} {
			s, ok1 := res.get(mw(sc, l))
			g, ok2 := res.get(mw(sc, "gorilla-cookie"))
			speed, allocs := g.ns/s.ns, s.allocs/g.allocs
			ps := res.paired(mw(sc, "gorilla-cookie"), mw(sc, l), div)
			met := speed >= 3 && allocs <= 0.25
			cpuCol = cpuRatio(g, s)
			row(fmt.Sprintf("%s %s ≥ 3× faster than gorilla-cookie, ≤ ¼ of its allocs", l, sc),
				fmt.Sprintf("%s faster; %s / %s allocs (%.2f)", ratio(speed), num(s.allocs), num(g.allocs), allocs),
				ratio(ps), "3.00×; 0.25", met, ge(ps, 3, met) && allocs <= 0.25, ok1 && ok2)
		}
	}
	for _, sc := range []string{"read", "modify"} {
		s, ok1 := res.get(mw(sc, "httpsession-memory"))
		c, ok2 := res.get(mw(sc, "scs-memory"))
		speed := c.ns / s.ns
		ps := res.paired(mw(sc, "scs-memory"), mw(sc, "httpsession-memory"), div)
		cpuCol = cpuRatio(c, s)
		row(fmt.Sprintf("httpsession-memory %s ≥ 3× faster than scs-memory", sc), ratio(speed)+" faster",
			ratio(ps), "3.00×", speed >= 3, ge(ps, 3, speed >= 3), ok1 && ok2)
	}
	// The SQL stores against scs's on the same database and driver: faster,
	// that is a ratio above 1.
	for _, pair := range ourSQL {
		for _, sc := range []string{"read", "modify"} {
			s, ok1 := res.get(mw(sc, pair[0]))
			c, ok2 := res.get(mw(sc, pair[1]))
			speed := c.ns / s.ns
			ps := res.paired(mw(sc, pair[1]), mw(sc, pair[0]), div)
			cpuCol = cpuRatio(c, s)
			row(fmt.Sprintf("%s %s faster than %s", pair[0], sc, pair[1]),
				fmt.Sprintf("%s faster (%s vs %s)", ratio(speed), us(s.ns), us(c.ns)),
				ratio(ps), "> 1.00×", speed > 1, ps > 1 || math.IsNaN(ps) && speed > 1, ok1 && ok2)
		}
	}
	// "floor + one raw GET" is measured as one request chain whose floor
	// handler makes the GET (op=redis-get-in-chain): under the same
	// scheduling as the libraries' requests. A bare GET loop
	// (op=redis-get) idles between round trips and pays more wake-up
	// latency on a VM; the sum floor + bare GET is shown beside it.
	s, ok1 := res.get(mw("read", "httpsession-redis"))
	ic, ok2 := res.get("RawRoundTrip/op=redis-get-in-chain")
	g, okg := res.get("RawRoundTrip/op=redis-get")
	cpuCol = "—"
	sum := "no bare GET"
	if okg {
		sum = fmt.Sprintf("%.2f × (floor %s + bare GET %s)", s.ns/(floor["read"].ns+g.ns), us(floor["read"].ns), us(g.ns))
	}
	pr := res.paired(mw("read", "httpsession-redis"), "RawRoundTrip/op=redis-get-in-chain", div)
	met := s.ns <= 1.15*ic.ns
	row("httpsession-redis read ≤ 1.15 × (floor + one raw Redis GET)",
		fmt.Sprintf("%s = %.2f × floor+GET in one chain (%s); %s", us(s.ns), s.ns/ic.ns, us(ic.ns), sum),
		ratio(pr), "1.15×", met, le(pr, 1.15, met), ok1 && ok2)
	// The memory store under a flood (the library's BenchmarkMemoryFlood):
	// reads of owned sessions on a full store while another goroutine
	// creates anonymous sessions in it, 20 a millisecond, against the same
	// reads on an empty store; then under a flood as fast as the goroutine
	// can go, against the same reads on a store as full while the same
	// flood goes to another store, so that both compete alike for the
	// cores and the garbage collector and read a map as large.
	cpuCol = "—"
	for _, t := range []struct{ state, base, what string }{
		{"full-stream", "empty", "an empty store's"},
		{"full-flooded", "flood-elsewhere", "a full store's while the same flood goes elsewhere"},
	} {
		f, ok1 := res.get(flood(t.state))
		e, ok2 := res.get(flood(t.base))
		r := f.ns / e.ns
		pr := res.paired(flood(t.state), flood(t.base), div)
		row(fmt.Sprintf("httpsession-memory: reads of owned sessions at the cap (%s) ≤ 1.5 × %s (%s)", t.state, t.what, t.base),
			fmt.Sprintf("%s vs %s: %s", us(f.ns), us(e.ns), ratio(r)),
			ratio(pr), "1.5×", r <= 1.5, le(pr, 1.5, r <= 1.5), ok1 && ok2)
	}
	p("\n")
}

// flood names a sub-benchmark of the library's BenchmarkMemoryFlood.
func flood(state string) string { return "MemoryFlood/state=" + state }

// writeMemoryFlood shows every state of BenchmarkMemoryFlood.
func writeMemoryFlood(p printer, res results) {
	p("## Memory store under a flood\n\n")
	p("The library's BenchmarkMemoryFlood (`bench_test.go` at the repository's root): one GetVersion of an owned session " +
		"(a key with `{`) on a MemoryBackend bounded at DefaultMaxSessions, while another goroutine floods a store with new " +
		"anonymous sessions: 20 a millisecond through ServerStore.Save (*stream*), or as fast as it can through ServerStore.Save " +
		"(*flooded*) or by Add in a tight loop (*adding*), into the same, full, backend (each new session evicts one) or into " +
		"another one (*elsewhere*: the same competition for the cores and the garbage collector, none for the backend; the read backend is full too, " +
		"so that both read a map as large). " +
		"*empty*: the owned sessions alone, no flood; *full-static*: the backend full, no flood.\n\n")
	p("| state | time/op | allocs/op |\n|---|---:|---:|\n")
	for _, st := range []string{"empty", "full-static", "full-stream", "flood-elsewhere", "full-flooded", "add-elsewhere", "full-adding"} {
		s, ok := res.get(flood(st))
		if !ok {
			p("| %s | not run | |\n", st)
			continue
		}
		p("| %s | %s | %s |\n", st, us(s.ns), num(s.allocs))
	}
	p("\n")
}

func writeRatios(p printer, res results) {
	p("## Ratios by scenario\n\n")
	p("×floor is time/op over floor's; +floor is the difference. A peer column is the peer's time/op over this library's " +
		"(above 1: this library is that many times faster).\n\n")
	for _, sc := range scenarios {
		f, fok := res.get(mw(sc, "floor"))
		p("### scenario=%s\n\n", sc)
		p("| lib | time/op | ×floor | +floor | allocs/op | B/op |")
		for _, pe := range peers {
			p(" vs %s |", pe)
		}
		p("\n|---|---:|---:|---:|---:|---:|")
		for range peers {
			p("---:|")
		}
		p("\n")
		for _, l := range libs {
			s, ok := res.get(mw(sc, l))
			if !ok {
				p("| %s | not run | | | | |", l)
				for range peers {
					p(" |")
				}
				p("\n")
				continue
			}
			xf, df := math.NaN(), math.NaN()
			if fok {
				xf, df = s.ns/f.ns, s.ns-f.ns
			}
			p("| %s | %s | %s | %+.2f µs | %s | %s |", l, us(s.ns), ratio(xf), df/1000, num(s.allocs), num(s.bytes))
			for _, pe := range peers {
				ps, ok := res.get(mw(sc, pe))
				if !ok || pe == l {
					p(" |")
					continue
				}
				p(" %s |", ratio(ps.ns/s.ns))
			}
			p("\n")
		}
		p("\n")
	}
}

func writeRoundTrips(p printer, rts []roundTrip) {
	p("## Round trips per request\n\n")
	if len(rts) == 0 {
		p("TestRoundTrips did not run (no servers).\n\n")
		return
	}
	p("Commands the servers executed per request (Redis INFO commandstats, Memcached stats, summed over both servers), " +
		"and for PostgreSQL and SQLite the statements the `database/sql` connections ran (a driver wrapper counts them, by " +
		"their first word), from `TestRoundTrips`; for Redis the go-redis hook's count of calls agreed unless shown. " +
		"httpsession's budget is asserted: untouched 0, read 1, modify 2 (new: 1, and on SQL one bounded cleanup `DELETE` " +
		"every 10th create).\n\n")
	p("| lib | new | read | modify | untouched |\n|---|---|---|---|---|\n")
	byLib := map[string]map[string]roundTrip{}
	var order []string
	for _, rt := range rts {
		if byLib[rt.lib] == nil {
			byLib[rt.lib] = map[string]roundTrip{}
			order = append(order, rt.lib)
		}
		byLib[rt.lib][rt.scenario] = rt
	}
	for _, l := range order {
		p("| %s |", l)
		for _, sc := range scenarios {
			rt, ok := byLib[l][sc]
			if !ok {
				p(" — |")
				continue
			}
			cell := rt.cmds
			if rt.detail != "" && rt.detail != "none" {
				cell += " (" + strings.ReplaceAll(rt.detail, ",", ", ") + ")"
			}
			if rt.client != "-" && rt.client != rt.cmds {
				cell += "; client calls " + rt.client
			}
			p(" %s |", cell)
		}
		p("\n")
	}
	p("\n")
}

func writeRaw(p printer, res results) {
	p("## Raw round trips\n\n")
	p("One GET of a 160-byte value with the clients the libraries use, in the same run: the network part of a server-side read. " +
		"*in-chain* is floor's read request whose handler makes the GET (floor + one GET as one measurement, scheduled like the " +
		"libraries' requests); the bare loop does nothing between GETs, so on a VM it also pays the wake-up of an idle CPU.\n\n")
	p("| op | time/op | allocs/op |\n|---|---:|---:|\n")
	for _, op := range []string{"redis-get-in-chain", "redis-get", "memcached-get-in-chain", "memcached-get"} {
		s, ok := res.get("RawRoundTrip/op=" + op)
		if !ok {
			p("| %s | not run | |\n", op)
			continue
		}
		p("| %s | %s | %s |\n", op, us(s.ns), num(s.allocs))
	}
	p("\n")
}

func writeUntouchedPaired(p printer, res results) {
	p("## Untouched, interleaved\n\n")
	p("BenchmarkUntouchedPaired: the untouched scenario's cost over floor with floor and the library interleaved in chunks of " +
		"64 requests, median over the chunk pairs (median over the runs here). gorilla has no middleware, so its chain is " +
		"floor's and its figure shows what is left of the noise; scs loads the session from its store.\n\n")
	p("| lib | over floor |\n|---|---:|\n")
	for _, l := range libs[1:] {
		s, ok := res.get("UntouchedPaired/lib=" + l)
		if !ok || math.IsNaN(s.overFloor) {
			p("| %s | not run |\n", l)
			continue
		}
		p("| %s | %+.3f µs |\n", l, s.overFloor/1000)
	}
	p("\n")
}

func writeScale(p printer, res results) {
	p("## Scale\n\n")
	p("read and modify with 1, 10 and 100 string keys (plus the counter), and with the 5-key payload plus one string sized so " +
		"that every cookie library's cookie stays within 4000 bytes (near4KB; cookie libraries only). Cookie headers are padded to " +
		"512, 768, 2560 and 4096 bytes respectively, for floor too. Cells: time/op (allocs/op); \"—\" means not run, e.g. a cookie library that cannot keep 100 keys " +
		"in 4096 bytes.\n\n")
	var cols []string
	seen := map[string]bool{}
	var rows []string
	rowSeen := map[string]bool{}
	names := sortedKeys(res)
	for _, n := range names {
		rest, ok := strings.CutPrefix(n, "Scale/")
		if !ok {
			continue
		}
		i := strings.LastIndex(rest, "/lib=")
		if i < 0 {
			continue
		}
		row, lib := rest[:i], rest[i+5:]
		if !seen[lib] {
			seen[lib] = true
		}
		if !rowSeen[row] {
			rowSeen[row] = true
			rows = append(rows, row)
		}
	}
	for _, l := range libs {
		if seen[l] {
			cols = append(cols, l)
		}
	}
	if len(rows) == 0 {
		p("Not run.\n\n")
		return
	}
	sort.SliceStable(rows, func(i, j int) bool { return scaleOrder(rows[i]) < scaleOrder(rows[j]) })
	p("| scenario / keys |")
	for _, c := range cols {
		p(" %s |", c)
	}
	p("\n|---|")
	for range cols {
		p("---:|")
	}
	p("\n")
	for _, r := range rows {
		p("| %s |", strings.ReplaceAll(r, "/", " / "))
		for _, c := range cols {
			s, ok := res.get("Scale/" + r + "/lib=" + c)
			if !ok {
				p(" — |")
				continue
			}
			p(" %s (%s) |", us(s.ns), num(s.allocs))
		}
		p("\n")
	}
	p("\n")
}

func scaleOrder(row string) int {
	o := 0
	if strings.Contains(row, "scenario=modify") {
		o = 10
	}
	switch {
	case strings.HasSuffix(row, "keys=1"):
		return o + 1
	case strings.HasSuffix(row, "keys=10"):
		return o + 2
	case strings.HasSuffix(row, "keys=100"):
		return o + 3
	}
	return o + 4
}

func writeParallel(p printer, res results) {
	p("## Parallel\n\n")
	p("BenchmarkMiddleware under `b.RunParallel` (GOMAXPROCS goroutines, one library instance; server stores share one session). " +
		"Cells: time/op as the testing package reports it for parallel benchmarks (wall time / requests), and ×floor.\n\n")
	p("| lib |")
	for _, sc := range scenarios {
		p(" %s |", sc)
	}
	p("\n|---|---:|---:|---:|---:|\n")
	any := false
	for _, l := range libs {
		p("| %s |", l)
		for _, sc := range scenarios {
			s, ok := res.get("Parallel/scenario=" + sc + "/lib=" + l)
			f, fok := res.get("Parallel/scenario=" + sc + "/lib=floor")
			if !ok {
				p(" — |")
				continue
			}
			any = true
			if fok && l != "floor" {
				p(" %s (%s) |", us(s.ns), ratio(s.ns/f.ns))
			} else {
				p(" %s |", us(s.ns))
			}
		}
		p("\n")
	}
	if !any {
		p("\nNot run.\n")
	}
	p("\n")
}

func sortedKeys(r results) []string {
	var k []string
	for n := range r {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

// ---- chart ----

// chart draws BenchmarkMiddleware's medians as horizontal bars, one panel
// per scenario, each panel on its own linear scale, with the value and the
// ratio to floor printed on every bar.
func chart(res results) string {
	const (
		panelW, labelW, rowH, top, gap = 560, 170, 20, 34, 26
		cols                           = 2
	)
	var present []string
	for _, l := range libs {
		for _, sc := range scenarios {
			if _, ok := res.get(mw(sc, l)); ok {
				present = append(present, l)
				break
			}
		}
	}
	panelH := top + rowH*len(present) + 10
	rows := (len(scenarios) + cols - 1) / cols
	width, height := cols*panelW+(cols+1)*gap, 50+rows*(panelH+gap)+30
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="28" font-size="17" font-weight="bold">Time per request (median, µs; lower is better) — httpsession vs gorilla/sessions and scs</text>`+"\n", gap)
	for i, sc := range scenarios {
		x0 := gap + (i%cols)*(panelW+gap)
		y0 := 50 + (i/cols)*(panelH+gap)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#f7f7f7" stroke="#dddddd"/>`+"\n", x0, y0, panelW, panelH)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="14" font-weight="bold">scenario=%s</text>`+"\n", x0+10, y0+22, sc)
		maxNS, floorNS := 0.0, math.NaN()
		for _, l := range present {
			if s, ok := res.get(mw(sc, l)); ok {
				maxNS = math.Max(maxNS, s.ns)
				if l == "floor" {
					floorNS = s.ns
				}
			}
		}
		barMax := float64(panelW - labelW - 150)
		for j, l := range present {
			y := y0 + top + j*rowH
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", x0+labelW-6, y+13, html.EscapeString(l))
			s, ok := res.get(mw(sc, l))
			if !ok {
				fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#999999">not run</text>`+"\n", x0+labelW, y+13)
				continue
			}
			bw := math.Max(1, s.ns/maxNS*barMax)
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x0+labelW, y+3, bw, rowH-6, libColor(l))
			label := us(s.ns)
			if l != "floor" && !math.IsNaN(floorNS) {
				label += fmt.Sprintf("  (%.1f× floor)", s.ns/floorNS)
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(x0+labelW)+bw+5, y+13, html.EscapeString(label))
		}
	}
	ly := height - 14
	lx := gap
	for _, k := range []struct{ name, color string }{{"floor (no sessions)", libColor("floor")}, {"httpsession", libColor("httpsession-")}, {"gorilla/sessions", libColor("gorilla-")}, {"scs", libColor("scs-")}} {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", lx, ly-10, k.color, lx+16, ly, html.EscapeString(k.name))
		lx += 40 + 8*len(k.name)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func libColor(l string) string {
	switch {
	case strings.HasPrefix(l, "floor"):
		return "#718096"
	case strings.HasPrefix(l, "httpsession-"):
		return "#2b6cb0"
	case strings.HasPrefix(l, "gorilla-"):
		return "#dd6b20"
	}
	return "#38a169"
}
