package auth

import "strconv"

// Result is the outcome of one key check or cache lookup, for [Event].
type Result uint8

// The results of [Event]. The first seven are [Middleware]'s, one per request
// that reaches it; the last three are a [Cache]'s, one per Lookup.
const (
	KeyValid            Result = iota // the key passed
	KeyMissing                        // no key: 401
	KeyInvalid                        // malformed, unknown, disabled or expired: 401
	KeyThrottled                      // the client spent its failed attempts: 429
	KeyStoreUnavailable               // the store is down or did not answer in time: 503
	KeyStoreError                     // the store failed otherwise: 503
	KeyAbandoned                      // the caller went away before the store answered: not a store failure
	CacheHit                          // a found key served from the cache
	CacheMiss                         // asked of the underlying store
	CacheNegativeHit                  // an unknown hash served from the cache
)

// resultNames are the results' Go names, by value.
var resultNames = [...]string{
	KeyValid:            "KeyValid",
	KeyMissing:          "KeyMissing",
	KeyInvalid:          "KeyInvalid",
	KeyThrottled:        "KeyThrottled",
	KeyStoreUnavailable: "KeyStoreUnavailable",
	KeyStoreError:       "KeyStoreError",
	KeyAbandoned:        "KeyAbandoned",
	CacheHit:            "CacheHit",
	CacheMiss:           "CacheMiss",
	CacheNegativeHit:    "CacheNegativeHit",
}

// String returns the result's Go name ("KeyValid", "CacheNegativeHit"), or
// "Result(N)" for a value that is none of them, as the stringer tool would:
// a printed event names the constant to look up. It is no metric label: an
// adapter names its labels in its own package, by its own conventions
// (promgatehouse's are "valid", "negative_hit"), so that this package does
// not decide them.
func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return "Result(" + strconv.Itoa(int(r)) + ")"
}

// Cached reports whether r is a [Cache]'s result rather than a key check's.
func (r Result) Cached() bool { return r >= CacheHit }

// Event is one key check ([Config.Observe]) or cache lookup
// ([CacheConfig.Observe]). It carries neither the key nor its id: neither is
// a bounded label.
type Event struct {
	Result Result
}

// observe tells fn of r, if fn is set.
func observe(fn func(Event), r Result) {
	if fn != nil {
		fn(Event{Result: r})
	}
}
