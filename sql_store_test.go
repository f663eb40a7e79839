package httpsession

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The SQL backend's behaviour on real databases (the conformance suite,
// cleanup, round trips, a database killed and restarted) is tested in the
// sqltest module, which may import drivers. Here: what needs no database.

// refusingConnector is a database/sql connector whose every connection
// attempt is refused, as by a database that is down.
type refusingConnector struct{}

func (refusingConnector) Connect(context.Context) (driver.Conn, error) {
	return nil, fmt.Errorf("dial tcp 127.0.0.1:5432: %w", syscall.ECONNREFUSED)
}
func (refusingConnector) Driver() driver.Driver { return nil }

func TestSQLBackendConfig(t *testing.T) {
	db := sql.OpenDB(refusingConnector{})
	defer db.Close()
	for name, b := range map[string]*SQLBackend{
		"nil db":          NewSQLBackend(nil, DialectSQLite),
		"no dialect":      NewSQLBackend(db, 0),
		"unknown dialect": NewSQLBackend(db, DialectSQLite+1),
		"empty table":     NewSQLBackend(db, DialectPostgres, WithSQLTable("")),
		"quoted table":    NewSQLBackend(db, DialectPostgres, WithSQLTable(`s"; DROP TABLE x; --`)),
		"dotted table":    NewSQLBackend(db, DialectMySQL, WithSQLTable("a.b")),
		"digit first":     NewSQLBackend(db, DialectMySQL, WithSQLTable("1abc")),
	} {
		if mw, err := Middleware(NewServerStore(b)); !errors.Is(err, ErrInvalidConfig) || mw != nil {
			t.Errorf("%s: Middleware err %v, want ErrInvalidConfig", name, err)
		}
		if _, err := b.Get(t.Context(), "k"); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Get err %v, want ErrInvalidConfig", name, err)
		}
		if err := b.CreateTable(t.Context()); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: CreateTable err %v, want ErrInvalidConfig", name, err)
		}
		if _, err := b.DeleteExpired(t.Context()); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: DeleteExpired err %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := Middleware(NewSQLStore(nil, DialectSQLite)); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("NewSQLStore(nil): Middleware err %v, want ErrInvalidConfig", err)
	}
	for _, d := range []SQLDialect{DialectPostgres, DialectMySQL, DialectSQLite} {
		if _, err := Middleware(NewSQLStore(db, d)); err != nil {
			t.Errorf("%v: Middleware: %v", d, err)
		}
	}
}

// TestSQLBackendDown: a database that refuses connections is a failure
// (ErrUnavailable, with the cause), never "no session".
func TestSQLBackendDown(t *testing.T) {
	db := sql.OpenDB(refusingConnector{})
	defer db.Close()
	b := NewSQLBackend(db, DialectPostgres)
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrUnavailable wrapping ECONNREFUSED", op, err)
		}
	}
	ctx := t.Context()
	_, err := b.Get(ctx, "k")
	check("Get", err)
	check("Add", b.Add(ctx, "k", []byte("v"), time.Minute))
	check("Replace", b.Replace(ctx, "k", []byte("v"), time.Minute))
	_, _, err = b.ReplaceIf(ctx, "k", 1, []byte("v"), time.Minute)
	check("ReplaceIf", err)
	check("Delete", b.Delete(ctx, "k"))
	check("CreateTable", b.CreateTable(ctx))
	_, err = b.DeleteExpired(ctx)
	check("DeleteExpired", err)
	_, err = NewServerStore(b).Load(ctx, newID())
	check("ServerStore.Load", err)
}

// TestSQLStatements checks the statement texts where a dialect's rules
// matter: PostgreSQL's numbered placeholders, MySQL's left-to-right
// assignments in the upsert (expires_ms must come last, or the conditions
// after it would see the new expiry), and the expiry index in every schema.
func TestSQLStatements(t *testing.T) {
	db := sql.OpenDB(refusingConnector{})
	defer db.Close()
	if got, want := dollarPlaceholders("a = ? AND b = ? LIMIT ?"), "a = $1 AND b = $2 LIMIT $3"; got != want {
		t.Errorf("dollarPlaceholders = %q, want %q", got, want)
	}
	pg := NewSQLBackend(db, DialectPostgres, WithSQLTable("s"))
	for _, q := range []string{pg.get, pg.add, pg.replace, pg.replaceIf, pg.deleteIf, pg.del, pg.cleanup} {
		if strings.Contains(q, "?") {
			t.Errorf("postgres statement with a ?: %s", q)
		}
	}
	if !strings.Contains(pg.add, "WHERE s.expires_ms <= $5") || !strings.Contains(pg.cleanup, "FOR UPDATE SKIP LOCKED") {
		t.Errorf("postgres add/cleanup: %s / %s", pg.add, pg.cleanup)
	}
	my := NewSQLBackend(db, DialectMySQL)
	update := my.add[strings.Index(my.add, "UPDATE"):]
	if i := strings.LastIndex(update, "="); !strings.HasPrefix(update[strings.LastIndex(update[:i], ",")+1:], " expires_ms =") {
		t.Errorf("mysql upsert does not assign expires_ms last: %s", update)
	}
	if n := strings.Count(my.add, "?"); n != 8 {
		t.Errorf("mysql upsert has %d placeholders, want 8 (Add passes 8 arguments)", n)
	}
	for _, d := range []SQLDialect{DialectPostgres, DialectMySQL, DialectSQLite} {
		schema := strings.Join(NewSQLBackend(db, d, WithSQLTable("t1")).Schema(), ";\n")
		for _, want := range []string{"CREATE TABLE IF NOT EXISTS t1", "session_key", "session_data", "expires_ms", "version", "owner", "t1_expires_ms", "(expires_ms)"} {
			if !strings.Contains(schema, want) {
				t.Errorf("%v schema lacks %q:\n%s", d, want, schema)
			}
		}
	}
}

func TestSQLExpiry(t *testing.T) {
	for _, tc := range []struct {
		ttl  time.Duration
		want int64
	}{
		{-time.Second, 1000}, {0, 1000}, {time.Nanosecond, 1001}, {1500 * time.Microsecond, 1002}, {time.Second, 2000},
	} {
		if got := expiry(1000, tc.ttl); got != tc.want {
			t.Errorf("expiry(1000, %v) = %d, want %d", tc.ttl, got, tc.want)
		}
	}
}

// TestSQLSchemaInREADME: the README shows the statements CreateTable runs,
// verbatim, for every dialect.
func TestSQLSchemaInREADME(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(refusingConnector{})
	defer db.Close()
	for _, d := range []SQLDialect{DialectPostgres, DialectMySQL, DialectSQLite} {
		for _, stmt := range NewSQLBackend(db, d).Schema() {
			if !strings.Contains(string(readme), stmt+";\n") {
				t.Errorf("README lacks the %v statement:\n%s;", d, stmt)
			}
		}
	}
}
