package sqltest

import (
	"context"
	"testing"
	"time"

	"github.com/go-httpsession/httpsession"
	"github.com/go-httpsession/httpsession/httpsessiontest"
)

// TestConformance runs the backend conformance suite on every database,
// all subtests sharing the default table, as an application's requests
// would.
func TestConformance(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, d database) {
		db := openDB(t, d)
		b := httpsession.NewSQLBackend(db.DB, d.dialect)
		if err := b.CreateTable(t.Context()); err != nil {
			t.Fatal(err)
		}
		ttl := func(t *testing.T, _ httpsession.Backend, key string) time.Duration {
			t.Helper()
			ms, err := expiresMS(t.Context(), db, d, httpsession.DefaultSQLTable, key)
			if err != nil {
				t.Fatalf("expires_ms of %q: %v", key, err)
			}
			return time.Until(time.UnixMilli(ms))
		}
		httpsessiontest.TestBackend(t, func(t *testing.T) httpsession.Backend {
			return httpsession.NewSQLBackend(db.DB, d.dialect)
		}, httpsessiontest.WithTTL(ttl))
	})
}

// expiresMS reads the expiry column of key's row.
func expiresMS(ctx context.Context, db *countingDB, d database, table, key string) (int64, error) {
	q := "SELECT expires_ms FROM " + table + " WHERE session_key = ?"
	if d.dialect == httpsession.DialectPostgres {
		q = "SELECT expires_ms FROM " + table + " WHERE session_key = $1"
	}
	var ms int64
	err := db.QueryRowContext(ctx, q, key).Scan(&ms)
	return ms, err
}
