// Package bench compares httpsession with gorilla/sessions and scs on the
// same request path. It is its own module so that the peers never enter the
// library's go.mod. Everything lives in the _test.go files; cmd/report turns
// a run into RESULTS.md and chart.svg.
//
// Run it from the repository root with `make bench`, which starts Redis,
// Memcached and PostgreSQL (scripts/testenv.sh), runs every benchmark with
// -count 6 -benchmem, summarises the run with benchstat and regenerates
// RESULTS.md and chart.svg. A plain `go test -bench .` in this directory
// works too; the Redis, Memcached and PostgreSQL libraries are then skipped
// unless HTTPSESSION_REDIS_ADDR / HTTPSESSION_MEMCACHED_ADDRS /
// HTTPSESSION_POSTGRES_DSN are set (under CI=true they fail instead). The
// SQLite libraries need no server: each opens a file of its own.
//
// # The SQL libraries
//
// httpsession-postgres and httpsession-sqlite (NewSQLStore's ServerStore on
// SQLBackend) run beside scs's postgresstore and sqlite3store on the same
// drivers, pgx's database/sql driver and modernc.org/sqlite, with the same
// *sql.DB settings (database/sql's defaults) and, for SQLite, the same DSN:
// WAL mode and a busy timeout, as DialectSQLite's documentation recommends.
// Each instance gets a table of its own (PostgreSQL, dropped at cleanup) or
// a database file of its own (SQLite, in the test's temporary directory),
// created with the schema each library documents. TestRoundTrips counts
// their statements through a database/sql driver wrapper.
//
// # Dependencies
//
// The peers are pinned to the versions the issue lists (the module proxy
// refuses @latest for some of them). After changing a version run
// `go mod tidy -e`: one of gorilla-sessions-memcache's own test
// dependencies (github.com/memcachier/mc/v3) is not on the proxy, and -e
// lets tidy finish without it; nothing here imports it.
//
// # What one iteration does
//
// Every library runs the same chain, and "floor" is that chain without
// sessions:
//
//  1. A fresh *http.Request is parsed by http.ReadRequest, the parser
//     net/http's server runs for every request, from the wire bytes of a
//     browser-like GET (Host, User-Agent, Accept, Accept-Language,
//     Accept-Encoding and a Cookie header) through a reused bufio.Reader,
//     as on a keep-alive connection. TLS state is attached as an HTTPS
//     server would. The Cookie header holds the library's session cookie
//     (none in scenario=new) after a third-party cookie that pads the
//     header to the same size for every library, floor included: 512
//     bytes in BenchmarkMiddleware, where gorilla-cookie's 480-byte cookie
//     is the largest. So header parsing costs every library the same, and
//     the difference to floor is the library's own work.
//  2. The library's middleware, if it has one (httpsession, scs; gorilla has
//     none: its handlers call store.Get and session.Save).
//  3. An http.ServeMux with one "GET /" route.
//  4. The scenario's handler, which calls the library through a small
//     adapter and writes a short body.
//  5. A reused ResponseWriter that keeps status, headers and body in memory
//     (its header map is cleared, not reallocated, between iterations).
//
// So floor is roughly what net/http's server spends on a small request
// between the socket read and the socket write; the sessions' cost is
// everything above it.
//
// floor-context is floor behind a middleware that only wraps the writer and
// calls r.WithContext: the least any middleware that hands its handlers
// state through the request can cost, and so the bound for the untouched
// scenario. BenchmarkUntouchedPaired measures that scenario's cost over
// floor with the two chains interleaved in short chunks, because the
// difference is smaller than BenchmarkMiddleware's run-to-run noise.
package bench
