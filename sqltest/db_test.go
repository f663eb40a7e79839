package sqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-httpsession/httpsession"
	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

const howToRun = "run `make test`, or `bash scripts/testenv.sh sh -c 'cd sqltest && go test -race ./...'`, " +
	"which start PostgreSQL and MariaDB"

func init() {
	// The driver logs the dead connections of the fault tests.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
}

// needEnv returns the environment variable name, which scripts/testenv.sh
// sets, or skips the test (fails it under CI=true) when it is unset.
func needEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set, and CI=true: every test must run in CI; %s", name, howToRun)
		}
		t.Skipf("%s is not set: %s", name, howToRun)
	}
	return v
}

// database is one database under test.
type database struct {
	name    string
	dialect httpsession.SQLDialect
	driver  string
	// dsn returns the data source name, or skips t.
	dsn func(t *testing.T) string
}

func databases() []database {
	return []database{
		{"sqlite", httpsession.DialectSQLite, "sqlite", func(t *testing.T) string { return sqliteDSN(t) }},
		{"postgres", httpsession.DialectPostgres, "pgx", func(t *testing.T) string { return needEnv(t, "HTTPSESSION_POSTGRES_DSN") }},
		{"mariadb", httpsession.DialectMySQL, "mysql", func(t *testing.T) string { return needEnv(t, "HTTPSESSION_MYSQL_DSN") }},
	}
}

// sqliteDSN names a fresh SQLite file in t's temporary directory, in WAL
// mode with a busy timeout, as DialectSQLite's documentation asks.
func sqliteDSN(t *testing.T) string {
	return "file:" + filepath.Join(t.TempDir(), "sessions.db") + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)"
}

// forEachDatabase runs test on every database, in parallel.
func forEachDatabase(t *testing.T, test func(t *testing.T, d database)) {
	for _, d := range databases() {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			test(t, d)
		})
	}
}

// openDB opens d through a driver wrapper that counts statements (see
// countingDB), closed when t ends.
func openDB(t *testing.T, d database) *countingDB {
	t.Helper()
	return openDSN(t, d, d.dsn(t))
}

func openDSN(t *testing.T, d database, dsn string) *countingDB {
	t.Helper()
	probe, err := sql.Open(d.driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	drv := probe.Driver()
	_ = probe.Close()
	c := &countingDB{}
	var conn driver.Connector = dsnConnector{drv, dsn}
	if dc, ok := drv.(driver.DriverContext); ok {
		if conn, err = dc.OpenConnector(dsn); err != nil {
			t.Fatal(err)
		}
	}
	c.DB = sql.OpenDB(countingConnector{conn, &c.statements})
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := c.PingContext(ctx); err != nil {
		t.Fatalf("%s: %v", d.name, err)
	}
	return c
}

// newTable returns a backend on a table of its own, created now and
// dropped when t ends.
func newTable(t *testing.T, d database, db *sql.DB, opts ...httpsession.SQLOption) (*httpsession.SQLBackend, string) {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	table := "httpsession_test_" + hex.EncodeToString(b[:])
	be := httpsession.NewSQLBackend(db, d.dialect, append([]httpsession.SQLOption{httpsession.WithSQLTable(table)}, opts...)...)
	if err := be.CreateTable(t.Context()); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP TABLE "+table); err != nil {
			t.Logf("drop %s: %v", table, err)
		}
	})
	return be, table
}

// countingDB is a *sql.DB whose driver connections count the statements
// they run: one statement is one round trip to the database.
type countingDB struct {
	*sql.DB
	statements atomic.Int64
}

type dsnConnector struct {
	drv driver.Driver
	dsn string
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.drv }

type countingConnector struct {
	driver.Connector
	n *atomic.Int64
}

func (c countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, n: c.n}, nil
}

// countingConn counts ExecContext and QueryContext, through which
// database/sql runs every statement of SQLBackend, and passes the rest on.
type countingConn struct {
	driver.Conn
	n *atomic.Int64
}

func (c *countingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.n.Add(1)
	return e.ExecContext(ctx, q, args)
}

func (c *countingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	qc, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.n.Add(1)
	return qc.QueryContext(ctx, q, args)
}

func (c *countingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	if p, ok := c.Conn.(driver.ConnPrepareContext); ok {
		return p.PrepareContext(ctx, q)
	}
	return c.Conn.Prepare(q)
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := c.Conn.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	return nil, fmt.Errorf("sqltest: driver without BeginTx")
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
