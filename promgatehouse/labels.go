package promgatehouse

import (
	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// The result label values of the layers' results, by value: Prometheus's
// conventions (lower case, snake case) are this package's to apply, so the
// layers name their results only in Go (their String methods).
// TestEveryResultHasALabel holds that every result has one.
var (
	// keyResultLabels label gatehouse_key_checks_total (a key check's
	// results) and gatehouse_key_lookups_total (a cache's: Result.Cached).
	keyResultLabels = [...]string{
		auth.KeyValid:            "valid",
		auth.KeyMissing:          "missing",
		auth.KeyInvalid:          "invalid",
		auth.KeyThrottled:        "throttled",
		auth.KeyStoreUnavailable: "store_unavailable",
		auth.KeyStoreError:       "store_error",
		auth.KeyAbandoned:        "abandoned",
		auth.CacheHit:            "hit",
		auth.CacheMiss:           "miss",
		auth.CacheNegativeHit:    "negative_hit",
	}
	// rateLimitResultLabels label gatehouse_ratelimit_decisions_total.
	rateLimitResultLabels = [...]string{
		ratelimit.Passed:            "passed",
		ratelimit.Refused:           "refused",
		ratelimit.StoreFailedOpen:   "store_error_open",
		ratelimit.StoreFailedClosed: "store_error_closed",
		ratelimit.Abandoned:         "abandoned",
	}
)
