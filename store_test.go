package httpsession

// Tests of store.go: a Store wrapper that unwraps to a ServerStore keeps
// Session.ID.

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// storeWrapper is a Store around another one, as a metrics wrapper would be.
type storeWrapper struct {
	Store
	saves atomic.Int32
}

func (w *storeWrapper) Save(ctx context.Context, token string, data []byte, ttl time.Duration) (string, error) {
	w.saves.Add(1)
	return w.Store.Save(ctx, token, data, ttl)
}

// unwrappingWrapper is storeWrapper with the Unwrap method Store asks wrappers for.
type unwrappingWrapper struct{ storeWrapper }

func (w *unwrappingWrapper) Unwrap() Store { return w.Store }

// TestWrappedServerStore: through a wrapper with Unwrap the middleware
// still knows a ServerStore, so Session.ID is the session's ID; without
// Unwrap it cannot tell, and ID stays empty as documented.
func TestWrappedServerStore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		wrap   func(Store) Store
		wantID bool
	}{
		{"unwrap", func(s Store) Store { return &unwrappingWrapper{storeWrapper{Store: s}} }, true},
		{"unwrap twice", func(s Store) Store {
			return &unwrappingWrapper{storeWrapper{Store: &unwrappingWrapper{storeWrapper{Store: s}}}}
		}, true},
		{"no unwrap", func(s Store) Store { return &storeWrapper{Store: s} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			app := newApp(t, tc.wrap(NewMemoryStore()))
			cl := jarClient(t)
			if r := app.do(t, cl, "/set?k=user&v=alice"); r.cookie == nil {
				t.Fatalf("create: no cookie (status %d)", r.status)
			}
			r := app.do(t, cl, "/renew")
			if r.status != http.StatusOK || r.cookie == nil || !validID(r.cookie.Value) {
				t.Fatalf("renew: status %d cookie %v, want a new ID", r.status, r.cookie)
			}
			if got, want := r.body, map[bool]string{true: r.cookie.Value, false: ""}[tc.wantID]; got != want {
				t.Errorf("Session.ID() = %q, want %q", got, want)
			}
			if got := app.do(t, cl, "/get?k=user"); got.body != "alice" {
				t.Errorf("after renew: %q, want alice", got.body)
			}
		})
	}
}
