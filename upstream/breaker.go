package upstream

import (
	"sync"
	"time"
)

// BreakerConfig configures the circuit breaker of a [Proxy]: after Failures
// consecutive failures (no answer, a timeout, or an answer of 429 or 5xx) the
// proxy stops calling its upstream and answers 503 at once, with Retry-After
// set to the rest of the cool-down; when CoolDown has passed, exactly one
// request goes through as a probe (half-open): its success closes the breaker,
// its failure opens it for another CoolDown. Requests that arrive while the
// probe is out get 503 with Retry-After: 1.
//
// The zero value opens after 5 failures for 10 seconds.
type BreakerConfig struct {
	// Failures is the number of consecutive failures that opens the breaker
	// (0: 5; negative: the breaker never opens).
	Failures int
	// CoolDown is how long the breaker stays open (0: 10 s).
	CoolDown time.Duration
}

// breaker is the state of one upstream's circuit breaker.
type breaker struct {
	failuresToOpen int
	coolDown       time.Duration

	mu        sync.Mutex
	failures  int       // consecutive, while closed
	openUntil time.Time // zero while closed
	probing   bool      // the half-open probe is out
}

func newBreaker(cfg BreakerConfig) *breaker {
	b := &breaker{failuresToOpen: cfg.Failures, coolDown: cfg.CoolDown}
	if b.failuresToOpen == 0 {
		b.failuresToOpen = 5
	}
	if b.coolDown <= 0 {
		b.coolDown = 10 * time.Second
	}
	return b
}

// allow reports whether a request may go to the upstream at now, whether it is
// the half-open probe, and, if it may not, how long the caller should wait. A
// request it allows must be followed by exactly one call of done.
func (b *breaker) allow(now time.Time) (ok, probe bool, wait time.Duration) {
	if b.failuresToOpen < 0 {
		return true, false, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.openUntil.IsZero():
		return true, false, 0
	case now.Before(b.openUntil):
		return false, false, b.openUntil.Sub(now)
	case b.probing:
		return false, false, time.Second
	}
	b.probing = true
	return true, true, 0
}

// done records the outcome of a request that allow let through; probe is what
// allow said of it.
func (b *breaker) done(probe, success bool, now time.Time) {
	if b.failuresToOpen < 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	if success {
		b.failures = 0
		b.openUntil = time.Time{}
		return
	}
	if probe || !b.openUntil.IsZero() {
		b.openUntil = now.Add(b.coolDown)
		return
	}
	b.failures++
	if b.failures >= b.failuresToOpen {
		b.failures = 0
		b.openUntil = now.Add(b.coolDown)
	}
}

// open reports whether the breaker refuses requests at now.
func (b *breaker) open(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.openUntil.IsZero() && now.Before(b.openUntil)
}
