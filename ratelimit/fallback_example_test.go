package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// flaky is a primary store (Redis, say) that fails while down is set.
type flaky struct {
	ratelimit.Store
	down bool
}

func (f *flaky) Take(ctx context.Context, c ratelimit.Charge, now time.Time) (ratelimit.Decision, error) {
	if f.down {
		return ratelimit.Decision{}, errors.New("connection refused")
	}
	return f.Store.Take(ctx, c, now)
}

// Three replicas share a limit of 6 a minute: while the primary fails, each
// enforces a third of it, 2 a minute, and the first request a second after
// the failure finds the primary back.
func ExampleFallback() {
	primary := &flaky{Store: ratelimit.NewMemoryStore(ratelimit.MemoryConfig{})}
	s := ratelimit.Fallback(primary, ratelimit.FallbackConfig{
		Share:      1.0 / 3,
		RetryEvery: time.Second,
		Observe:    func(e ratelimit.FallbackEvent) { fmt.Println("degraded:", e.Degraded) },
	})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	limits := ratelimit.Limits{PerMinute: 6, PerDay: 600}
	take := func() {
		d, _ := s.Take(context.Background(), ratelimit.Charge{Key: "k", Limits: limits}, now)
		fmt.Printf("allowed=%v limit=%d remaining=%d\n", d.Allowed, d.Minute.Limit, d.Minute.Remaining)
	}
	take()
	primary.down = true
	take()
	take()
	take()
	primary.down = false
	now = now.Add(time.Second)
	take()
	fmt.Println("local decisions:", s.LocalDecisions())
	// Output:
	// allowed=true limit=6 remaining=5
	// degraded: true
	// allowed=true limit=2 remaining=1
	// allowed=true limit=2 remaining=0
	// allowed=false limit=2 remaining=0
	// degraded: false
	// allowed=true limit=6 remaining=4
	// local decisions: 3
}
