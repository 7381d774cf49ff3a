package main

import "testing"

// BenchmarkInProcessProductHooks: BenchmarkInProcessProduct's gateway with no
// hooks against the same gateway feeding the Prometheus metrics of the admin
// listener: requests, key checks, rate-limit decisions. Compare with
//
//	cd cmd/gatehouse && go test -run '^$' -bench InProcessProductHooks -benchmem -count 6 . | tee /tmp/hooks.txt
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
	o := &options{}
	if observed {
		o.adminAddr = "127.0.0.1:0" // watched; no listener is started here
	}
	return inProcessGateway(tb, o)
}
