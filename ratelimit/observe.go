package ratelimit

import "strconv"

// Result is what the rate limiter decided of one request, for [Event].
type Result uint8

// The results of [Event]. StoreFailedOpen and StoreFailedClosed are the two
// ends of a request whose store failed, as [Config.OnStoreError] decided it.
// Abandoned is a request whose caller went away before the store answered:
// the store is not to blame, so it is neither logged nor counted as a store
// failure.
const (
	Passed            Result = iota // every window had room: the cost was taken
	Refused                         // a window had no room for the cost: 429
	StoreFailedOpen                 // the store failed and the request went on (fail open)
	StoreFailedClosed               // the store failed and the request was answered (fail closed)
	Abandoned                       // the caller went away before the store answered
)

// resultNames are the results' Go names, by value.
var resultNames = [...]string{
	Passed:            "Passed",
	Refused:           "Refused",
	StoreFailedOpen:   "StoreFailedOpen",
	StoreFailedClosed: "StoreFailedClosed",
	Abandoned:         "Abandoned",
}

// String returns the result's Go name ("Passed", "StoreFailedOpen"), or
// "Result(N)" for a value that is none of them, as the stringer tool would:
// a printed event names the constant to look up. It is no metric label: an
// adapter names its labels in its own package, by its own conventions
// (promgatehouse's are "passed", "store_error_open"), so that this package
// does not decide them.
func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return "Result(" + strconv.Itoa(int(r)) + ")"
}

// Event is one decision of [Middleware], given to [Config.Observe]. It names
// no key: a key is not a bounded label.
type Event struct {
	Result Result
	// Window is the window that refused the request: the first, in the order
	// minute, day, then [Decision.More], that had no room for the request's
	// cost, named as in the RateLimit headers ("minute", "day", "hour",
	// "30d", "owner-day": see docs/limits.md); "" unless Result is Refused.
	Window string
}

// decided is the event of a store's decision d of a request of cost.
func decided(d *Decision, cost int) Event {
	if d.Allowed {
		return Event{Result: Passed}
	}
	return Event{Result: Refused, Window: refusingWindow(d, cost)}
}

// storeFailed is the result of a request whose store failed, by what
// OnStoreError returned.
func storeFailed(open bool) Result {
	if open {
		return StoreFailedOpen
	}
	return StoreFailedClosed
}

// refusingWindow names the first window of a refused decision that had no
// room for cost (Remaining counts whole tokens, so cost fits in a window
// exactly when it is at most Remaining).
func refusingWindow(d *Decision, cost int) string {
	switch {
	case d.Minute.Remaining < cost:
		return "minute"
	case d.Day.Remaining < cost:
		return "day"
	}
	for _, w := range d.More {
		if w.Remaining < cost {
			return windowName(w.Period, w.Owner)
		}
	}
	return "day"
}
