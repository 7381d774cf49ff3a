package upstream

import (
	"net/http"
	"strconv"
	"time"
)

// EventKind says what an [Event] reports.
type EventKind uint8

// The kinds of [Event].
const (
	// Call is one request a [Proxy] handled: Class is the upstream's status
	// class ("2xx" to "5xx"), "error" when it gave no answer, "abandoned"
	// when the caller went away first, or "open" when the breaker refused the
	// call and the upstream was not asked; Duration is the time to the
	// answer's header (zero for "open").
	Call EventKind = iota
	// Retry is one attempt a [Transport] retries, reported before the wait:
	// Class is what the attempt got, as for Call; Status is its status (0
	// when it got no answer), Reason why it got none ("timeout", "connection
	// refused", "connection reset", "connection closed early", "host not
	// found" or "other"; never an address), and Duration the wait before the
	// next attempt.
	Retry
	// Breaker is a change of a Proxy's circuit breaker: State is the state
	// it is now in, "closed", "open" or "half_open" (a probe is out).
	Breaker
	// Probe is one health probe of [Health]: OK is its result and Duration
	// its time.
	Probe
)

// kindNames are the kinds' Go names, by value.
var kindNames = [...]string{Call: "Call", Retry: "Retry", Breaker: "Breaker", Probe: "Probe"}

// String returns the kind's Go name ("Call", "Retry", "Breaker", "Probe"), or
// "EventKind(N)" for a value that is none of them, as the stringer tool
// would: a printed event names the constant to look up. It is no metric
// label: an adapter names its labels in its own package.
func (k EventKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Breaker states of an [Event] of kind Breaker.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half_open"
)

// Event is one thing an upstream component reports to its Observe function
// ([Target.Observe], [Transport.Observe], [HealthConfig.Observe]). Name is
// the Target's or Transport's Name: the upstream's name (a product slug),
// never its address. Each kind sets the fields its description names; the
// others are zero.
type Event struct {
	Kind     EventKind
	Name     string
	Class    string
	Status   int
	Reason   string
	State    string
	OK       bool
	Duration time.Duration
}

// statusClasses are the Class of an answer by its status / 100.
var statusClasses = [...]string{"error", "1xx", "2xx", "3xx", "4xx", "5xx"}

// classOf is the Class of an attempt that got resp or err.
func classOf(resp *http.Response, err error) string {
	if err != nil || resp == nil {
		return "error"
	}
	if c := resp.StatusCode / 100; c >= 1 && c <= 5 {
		return statusClasses[c]
	}
	return "error"
}

// observeCall reports a Call of r to the target's Observe, if set.
func (p *Proxy) observeCall(r *http.Request, resp *http.Response, err error, start time.Time) {
	if p.target.Observe == nil {
		return
	}
	class := classOf(resp, err)
	if err != nil && r.Context().Err() != nil {
		class = "abandoned"
	}
	p.target.Observe(Event{Kind: Call, Name: p.target.Name, Class: class, Duration: p.now().Sub(start)})
}

// state is b's state as an [Event] names it. b.mu must be held.
func (b *breaker) state() string {
	switch {
	case b.openUntil.IsZero():
		return BreakerClosed
	case b.probing:
		return BreakerHalfOpen
	}
	return BreakerOpen
}

// note reports a change from before to b's state now, if b has an observer.
// b.mu must be held: the observer is called under it, so that changes are
// reported in their order.
func (b *breaker) note(before string) {
	if b.changed != nil {
		if now := b.state(); now != before {
			b.changed(now)
		}
	}
}

// States returns the state of each upstream as its last probe left it
// (HealthOK, HealthDown or HealthBreakerOpen), by name, without probing: an
// upstream never probed yet is left out. It is for a status page that must
// not make traffic of its own.
func (h *Health) States() map[string]string {
	h.mu.Lock()
	names := make([]string, 0, len(h.probes))
	probes := make([]*probe, 0, len(h.probes))
	for name, p := range h.probes {
		names = append(names, name)
		probes = append(probes, p)
	}
	h.mu.Unlock()
	states := make(map[string]string, len(names))
	for i, name := range names {
		p := probes[i]
		p.mu.Lock()
		probed, ok := !p.checked.IsZero(), p.ok
		p.mu.Unlock()
		switch {
		case !probed:
		case !ok:
			states[name] = HealthDown
		case h.open != nil && h.open(name):
			states[name] = HealthBreakerOpen
		default:
			states[name] = HealthOK
		}
	}
	return states
}
