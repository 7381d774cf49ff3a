package ratelimit

import (
	"net/http"
	"testing"
)

// TestMiddlewareAllocations holds the claim of docs/reliability.md and
// BENCHMARKS.md: a request the limiter passes, with its two buckets and four
// headers, costs at most one allocation once its key is known.
func TestMiddlewareAllocations(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	h := Middleware(Config{
		Key:    func(*http.Request) (Charge, bool) { return Charge{Key: "key", Limits: high}, true },
		Limits: high,
	})(nopHandler)
	r, _ := http.NewRequest("GET", "/", nil)
	w := &nopWriter{h: make(http.Header)}
	h.ServeHTTP(w, r) // the key's buckets are made once
	if allocs := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, r) }); allocs > 1 {
		t.Errorf("a passed request allocates %v times, want at most 1", allocs)
	}
}
