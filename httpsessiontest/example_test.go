package httpsessiontest_test

import (
	"testing"

	"github.com/go-httpsession/httpsession"
	"github.com/go-httpsession/httpsession/httpsessiontest"
)

// A Backend's tests run the suite from a Test function. Here it runs on
// the memory backend; a backend on a shared database returns a client of
// that database, and the suite keeps to key prefixes of its own.
func ExampleTestBackend() {
	_ = func(t *testing.T) { // func TestMyBackend(t *testing.T)
		httpsessiontest.TestBackend(t, func(t *testing.T) httpsession.Backend {
			return httpsession.NewMemoryBackend(0, nil)
		})
	}
}

// TestMemoryBackend is the example above, run.
func TestMemoryBackend(t *testing.T) {
	httpsessiontest.TestBackend(t, func(t *testing.T) httpsession.Backend {
		return httpsession.NewMemoryBackend(0, nil)
	})
}

// plainBackend hides the memory backend's ConditionalBackend methods: the
// suite must pass on a Backend without compare-and-set too.
type plainBackend struct{ httpsession.Backend }

func TestPlainBackend(t *testing.T) {
	httpsessiontest.TestBackend(t, func(t *testing.T) httpsession.Backend {
		return plainBackend{httpsession.NewMemoryBackend(0, nil)}
	})
}
