package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"testing"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// BenchmarkInProcessProductHooks: BenchmarkInProcessProduct's gateway with no
// hooks against the same gateway feeding the Prometheus metrics of the admin
// listener. The key check's and the rate limiter's events are counted too, by
// the request hook, as if their Observe fields were set: gatehouse.Config
// does not carry them yet. Compare with
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
	// One key check and one rate-limit decision a request, counted as
	// their Observe fields would count them.
	obs, next := g.admin.metrics.Observer(), g.handler
	g.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		obs.Key(auth.Event{Result: auth.KeyValid})
		obs.RateLimit(ratelimit.Event{Result: ratelimit.Passed})
		next.ServeHTTP(w, r)
	})
	return g, plain
}
