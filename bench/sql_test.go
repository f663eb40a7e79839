package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/postgresstore"
	"github.com/alexedwards/scs/sqlite3store"
	"github.com/alexedwards/scs/v2"
	"github.com/go-httpsession/httpsession"
	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	_ "modernc.org/sqlite"             // driver "sqlite"
)

// The SQL libraries: httpsession's SQL store and scs's postgresstore and
// sqlite3store, on the same drivers (pgx's database/sql driver for
// PostgreSQL, modernc.org/sqlite for SQLite) and the same *sql.DB settings
// (database/sql's defaults). scs's stores take a *sql.DB and import no
// driver; sqlite3store's go.mod names mattn/go-sqlite3 for its own tests
// only, and its statements (julianday, $1 placeholders) run as they are on
// modernc's SQLite.
//
// Every instance gets a table of its own, created when it is opened and
// dropped at cleanup (PostgreSQL), or a database file of its own in the
// test's temporary directory (SQLite), so no library reads another's rows
// or a previous sub-benchmark's.

// sqliteDSN names a fresh SQLite file under tb's temporary directory, with
// the settings DialectSQLite's documentation recommends (a busy timeout and
// WAL mode); scs's store gets the same.
func sqliteDSN(tb testing.TB) string {
	return "file:" + filepath.Join(tb.TempDir(), "sessions.db") + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)"
}

// sqlDB opens the lib's database: PostgreSQL at HTTPSESSION_POSTGRES_DSN
// (server "postgres") or a fresh SQLite file (server "sqlite"). It is
// pinged before it is returned and closed at cleanup. When e counts
// statements (TestRoundTrips), its connections count them.
func (e *env) sqlDB(tb testing.TB, server string) *sql.DB {
	tb.Helper()
	e.need(tb, server)
	name, dsn := "pgx", e.postgresDSN
	if server == "sqlite" {
		name, dsn = "sqlite", sqliteDSN(tb)
	}
	db, err := sql.Open(name, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	if e.statements != nil {
		drv := db.Driver()
		db.Close()
		db = sql.OpenDB(countingConnector{drv: drv, dsn: dsn, n: e.statements})
	}
	tb.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		tb.Fatalf("%s: %v", server, err)
	}
	return db
}

// sqlTable returns a fresh table name with prefix; on PostgreSQL the table
// is dropped at cleanup (a SQLite file goes with its directory).
func sqlTable(tb testing.TB, db *sql.DB, server, prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	table := prefix + hex.EncodeToString(b[:])
	if server == "postgres" {
		tb.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+table); err != nil {
				tb.Logf("drop %s: %v", table, err)
			}
		})
	}
	return table
}

// openHTTPSessionSQL is NewSQLStore (ServerStore on SQLBackend, default
// cleanup) on its own table, created by CreateTable.
func openHTTPSessionSQL(server string, dialect httpsession.SQLDialect) func(testing.TB, *env) sessionLib {
	return func(tb testing.TB, e *env) sessionLib {
		db := e.sqlDB(tb, server)
		backend := httpsession.NewSQLBackend(db, dialect, httpsession.WithSQLTable(sqlTable(tb, db, server, "bench_httpsession_")))
		if err := backend.CreateTable(context.Background()); err != nil {
			tb.Fatal(err)
		}
		return newHSLib(tb, httpsession.NewServerStore(backend))
	}
}

// scsSchema is the CREATE TABLE and CREATE INDEX of scs's READMEs, per
// server, for table %[1]s.
var scsSchema = map[string][]string{
	"postgres": {
		"CREATE TABLE %[1]s (token TEXT PRIMARY KEY, data BYTEA NOT NULL, expiry TIMESTAMPTZ NOT NULL)",
		"CREATE INDEX %[1]s_expiry_idx ON %[1]s (expiry)",
	},
	"sqlite": {
		"CREATE TABLE %[1]s (token TEXT PRIMARY KEY, data BLOB NOT NULL, expiry REAL NOT NULL)",
		"CREATE INDEX %[1]s_expiry_idx ON %[1]s(expiry)",
	},
}

// openSCSSQL is scs's postgresstore or sqlite3store with its default
// cleanup (a goroutine every 5 minutes, stopped at cleanup) on its own
// table, created with the schema of its README.
func openSCSSQL(server string) func(testing.TB, *env) sessionLib {
	return func(tb testing.TB, e *env) sessionLib {
		db := e.sqlDB(tb, server)
		table := sqlTable(tb, db, server, "bench_scs_")
		for _, q := range scsSchema[server] {
			if _, err := db.Exec(fmt.Sprintf(q, table)); err != nil {
				tb.Fatal(err)
			}
		}
		var store interface {
			scs.Store
			StopCleanup()
		}
		if server == "postgres" {
			store = postgresstore.NewWithConfig(db, postgresstore.Config{CleanUpInterval: 5 * time.Minute, TableName: table})
		} else {
			store = sqlite3store.NewWithConfig(db, sqlite3store.Config{CleanUpInterval: 5 * time.Minute, TableName: table})
		}
		tb.Cleanup(store.StopCleanup)
		return scsLib{newSCS(tb, store)}
	}
}

// ---- statement counting (TestRoundTrips) ----

// sqlCounter counts the statements a *sql.DB's connections run, by their
// first word ("select", "insert", "update", "delete", …): one statement is
// one round trip to the database.
type sqlCounter struct {
	mu sync.Mutex
	c  counts
}

func newSQLCounter() *sqlCounter { return &sqlCounter{c: counts{}} }

func (s *sqlCounter) inc(query string) {
	verb, _, _ := strings.Cut(strings.TrimSpace(query), " ")
	s.mu.Lock()
	s.c[strings.ToLower(verb)]++
	s.mu.Unlock()
}

func (s *sqlCounter) snapshot(*testing.T) counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := counts{}
	for k, v := range s.c {
		c[k] = v
	}
	return c
}

// countingConnector opens drv's connections on dsn, wrapped to count.
type countingConnector struct {
	drv driver.Driver
	dsn string
	n   *sqlCounter
}

func (c countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	var conn driver.Conn
	var err error
	if dc, ok := c.drv.(driver.DriverContext); ok {
		var cn driver.Connector
		if cn, err = dc.OpenConnector(c.dsn); err == nil {
			conn, err = cn.Connect(ctx)
		}
	} else {
		conn, err = c.drv.Open(c.dsn)
	}
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, n: c.n}, nil
}

func (c countingConnector) Driver() driver.Driver { return c.drv }

// countingConn counts ExecContext, QueryContext and the statements it
// prepares (database/sql runs every statement of both libraries through
// ExecContext or QueryContext when the driver has them, as pgx and modernc
// do) and passes the rest on.
type countingConn struct {
	driver.Conn
	n *sqlCounter
}

func (c *countingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.n.inc(q)
	return e.ExecContext(ctx, q, args)
}

func (c *countingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	qc, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.n.inc(q)
	return qc.QueryContext(ctx, q, args)
}

// PrepareContext counts a statement when it is prepared: database/sql
// prepares, runs and closes a statement when ExecContext or QueryContext
// answers driver.ErrSkip, which neither pgx nor modernc does.
func (c *countingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	c.n.inc(q)
	if p, ok := c.Conn.(driver.ConnPrepareContext); ok {
		return p.PrepareContext(ctx, q)
	}
	return c.Conn.Prepare(q)
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := c.Conn.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	return nil, fmt.Errorf("bench: driver without BeginTx")
}

func (c *countingConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *countingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *countingConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *countingConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}
