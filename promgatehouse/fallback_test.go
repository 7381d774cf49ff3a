package promgatehouse

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// downStore is a rate-limit store that fails while down is set.
type downStore struct {
	mem  *ratelimit.MemoryStore
	down atomic.Bool
}

func (s *downStore) Take(ctx context.Context, c ratelimit.Charge, now time.Time) (ratelimit.Decision, error) {
	if s.down.Load() {
		return ratelimit.Decision{}, errors.New("down")
	}
	return s.mem.Take(ctx, c, now)
}

// TestFallbackMetrics: the gauge follows a real FallbackStore into an outage
// and out of it, and the counter counts the local decisions.
func TestFallbackMetrics(t *testing.T) {
	primary := &downStore{mem: ratelimit.NewMemoryStore(ratelimit.MemoryConfig{})}
	s := ratelimit.Fallback(primary, ratelimit.FallbackConfig{Share: 0.5, RetryEvery: time.Second})
	reg := prometheus.NewPedanticRegistry()
	if err := RegisterFallback(reg, s); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	limits := ratelimit.Limits{PerMinute: 10, PerDay: 100}
	take := func(n int) {
		for range n {
			if _, err := s.Take(context.Background(), ratelimit.Charge{Key: "k", Limits: limits}, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	expect := func(step string, active, decisions int) {
		t.Helper()
		want := strings.NewReplacer("ACTIVE", string(rune('0'+active)), "DECISIONS", string(rune('0'+decisions))).Replace(`
# HELP gatehouse_ratelimit_fallback_active 1 while the rate-limit store's primary (Redis) fails and requests are decided locally at a share of each limit, else 0.
# TYPE gatehouse_ratelimit_fallback_active gauge
gatehouse_ratelimit_fallback_active ACTIVE
# HELP gatehouse_ratelimit_fallback_decisions_total Rate-limit decisions made locally, at a share of each limit, while the store's primary (Redis) failed.
# TYPE gatehouse_ratelimit_fallback_decisions_total counter
gatehouse_ratelimit_fallback_decisions_total DECISIONS
`)
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
			t.Errorf("%s: %v", step, err)
		}
	}
	take(2)
	expect("up", 0, 0)
	primary.down.Store(true)
	take(3)
	expect("down", 1, 3)
	primary.down.Store(false)
	now = now.Add(time.Second)
	take(2)
	expect("back", 0, 3)
	if err := RegisterFallback(reg, s); err == nil {
		t.Error("registered twice: no error")
	}
}
