package ratelimit

// Result is what the rate limiter decided of one request, for [Event].
type Result uint8

// The results of [Event]. StoreFailedOpen and StoreFailedClosed are the two
// ends of a request whose store failed, as [Config.OnStoreError] decided it.
const (
	Passed            Result = iota // both windows had a token: one was taken
	Refused                         // a window was out of tokens: 429
	StoreFailedOpen                 // the store failed and the request went on (fail open)
	StoreFailedClosed               // the store failed and the request was answered (fail closed)
)

// String returns the result as a metric label value: "passed", "refused",
// "store_error_open" or "store_error_closed".
func (r Result) String() string {
	switch r {
	case Passed:
		return "passed"
	case Refused:
		return "refused"
	case StoreFailedOpen:
		return "store_error_open"
	case StoreFailedClosed:
		return "store_error_closed"
	}
	return "unknown"
}

// Event is one decision of [Middleware], given to [Config.Observe]. It names
// no key: a key is not a bounded label.
type Event struct {
	Result Result
	// Window is the window that refused the request, "minute" or "day" (the
	// minute's when both are empty); "" unless Result is Refused.
	Window string
}

// decided is the event of a store's decision d.
func decided(d Decision) Event {
	if d.Allowed {
		return Event{Result: Passed}
	}
	return Event{Result: Refused, Window: refusingWindow(d)}
}

// storeFailed is the result of a request whose store failed, by what
// OnStoreError returned.
func storeFailed(open bool) Result {
	if open {
		return StoreFailedOpen
	}
	return StoreFailedClosed
}

// refusingWindow names the window of a refused decision that was out of
// tokens.
func refusingWindow(d Decision) string {
	if d.Minute.Remaining <= 0 {
		return "minute"
	}
	return "day"
}
