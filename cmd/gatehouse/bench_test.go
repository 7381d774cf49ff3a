package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/internal/demo"
)

// BenchmarkInProcessProduct: the gateway's whole stack in front of the demo
// calculation, answered in process, against the calculation alone; the
// difference is what the stack costs a request, with no network in between.
//
//	cd cmd/gatehouse && go test -run '^$' -bench InProcessProduct -benchmem -count 6 .
func BenchmarkInProcessProduct(b *testing.B) {
	g, plain := inProcessGateway(b, &options{})
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"gateway", g.Handler()}, {"bare", http.HandlerFunc(demo.Calculate)}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				serveInProcess(b, tc.h, plain)
			}
		})
	}
}

// inProcessGateway is a gateway with options o, one key whose limits never
// run out, and one product answered by the demo calculation in process.
func inProcessGateway(tb testing.TB, o *options) (*gateway, string) {
	return inProcessGatewayLogging(tb, o, slog.New(slog.DiscardHandler))
}

// inProcessGatewayLogging is inProcessGateway logging to logger.
func inProcessGatewayLogging(tb testing.TB, o *options, logger *slog.Logger) (*gateway, string) {
	plain, k := auth.NewKey()
	cfg, err := parseConfig([]byte(fmt.Sprintf(`{"limits":{"per_minute":100000000,"per_day":1000000000},
		"keys": [{"id": "key_test", "hash": %q, "products": ["*"]}],
		"products": [{"slug": "local", "active": true, "required": ["Premium", "Age"], "upstream": {"url": "inprocess:calculate"}}]}`, k.HashHex())))
	if err != nil {
		tb.Fatal(err)
	}
	g, err := newGateway(context.Background(), cfg, o, "", logger)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(g.Close)
	return g, plain
}

var inProcessBody = []byte(`{"inputs":{"Premium":1200,"Age":60}}`)

func serveInProcess(tb testing.TB, h http.Handler, plain string) {
	r := httptest.NewRequest("POST", "/api/local", bytes.NewReader(inProcessBody))
	r.Header.Set("Authorization", "Bearer "+plain)
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		tb.Fatal(w.Code, w.Body)
	}
}

// TestInProcessProductCost holds docs/reliability.md's figure of what the
// stack costs a request in allocations and bytes, against the calculation
// alone: at most 21 allocations, the figure measured, and 2.5 KiB more
// (measured: about 2.0 KiB). Of the 21, two pin the configuration snapshot a
// request is served with, and six are the request id's (errorsjson's
// TestRequestIDAllocations: the new id's UUID and string, the request's copy,
// its context value, the id made an interface, the header's value).
func TestInProcessProductCost(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("coverage and the race detector change allocation counts")
	}
	g, plain := inProcessGateway(t, &options{})
	cost := func(h http.Handler) (allocs, bytes float64) {
		const runs = 2000
		for range 100 { // warm the pools, the buckets and the key's record
			serveInProcess(t, h, plain)
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			serveInProcess(t, h, plain)
		}
		runtime.ReadMemStats(&after)
		return float64(after.Mallocs-before.Mallocs) / runs, float64(after.TotalAlloc-before.TotalAlloc) / runs
	}
	bareAllocs, bareBytes := cost(http.HandlerFunc(demo.Calculate))
	gwAllocs, gwBytes := cost(g.Handler())
	extraAllocs, extraBytes := gwAllocs-bareAllocs, gwBytes-bareBytes
	t.Logf("the stack's cost a request: %.1f allocations, %.0f bytes (gateway %.1f/%.0f, bare %.1f/%.0f)", extraAllocs, extraBytes, gwAllocs, gwBytes, bareAllocs, bareBytes)
	if extraAllocs > 21.5 {
		t.Errorf("the stack allocates %.1f times a request more than the calculation alone, bound 21", extraAllocs)
	}
	if extraBytes > 2560 {
		t.Errorf("the stack allocates %.0f bytes a request more than the calculation alone, bound 2,560", extraBytes)
	}
}
