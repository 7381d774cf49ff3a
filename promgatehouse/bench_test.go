package promgatehouse

import (
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/upstream"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkRequestEvents: what the metrics cost one proxied request: its
// key check, rate-limit decision, upstream call and the request itself.
//
//	cd promgatehouse && go test -run '^$' -bench RequestEvents -benchmem -count 6 .
func BenchmarkRequestEvents(b *testing.B) {
	m, err := New(prometheus.NewRegistry(), Config{Known: func(slug string) bool { return slug == "quote" }})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveKey(auth.Event{Result: auth.KeyValid})
			m.ObserveRateLimit(ratelimit.Event{Result: ratelimit.Passed})
			m.ObserveUpstream(upstream.Event{Kind: upstream.Call, Name: "quote", Class: "2xx", Duration: 3 * time.Millisecond})
			m.ObserveRequest(gatehouse.RequestEvent{Product: "quote", Status: 200, Duration: 4 * time.Millisecond})
		}
	})
}
