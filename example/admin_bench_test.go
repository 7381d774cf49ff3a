package main

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/gatehouse-go/gatehouse/auth"
)

// BenchmarkInProcessProductHooks: BenchmarkInProcessProduct's gateway with no
// hooks against the same gateway feeding the Prometheus metrics of the admin
// listener: requests, key checks, rate-limit decisions. Compare with
//
//	cd example && go test -run '^$' -bench InProcessProductHooks -benchmem -count 6 . | tee /tmp/hooks.txt
//	benchstat -col /hooks /tmp/hooks.txt
func BenchmarkInProcessProductHooks(b *testing.B) {
	for _, hooks := range []string{"none", "prometheus"} {
		b.Run("hooks="+hooks, func(b *testing.B) {
			g, plain := observedGateway(b, hooks == "prometheus")
			h := g.Handler()
			b.ReportAllocs()
			for b.Loop() {
				serveInProcess(b, h, plain)
			}
		})
	}
}

// observedGateway is inProcessGateway, with the admin listener's metrics if
// observed.
func observedGateway(tb testing.TB, observed bool) (*gateway, string) {
	if !observed {
		return inProcessGateway(tb)
	}
	plain, k := auth.NewKey()
	cfg, err := parseConfig([]byte(fmt.Sprintf(`{"limits":{"per_minute":100000000,"per_day":1000000000},
		"keys": [{"id": "key_test", "hash": %q, "products": ["*"]}],
		"products": [{"slug": "local", "active": true, "required": ["Premium", "Age"], "upstream": {"url": "inprocess:calculate"}}]}`, k.HashHex())))
	if err != nil {
		tb.Fatal(err)
	}
	o := &options{adminAddr: "127.0.0.1:0"} // watched; no listener is started here
	g, err := newGateway(context.Background(), cfg, o, "", slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(g.Close)
	return g, plain
}
