package promgatehouse

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// FallbackState is what [RegisterFallback] reads: a
// *ratelimit.FallbackStore.
type FallbackState interface {
	// Degraded reports whether requests are decided locally.
	Degraded() bool
	// LocalDecisions returns how many requests were decided locally.
	LocalDecisions() uint64
}

// RegisterFallback registers with reg the two metrics of a rate-limit store
// that decides locally while its primary (Redis) fails, read from s at each
// scrape: gatehouse_ratelimit_fallback_active, 1 while requests are decided
// locally and 0 otherwise, and gatehouse_ratelimit_fallback_decisions_total,
// the requests decided locally. It fails if reg or s is nil, or if reg
// already has metrics of the same names.
func RegisterFallback(reg prometheus.Registerer, s FallbackState) error {
	if reg == nil {
		return errors.New("promgatehouse: RegisterFallback: Registerer is nil")
	}
	if s == nil {
		return errors.New("promgatehouse: RegisterFallback: FallbackState is nil")
	}
	active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gatehouse_ratelimit_fallback_active",
		Help: "1 while the rate-limit store's primary (Redis) fails and requests are decided locally at a share of each limit, else 0.",
	}, func() float64 {
		if s.Degraded() {
			return 1
		}
		return 0
	})
	decisions := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "gatehouse_ratelimit_fallback_decisions_total",
		Help: "Rate-limit decisions made locally, at a share of each limit, while the store's primary (Redis) failed.",
	}, func() float64 { return float64(s.LocalDecisions()) })
	for _, c := range []prometheus.Collector{active, decisions} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
