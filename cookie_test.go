package httpsession

import (
	"net/http"
	"testing"
	"time"
)

func TestAppendHTTPDateMatchesTimeFormat(t *testing.T) {
	start := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 20000; i++ {
		tm := start.Add(time.Duration(i) * 48271 * 3571 * time.Second / 7)
		if got, want := string(appendHTTPDate([]byte("x"), tm)), "x"+tm.Format(http.TimeFormat); got != want {
			t.Fatalf("appendHTTPDate(%v) = %q, want %q", tm, got, want)
		}
	}
	local := time.Date(2026, 11, 22, 23, 30, 0, 0, time.FixedZone("X", 5*3600))
	if got, want := string(appendHTTPDate(nil, local)), local.UTC().Format(http.TimeFormat); got != want {
		t.Fatalf("zone not converted: %q, want %q", got, want)
	}
}

func TestAppendHTTPDateOutOfRangeYears(t *testing.T) {
	for _, tm := range []time.Time{time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(999, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if got, want := string(appendHTTPDate([]byte("p="), tm)), "p="+tm.Format(http.TimeFormat); got != want {
			t.Fatalf("%q, want %q", got, want)
		}
	}
}
