package sqltest

import (
	"slices"
	"testing"
	"time"

	"github.com/go-httpsession/httpsession"
)

// TestMillionExpiredRows: a table with a million expired rows (SQLite; a
// hundred thousand on PostgreSQL and MariaDB) serves requests as fast as
// one with a few thousand. Reads and updates go by primary key;
// the cleanup that every 10th create runs takes its bounded batch (100
// rows) through the expiry index, oldest first, so it costs the same on
// any backlog; DeleteExpired then clears the backlog in batches.
//
// The databases run one after another, so their timings do not disturb
// each other. Without the expiry index (checked by dropping it) the
// creates that clean up take 50-100 times longer on SQLite and PostgreSQL,
// and this test fails.
func TestMillionExpiredRows(t *testing.T) {
	for _, d := range databases() {
		t.Run(d.name, func(t *testing.T) {
			// A million on SQLite; a tenth of it on the servers, whose
			// inserting and clearing a million rows takes a minute each.
			backlog := 1_000_000
			if d.dialect != httpsession.DialectSQLite {
				backlog = 100_000
			}
			if raceEnabled {
				t.Skip("a timing test: make test runs it without -race")
			}
			db := openDB(t, d)
			// The baseline: a table with a small backlog, so that its
			// cleanups delete full batches too.
			small, smallTable := newTable(t, d, db.DB, httpsession.WithSQLCleanup(10, 100))
			insertExpired(t, d, db.DB, smallTable, 3000, time.Now())
			b, table := newTable(t, d, db.DB, httpsession.WithSQLCleanup(10, 100))
			insertExpired(t, d, db.DB, table, backlog, time.Now())
			before := measure(t, httpsession.NewServerStore(small), 200)
			after := measure(t, httpsession.NewServerStore(b), 200)
			for _, op := range []string{"read", "modify", "create", "create+cleanup"} {
				b50, a50 := median(before[op]), median(after[op])
				t.Logf("%-15s median %8v beside 3000 expired rows, %8v beside %d", op, b50, a50, backlog)
				if a50 > 3*b50+2*time.Millisecond {
					t.Errorf("%s: median %v beside %d expired rows, %v beside 3000", op, a50, backlog, b50)
				}
			}
			// 20 cleanups of at most 100 rows each ran meanwhile.
			left := count(t, db.DB, rebind(d, "SELECT COUNT(*) FROM "+table+" WHERE expires_ms <= ?"), time.Now().UnixMilli())
			if want := int64(backlog - 20*100); left != want {
				t.Errorf("%d expired rows left, want %d (20 cleanups of 100)", left, want)
			}
			start := time.Now()
			n, err := b.DeleteExpired(t.Context())
			if err != nil || n != left {
				t.Fatalf("DeleteExpired = %d, %v; want %d", n, err, left)
			}
			t.Logf("DeleteExpired: %d rows in %v", n, time.Since(start).Round(time.Millisecond))
			if live := count(t, db.DB, "SELECT COUNT(*) FROM "+table); live != 200 {
				t.Errorf("%d rows left, want the 200 live sessions", live)
			}
		})
	}
}

// measure creates, reads and modifies n sessions and returns the duration
// of each call by kind; "create+cleanup" are the creates that ran the
// cleanup (every 10th, the backend's count of Adds being a multiple of n).
func measure(t *testing.T, store *httpsession.ServerStore, n int) map[string][]time.Duration {
	t.Helper()
	ctx := t.Context()
	out := map[string][]time.Duration{}
	for i := 1; i <= n; i++ {
		start := time.Now()
		id, err := store.Save(ctx, "", []byte(`{"created":1,"session":{}}`), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		kind := "create"
		if i%10 == 0 {
			kind = "create+cleanup"
		}
		out[kind] = append(out[kind], time.Since(start))
		start = time.Now()
		if _, err := store.Load(ctx, id); err != nil {
			t.Fatal(err)
		}
		out["read"] = append(out["read"], time.Since(start))
		start = time.Now()
		if _, err := store.Save(ctx, id, []byte(`{"created":1,"session":{"x":1}}`), time.Hour); err != nil {
			t.Fatal(err)
		}
		out["modify"] = append(out["modify"], time.Since(start))
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
