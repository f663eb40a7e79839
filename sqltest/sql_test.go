package sqltest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-httpsession/httpsession"
)

// rebind turns the ? placeholders of q into PostgreSQL's $n for d.
func rebind(d database, q string) string {
	if d.dialect != httpsession.DialectPostgres {
		return q
	}
	var sb strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&sb, "$%d", n)
			continue
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

func count(t *testing.T, db *sql.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRowContext(t.Context(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// insertExpired inserts n rows that expired before now, the oldest first
// in key order ("expired:1" expired last), in one statement.
func insertExpired(t *testing.T, d database, db *sql.DB, table string, n int, now time.Time) {
	t.Helper()
	ms := now.UnixMilli() - 1000
	var q string
	switch d.dialect {
	case httpsession.DialectSQLite:
		q = fmt.Sprintf(`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %d)
			INSERT INTO %s (session_key, session_data, expires_ms, version) SELECT 'expired:' || i, x'7b7d', %d - i, 1 FROM c`, n, table, ms)
	case httpsession.DialectPostgres:
		q = fmt.Sprintf(`INSERT INTO %s (session_key, session_data, expires_ms, version)
			SELECT 'expired:' || i, '\x7b7d'::bytea, %d - i, 1 FROM generate_series(1, %d) AS i`, table, ms, n)
	case httpsession.DialectMySQL:
		q = fmt.Sprintf(`INSERT INTO %s (session_key, session_data, expires_ms, version)
			SELECT CONCAT('expired:', seq), x'7b7d', %d - seq, 1 FROM seq_1_to_%d`, table, ms, n)
	}
	start := time.Now()
	if _, err := db.ExecContext(t.Context(), q); err != nil {
		t.Fatalf("insert %d expired rows: %v", n, err)
	}
	t.Logf("inserted %d expired rows in %v", n, time.Since(start).Round(time.Millisecond))
}

// TestRoundTrips counts the statements each kind of request sends through
// the middleware: none untouched or anonymous, one to read, two to modify,
// one to create, one to log out.
func TestRoundTrips(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, d database) {
		db := openDB(t, d)
		b, _ := newTable(t, d, db.DB, httpsession.WithSQLCleanup(0, 0))
		a := newApp(t, httpsession.NewServerStore(b))
		step := func(what, path, cookie string, want int64) response {
			t.Helper()
			before := db.statements.Load()
			r := a.must(t, path, cookie)
			if n := db.statements.Load() - before; n != want {
				t.Errorf("%s: %d statements, want %d", what, n, want)
			}
			return r
		}
		step("anonymous read", "/get", "", 0)
		cookie := step("create", "/login", "", 1).cookie.Value
		step("untouched", "/untouched", cookie, 0)
		if r := step("read", "/get", cookie, 1); r.body != "user=alice;" {
			t.Fatalf("read: %q", r.body)
		}
		step("modify", "/set?k=x&v=1", cookie, 2)
		if r := step("read", "/get", cookie, 1); r.body != "user=alice;x=1;" {
			t.Fatalf("read: %q", r.body)
		}
		renewed := step("NewIdentity", "/renew", cookie, 3).cookie // load, insert, conditional UPDATE
		if renewed == nil || renewed.Value == cookie {
			t.Fatalf("renew: cookie %v", renewed)
		}
		// Through the old cookie: the load finds the forwarding record (no
		// session); the logout reads and deletes it, then reads and deletes
		// the renewed session it names.
		step("logout through the old cookie", "/logout", cookie, 5)
		if r := step("read after logout", "/get", renewed.Value, 1); r.body != "new" {
			t.Fatalf("renewed session after the logout: %q", r.body)
		}
		cookie = step("create", "/login", "", 1).cookie.Value
		step("logout", "/logout", cookie, 2) // the load, and one conditional DELETE

		// A conditional write at a stale version costs its UPDATE and one
		// SELECT, which brings back the current value and version.
		ctx := t.Context()
		if err := b.Add(ctx, "k", []byte("v1"), time.Hour); err != nil {
			t.Fatal(err)
		}
		_, v1, err := b.GetVersion(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		before := db.statements.Load()
		if _, _, err := b.ReplaceIf(ctx, "k", v1, []byte("v2"), time.Hour); err != nil {
			t.Fatal(err)
		}
		if n := db.statements.Load() - before; n != 1 {
			t.Errorf("ReplaceIf at the current version: %d statements, want 1", n)
		}
		before = db.statements.Load()
		cur, _, err := b.ReplaceIf(ctx, "k", v1, []byte("stale"), time.Hour)
		if err != httpsession.ErrConflict || string(cur) != "v2" {
			t.Fatalf("ReplaceIf at a stale version = %q, %v", cur, err)
		}
		if n := db.statements.Load() - before; n != 2 {
			t.Errorf("ReplaceIf at a stale version: %d statements, want 2", n)
		}
	})
}

// TestCleanupOnAdd: every Nth Add deletes at most a batch of expired rows,
// oldest first, and never a live one; other writes delete none.
func TestCleanupOnAdd(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, d database) {
		db := openDB(t, d)
		b, table := newTable(t, d, db.DB, httpsession.WithSQLCleanup(3, 40))
		store := httpsession.NewServerStore(b)
		ctx := t.Context()
		insertExpired(t, d, db.DB, table, 100, time.Now())
		rows := func() int64 { return count(t, db.DB, "SELECT COUNT(*) FROM "+table) }
		expired := func() int64 {
			return count(t, db.DB, rebind(d, "SELECT COUNT(*) FROM "+table+" WHERE expires_ms <= ?"), time.Now().UnixMilli())
		}
		var ids []string
		want := int64(100)
		for i := 1; i <= 12; i++ {
			before := db.statements.Load()
			id, err := store.Save(ctx, "", []byte("{}"), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
			stmts := db.statements.Load() - before
			if i%3 == 0 {
				want = max(want-40, 0)
				if stmts != 2 {
					t.Errorf("Add #%d: %d statements, want 2 (the insert and one bounded cleanup)", i, stmts)
				}
			} else if stmts != 1 {
				t.Errorf("Add #%d: %d statements, want 1", i, stmts)
			}
			if got := expired(); got != want {
				t.Fatalf("after Add #%d: %d expired rows, want %d", i, got, want)
			}
			// Updates never clean up.
			if _, err := store.Save(ctx, id, []byte(`{"x":1}`), time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		if got := rows(); got != int64(len(ids)) {
			t.Fatalf("%d rows, want the %d live sessions", got, len(ids))
		}
		// The oldest went first: what is left of a partial batch is the
		// most recently expired (checked on a fresh table below).
		for _, id := range ids {
			if _, err := store.Load(ctx, id); err != nil {
				t.Fatalf("live session lost: %v", err)
			}
		}
	})
}

// TestCleanupOldestFirst: a cleanup batch takes the rows that expired
// first.
func TestCleanupOldestFirst(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, d database) {
		db := openDB(t, d)
		b, table := newTable(t, d, db.DB, httpsession.WithSQLCleanup(1, 5))
		insertExpired(t, d, db.DB, table, 8, time.Now()) // expired:8 is the oldest
		if err := b.Add(t.Context(), "live", []byte("{}"), time.Hour); err != nil {
			t.Fatal(err)
		}
		rows, err := db.QueryContext(t.Context(), "SELECT session_key FROM "+table+" ORDER BY session_key")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var keys []string
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k)
		}
		if got, want := strings.Join(keys, ","), "expired:1,expired:2,expired:3,live"; got != want {
			t.Fatalf("rows left %s, want %s", got, want)
		}
	})
}

// TestDeleteExpired deletes every expired row, in batches, and nothing
// else; it reports what it deleted and stops when its context is done.
func TestDeleteExpired(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, d database) {
		db := openDB(t, d)
		b, table := newTable(t, d, db.DB, httpsession.WithSQLCleanup(0, 0))
		ctx := t.Context()
		insertExpired(t, d, db.DB, table, 2500, time.Now())
		for i := range 5 {
			if err := b.Add(ctx, fmt.Sprintf("live:%d", i), []byte("{}"), time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if n, err := b.DeleteExpired(cancelled); err == nil || n != 0 {
			t.Fatalf("DeleteExpired with a cancelled context = %d, %v", n, err)
		}
		before := db.statements.Load()
		n, err := b.DeleteExpired(ctx)
		if err != nil || n != 2500 {
			t.Fatalf("DeleteExpired = %d, %v; want 2500", n, err)
		}
		if stmts := db.statements.Load() - before; stmts != 3 {
			t.Errorf("DeleteExpired of 2500 rows: %d statements, want 3 (batches of 1000)", stmts)
		}
		if got := count(t, db.DB, "SELECT COUNT(*) FROM "+table); got != 5 {
			t.Fatalf("%d rows left, want the 5 live ones", got)
		}
		if n, err := b.DeleteExpired(ctx); err != nil || n != 0 {
			t.Fatalf("second DeleteExpired = %d, %v; want 0", n, err)
		}
	})
}

// TestOwnerColumn: the owner column exists, is nullable and left NULL;
// an Add that takes over an expired row clears it.
func TestOwnerColumn(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, d database) {
		db := openDB(t, d)
		b, table := newTable(t, d, db.DB)
		ctx := t.Context()
		if err := b.CreateTable(ctx); err != nil { // a second time: a no-op
			t.Fatalf("CreateTable again: %v", err)
		}
		if err := b.Add(ctx, "k", []byte("v"), 500*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db.DB, "SELECT COUNT(*) FROM "+table+" WHERE owner IS NULL"); n != 1 {
			t.Fatalf("%d rows with a NULL owner, want 1", n)
		}
		if _, err := db.ExecContext(ctx, "UPDATE "+table+" SET owner = 'someone'"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(600 * time.Millisecond)
		if err := b.Add(ctx, "k", []byte("v2"), time.Hour); err != nil {
			t.Fatalf("Add over the expired row: %v", err)
		}
		if n := count(t, db.DB, "SELECT COUNT(*) FROM "+table+" WHERE owner IS NULL"); n != 1 {
			t.Fatal("Add over an expired row kept its owner")
		}
	})
}

// TestMissingTable: a table that does not exist is a failure
// (ErrUnavailable, 503), never "no session".
func TestMissingTable(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, d database) {
		db := openDB(t, d)
		b := httpsession.NewSQLBackend(db.DB, d.dialect, httpsession.WithSQLTable("httpsession_no_such_table"))
		_, err := b.Get(t.Context(), "k")
		if !errors.Is(err, httpsession.ErrUnavailable) || errors.Is(err, httpsession.ErrNotFound) {
			t.Fatalf("Get from a missing table: %v, want ErrUnavailable", err)
		}
		a := newApp(t, httpsession.NewServerStore(b))
		if r := a.get(t, "/login", ""); r.status != 503 || r.cookie != nil {
			t.Fatalf("login with a missing table: %d, cookie %v; want 503 and no cookie", r.status, r.cookie)
		}
	})
}

// TestGetVersions reads several keys in one statement: present ones with
// their value and version, missing and expired ones as nil and 0.
func TestGetVersions(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, d database) {
		db := openDB(t, d)
		b, _ := newTable(t, d, db.DB)
		ctx := t.Context()
		if err := b.Add(ctx, "a", []byte("va"), time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := b.Add(ctx, "b", []byte{}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := b.Add(ctx, "gone", []byte("x"), time.Millisecond); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		_, va, _ := b.GetVersion(ctx, "a")
		_, vb, _ := b.GetVersion(ctx, "b")
		keys := []string{"missing", "a", "gone", "b", "a"}
		values, versions := make([][]byte, len(keys)), make([]uint64, len(keys))
		values[0], versions[0] = []byte("stale"), 7 // overwritten
		before := db.statements.Load()
		if err := b.GetVersions(ctx, keys, values, versions); err != nil {
			t.Fatal(err)
		}
		if n := db.statements.Load() - before; n != 1 {
			t.Errorf("GetVersions of %d keys: %d statements, want 1", len(keys), n)
		}
		got := fmt.Sprintf("%q %v", values, versions)
		want := fmt.Sprintf("%q %v", [][]byte{nil, []byte("va"), nil, {}, []byte("va")}, []uint64{0, va, 0, vb, va})
		if got != want || values[0] != nil || values[3] == nil {
			t.Fatalf("GetVersions = %s, want %s", got, want)
		}
	})
}
