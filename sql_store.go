package httpsession

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// SQLDialect names the SQL database behind a SQLBackend: its placeholders,
// its upsert and its bounded delete differ.
type SQLDialect int

// The dialects NewSQLBackend knows.
const (
	// DialectPostgres is PostgreSQL (tested on 15), for instance through
	// pgx's database/sql driver, github.com/jackc/pgx/v5/stdlib.
	DialectPostgres SQLDialect = iota + 1
	// DialectMySQL is MySQL 8 or MariaDB 10.5 and later (tested on MariaDB
	// 10.11), through github.com/go-sql-driver/mysql. Leave the driver's
	// clientFoundRows off (its default): Add reads "0 rows affected" as
	// "a live session has this key".
	DialectMySQL
	// DialectSQLite is SQLite 3.24 or later (its upsert), for instance through
	// modernc.org/sqlite (no cgo). Open the database file with a busy
	// timeout (modernc: "?_pragma=busy_timeout(5000)"), and preferably in
	// WAL mode ("&_pragma=journal_mode(wal)"), so that concurrent requests
	// wait for each other's writes instead of failing with SQLITE_BUSY.
	DialectSQLite
)

// String returns the dialect's name.
func (d SQLDialect) String() string {
	switch d {
	case DialectPostgres:
		return "postgres"
	case DialectMySQL:
		return "mysql"
	case DialectSQLite:
		return "sqlite"
	}
	return "SQLDialect(" + strconv.Itoa(int(d)) + ")"
}

// DefaultSQLTable is the table a SQLBackend uses unless WithSQLTable names
// another.
const DefaultSQLTable = "httpsession"

// Defaults of WithSQLCleanup: every 10th session created deletes at most
// 100 expired rows.
const (
	DefaultSQLCleanupEvery = 10
	DefaultSQLCleanupBatch = 100
)

// SQLBackend is a ConditionalBackend in a SQL table, through database/sql:
// the application brings the driver and the *sql.DB, so this package
// imports none. It is safe for concurrent use.
//
// One row per session (see SQLBackend.Schema for the CREATE TABLE
// statements): session_key, the key ServerStore hands over (its prefix and
// the SHA-256 of the session ID, never the ID); session_data, the record;
// expires_ms, the expiry in Unix milliseconds, indexed; version, a counter
// for conditional commits; and owner, nullable and unused: sessions of a
// user keep each owner's list in a row of its own (see Session.SetOwner).
//
// Statements per call, each one round trip: Get and GetVersion one SELECT
// by primary key that skips expired rows; Add one upsert that inserts the
// row or takes over an expired row of the same key, and reports ErrExists
// when a live one holds it (create-if-absent); Replace one UPDATE of a live
// row (update-if-present: a session a logout deleted is not written back);
// ReplaceIf one UPDATE (or DELETE for a nil value) of a live row at the
// expected version, plus, only when it changed nothing, one SELECT that
// tells ErrNotFound from ErrConflict and brings back the current value and
// version; Delete one DELETE. So ServerStore reads a session in one query
// and modifies it in two (GetVersion, ReplaceIf).
//
// Expiry is compared with the clock of the process, not the database's:
// keep the clocks of the servers sharing a table in sync (NTP). Expired
// rows are invisible at once; they are deleted without a background
// goroutine: every Nth Add (WithSQLCleanup; default every 10th) then
// deletes at most a batch (default 100) of expired rows, oldest first,
// through the index on expires_ms, so each Add pays at most one bounded
// extra statement, and as rows are only ever added by Add, expired ones
// can go up to ten times as fast as sessions are created. A cron job may
// also call DeleteExpired, as Django's clearsessions.
//
// The version is a random 62-bit number given to a row when it is created
// and incremented by every write: a key deleted and created again does not
// come back at a version a request read before.
//
// Every error other than ErrNotFound, ErrExists and ErrConflict wraps
// ErrUnavailable and the driver's error: the database down, a timeout, the
// request's context cancelled, and a missing table too.
type SQLBackend struct {
	db      *sql.DB
	dialect SQLDialect
	table   string
	every   uint64 // 0: no cleanup on Add
	batch   int
	now     func() time.Time
	adds    atomic.Uint64

	get, add, replace, replaceIf, deleteIf, del, cleanup string
}

var _ ConditionalBackend = (*SQLBackend)(nil)

// SQLOption configures a SQLBackend.
type SQLOption func(*SQLBackend)

// WithSQLTable sets the table name (default DefaultSQLTable): letters,
// digits and underscores, not starting with a digit. The expiry index is
// named after it, table + "_expires_ms".
func WithSQLTable(name string) SQLOption { return func(b *SQLBackend) { b.table = name } }

// WithSQLCleanup sets the cleanup piggy-backed on Add: every everyNth Add
// deletes at most batch expired rows (batch <= 0: DefaultSQLCleanupBatch).
// everyNth 0 turns it off (then run DeleteExpired from a cron job).
func WithSQLCleanup(everyNth, batch int) SQLOption {
	return func(b *SQLBackend) {
		b.every, b.batch = uint64(max(everyNth, 0)), batch
	}
}

// WithSQLClock replaces time.Now as the clock that sets and checks expiry.
func WithSQLClock(now func() time.Time) SQLOption { return func(b *SQLBackend) { b.now = now } }

// NewSQLStore returns a ServerStore that keeps sessions in db, in the table
// DefaultSQLTable of dialect (see SQLBackend). Use NewSQLBackend and
// NewServerStore for other SQL options, CreateTable or DeleteExpired.
func NewSQLStore(db *sql.DB, dialect SQLDialect, opts ...ServerOption) *ServerStore {
	return NewServerStore(NewSQLBackend(db, dialect), opts...)
}

// NewSQLBackend returns a SQLBackend on db, which must not be nil, for
// dialect. A nil db, an unknown dialect or an invalid table name is
// reported by Middleware (an error wrapping ErrInvalidConfig), and by every
// call. The table must exist: see CreateTable and Schema.
func NewSQLBackend(db *sql.DB, dialect SQLDialect, opts ...SQLOption) *SQLBackend {
	b := &SQLBackend{db: db, dialect: dialect, table: DefaultSQLTable,
		every: DefaultSQLCleanupEvery, batch: DefaultSQLCleanupBatch, now: time.Now}
	for _, o := range opts {
		o(b)
	}
	if b.batch <= 0 {
		b.batch = DefaultSQLCleanupBatch
	}
	if b.valid() != nil {
		return b
	}
	t := b.table
	live := " WHERE session_key = ? AND expires_ms > ?"
	b.get = "SELECT session_data, version FROM " + t + live
	b.replace = "UPDATE " + t + " SET session_data = ?, expires_ms = ?, version = version + 1" + live
	b.replaceIf = b.replace + " AND version = ?"
	b.deleteIf = "DELETE FROM " + t + live + " AND version = ?"
	b.del = "DELETE FROM " + t + " WHERE session_key = ?"
	switch dialect {
	case DialectPostgres, DialectSQLite:
		// Insert, or take over an expired row of the same key.
		b.add = "INSERT INTO " + t + " (session_key, session_data, expires_ms, version) VALUES (?, ?, ?, ?)" +
			" ON CONFLICT (session_key) DO UPDATE SET session_data = excluded.session_data," +
			" expires_ms = excluded.expires_ms, version = excluded.version, owner = NULL" +
			" WHERE " + t + ".expires_ms <= ?"
		lock := ""
		if dialect == DialectPostgres {
			lock = " FOR UPDATE SKIP LOCKED" // concurrent cleanups take different rows
		}
		b.cleanup = "DELETE FROM " + t + " WHERE session_key IN (SELECT session_key FROM " + t +
			" WHERE expires_ms <= ? ORDER BY expires_ms LIMIT ?" + lock + ")"
	case DialectMySQL:
		// Every assignment is conditional on the old row having expired;
		// expires_ms comes last, as MySQL assigns from left to right and
		// later conditions see earlier assignments. A live row is left
		// unchanged: 0 rows affected.
		keep := func(col, val string) string {
			return col + " = IF(expires_ms <= ?, " + val + ", " + col + ")"
		}
		b.add = "INSERT INTO " + t + " (session_key, session_data, expires_ms, version) VALUES (?, ?, ?, ?)" +
			" ON DUPLICATE KEY UPDATE " + keep("session_data", "VALUES(session_data)") + ", " +
			keep("version", "VALUES(version)") + ", " + keep("owner", "NULL") + ", " +
			keep("expires_ms", "VALUES(expires_ms)")
		b.cleanup = "DELETE FROM " + t + " WHERE expires_ms <= ? ORDER BY expires_ms LIMIT ?"
	}
	if dialect == DialectPostgres {
		for _, q := range []*string{&b.get, &b.add, &b.replace, &b.replaceIf, &b.deleteIf, &b.del, &b.cleanup} {
			*q = dollarPlaceholders(*q)
		}
	}
	return b
}

// dollarPlaceholders numbers the ? placeholders of q as PostgreSQL's $1,
// $2, … (the statements here contain no other question mark).
func dollarPlaceholders(q string) string {
	var sb strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			sb.WriteString("$" + strconv.Itoa(n))
			continue
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// valid implements validator.
func (b *SQLBackend) valid() error {
	switch {
	case b == nil || b.db == nil:
		return fmt.Errorf("%w: SQL store with a nil *sql.DB", ErrInvalidConfig)
	case b.dialect < DialectPostgres || b.dialect > DialectSQLite:
		return fmt.Errorf("%w: unknown SQL dialect %v", ErrInvalidConfig, b.dialect)
	case !validSQLName(b.table):
		return fmt.Errorf("%w: SQL table name %q: want letters, digits and underscores", ErrInvalidConfig, b.table)
	}
	return nil
}

func validSQLName(s string) bool {
	if s == "" || len(s) > 50 || '0' <= s[0] && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Schema returns the statements that create the backend's table and its
// expiry index, for a migration tool; CreateTable runs them.
func (b *SQLBackend) Schema() []string {
	t := b.table
	index := "CREATE INDEX IF NOT EXISTS " + t + "_expires_ms ON " + t + " (expires_ms)"
	switch b.dialect {
	case DialectPostgres:
		return []string{"CREATE TABLE IF NOT EXISTS " + t + ` (
    session_key  VARCHAR(255) PRIMARY KEY,
    session_data BYTEA        NOT NULL,
    expires_ms   BIGINT       NOT NULL,
    version      BIGINT       NOT NULL,
    owner        VARCHAR(255) NULL
)`, index}
	case DialectMySQL:
		return []string{"CREATE TABLE IF NOT EXISTS " + t + ` (
    session_key  VARBINARY(255) NOT NULL PRIMARY KEY,
    session_data LONGBLOB       NOT NULL,
    expires_ms   BIGINT         NOT NULL,
    version      BIGINT         NOT NULL,
    owner        VARBINARY(255) NULL,
    INDEX ` + t + `_expires_ms (expires_ms)
) ENGINE=InnoDB`}
	case DialectSQLite:
		return []string{"CREATE TABLE IF NOT EXISTS " + t + ` (
    session_key  TEXT    NOT NULL PRIMARY KEY,
    session_data BLOB    NOT NULL,
    expires_ms   INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    owner        TEXT    NULL
)`, index}
	}
	return nil
}

// CreateTable creates the table and its expiry index if they do not exist
// (the statements of Schema).
func (b *SQLBackend) CreateTable(ctx context.Context) error {
	if err := b.valid(); err != nil {
		return err
	}
	for _, q := range b.Schema() {
		if _, err := b.db.ExecContext(ctx, q); err != nil {
			return sqlError(err)
		}
	}
	return nil
}

// DeleteExpired deletes every expired row, in batches of a thousand, and
// returns how many it deleted. It is meant for a cron job (as Django's
// clearsessions); the cleanup on Add makes it optional. It stops at the
// first error, or when ctx is done, with the rows deleted so far.
func (b *SQLBackend) DeleteExpired(ctx context.Context) (int64, error) {
	if err := b.valid(); err != nil {
		return 0, err
	}
	const batch = 1000
	var total int64
	now := b.now().UnixMilli()
	for {
		if err := ctx.Err(); err != nil {
			return total, sqlError(err)
		}
		n, err := b.deleteExpired(ctx, now, batch)
		total += n
		if err != nil || n < batch {
			return total, err
		}
	}
}

// deleteExpired deletes at most limit rows that expired at or before now.
func (b *SQLBackend) deleteExpired(ctx context.Context, now int64, limit int) (int64, error) {
	res, err := b.db.ExecContext(ctx, b.cleanup, now, limit)
	if err != nil {
		return 0, sqlError(err)
	}
	n, err := res.RowsAffected()
	return n, sqlError(err)
}

// sqlError makes err errors.Is-able both as ErrUnavailable and as its
// cause; nil stays nil.
func sqlError(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: sql: %w", ErrUnavailable, err)
}

// start fails fast on an invalid backend or a done context, before any
// I/O, and returns the clock's time in Unix milliseconds.
func (b *SQLBackend) start(ctx context.Context) (int64, error) {
	if err := b.valid(); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, sqlError(err)
	}
	return b.now().UnixMilli(), nil
}

// expiry returns the Unix millisecond at which a row written at now with
// ttl expires: ttl rounds up to the millisecond, and a ttl <= 0 expires at
// once.
func expiry(now int64, ttl time.Duration) int64 {
	if ttl <= 0 {
		return now
	}
	return now + int64((ttl+time.Millisecond-1)/time.Millisecond)
}

// Get implements Backend.
func (b *SQLBackend) Get(ctx context.Context, key string) ([]byte, error) {
	v, _, err := b.GetVersion(ctx, key)
	return v, err
}

// GetVersion implements ConditionalBackend.
func (b *SQLBackend) GetVersion(ctx context.Context, key string) ([]byte, uint64, error) {
	now, err := b.start(ctx)
	if err != nil {
		return nil, 0, err
	}
	return b.read(ctx, key, now)
}

// read returns the live row under key.
func (b *SQLBackend) read(ctx context.Context, key string, now int64) ([]byte, uint64, error) {
	var value []byte
	var version int64
	err := b.db.QueryRowContext(ctx, b.get, key, now).Scan(&value, &version)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, 0, ErrNotFound
	case err != nil:
		return nil, 0, sqlError(err)
	}
	if value == nil {
		value = []byte{} // an empty value is a value
	}
	return value, uint64(version), nil
}

// GetVersions reads keys in one SELECT into values and versions, which
// must have the length of keys: a missing or expired key leaves a nil value
// and version 0, which is not an error. It has the signature of the owners
// work's BatchBackend, through which ServerStore loads an owned session
// together with its owner's list of sessions in one round trip.
func (b *SQLBackend) GetVersions(ctx context.Context, keys []string, values [][]byte, versions []uint64) error {
	if len(values) != len(keys) || len(versions) != len(keys) {
		return fmt.Errorf("httpsession: GetVersions: %d keys, %d values, %d versions", len(keys), len(values), len(versions))
	}
	clear(values)
	clear(versions)
	now, err := b.start(ctx)
	if err != nil || len(keys) == 0 {
		return err
	}
	var q strings.Builder
	q.WriteString("SELECT session_key, session_data, version FROM " + b.table + " WHERE session_key IN (")
	args := make([]any, 0, len(keys)+1)
	for i, k := range keys {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("?")
		args = append(args, k)
	}
	q.WriteString(") AND expires_ms > ?")
	args = append(args, now)
	query := q.String()
	if b.dialect == DialectPostgres {
		query = dollarPlaceholders(query)
	}
	rows, err := b.db.QueryContext(ctx, query, args...)
	if err != nil {
		return sqlError(err)
	}
	defer rows.Close()
	for rows.Next() {
		var key string
		var value []byte
		var version int64
		if err := rows.Scan(&key, &value, &version); err != nil {
			return sqlError(err)
		}
		if value == nil {
			value = []byte{}
		}
		for i, k := range keys {
			if k == key {
				values[i], versions[i] = value, uint64(version)
			}
		}
	}
	return sqlError(rows.Err())
}

// newSQLVersion returns the version of a new row: random, positive, with
// room to count up below 2^63.
func newSQLVersion() int64 { return mathrand.Int64N(1<<62) + 1 }

// Add implements Backend. Every Nth call then deletes a bounded batch of
// expired rows (see WithSQLCleanup); that cleanup's error is dropped, as
// the session was created.
func (b *SQLBackend) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	now, err := b.start(ctx)
	if err != nil {
		return err
	}
	args := []any{key, nonNil(value), expiry(now, ttl), newSQLVersion(), now}
	if b.dialect == DialectMySQL {
		args = append(args, now, now, now) // one per conditional assignment
	}
	res, err := b.db.ExecContext(ctx, b.add, args...)
	if err != nil {
		return sqlError(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return sqlError(err)
	}
	if n == 0 {
		return ErrExists
	}
	if b.every > 0 && b.adds.Add(1)%b.every == 0 {
		_, _ = b.deleteExpired(ctx, now, b.batch)
	}
	return nil
}

// nonNil returns value, or an empty slice for nil: the session_data
// column is NOT NULL, and drivers send a nil []byte as NULL.
func nonNil(value []byte) []byte {
	if value == nil {
		return []byte{}
	}
	return value
}

// Replace implements Backend.
func (b *SQLBackend) Replace(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	now, err := b.start(ctx)
	if err != nil {
		return err
	}
	n, err := b.exec(ctx, b.replace, nonNil(value), expiry(now, ttl), key, now)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// ReplaceIf implements ConditionalBackend: one UPDATE (or DELETE, for a
// nil value) at version; when it changes nothing, one SELECT tells
// ErrNotFound from ErrConflict and returns the current value and version.
func (b *SQLBackend) ReplaceIf(ctx context.Context, key string, version uint64, value []byte, ttl time.Duration) ([]byte, uint64, error) {
	now, err := b.start(ctx)
	if err != nil {
		return nil, 0, err
	}
	if version > 1<<63-1 {
		version = 0 // no row has it: the write is refused below
	}
	var n int64
	if value == nil {
		n, err = b.exec(ctx, b.deleteIf, key, now, int64(version))
	} else {
		n, err = b.exec(ctx, b.replaceIf, value, expiry(now, ttl), key, now, int64(version))
	}
	if err != nil || n > 0 {
		return nil, 0, err
	}
	cur, curVersion, err := b.read(ctx, key, now)
	if err != nil {
		return nil, 0, err
	}
	return cur, curVersion, ErrConflict
}

// Delete implements Backend.
func (b *SQLBackend) Delete(ctx context.Context, key string) error {
	if _, err := b.start(ctx); err != nil {
		return err
	}
	_, err := b.exec(ctx, b.del, key)
	return err
}

// exec runs q and returns the number of rows it changed.
func (b *SQLBackend) exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := b.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, sqlError(err)
	}
	n, err := res.RowsAffected()
	return n, sqlError(err)
}
