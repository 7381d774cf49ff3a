package upstream

import (
	"sync"
	"time"
)

// BreakerConfig configures the circuit breaker of a [Proxy]: after Failures
// consecutive failures (no answer, a timeout, an answer of 429 or 5xx, or a
// success whose body broke off) the proxy stops calling its upstream and
// answers 503 at once, with Retry-After set to the rest of the cool-down;
// when CoolDown has passed, exactly one request goes through as a probe
// (half-open): its success closes the breaker, its failure opens it for
// another CoolDown. Requests that arrive while the
// probe is out get 503 with Retry-After: 1. A call whose caller went away
// before it ended counts neither way, so callers that give up early can
// neither keep the breaker from opening nor close it; an abandoned probe
// leaves the breaker half-open for the next request.
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

	changed func(state string) // if set, told each change of state, under mu
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
	defer b.note(b.state())
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

// outcome is what one call says of its upstream.
type outcome int

const (
	succeeded outcome = iota // it answered (a success, or an answer that is not an outage)
	failed                   // no answer, a timeout, a 429 or 5xx, a body that broke off
	abandoned                // the caller went away first: nothing learnt either way
)

// done records the outcome of a request that allow let through; probe is what
// allow said of it. An abandoned call changes neither the failure count nor
// the state: it only gives the probe's place back, so that the next request
// is the probe.
func (b *breaker) done(probe bool, o outcome, now time.Time) {
	if b.failuresToOpen < 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.note(b.state())
	if probe {
		b.probing = false
	}
	switch {
	case o == abandoned:
		return
	case o == succeeded:
		b.failures = 0
		b.openUntil = time.Time{}
		return
	case probe || !b.openUntil.IsZero():
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
