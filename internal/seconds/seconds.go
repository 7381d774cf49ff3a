// Package seconds turns a duration into the whole seconds a header counts,
// by the one rule every header of gatehouse that counts seconds follows
// (errorsjson's Retry-After, ratelimit's resets).
package seconds

import "time"

// Ceil is d in whole seconds, rounded up (0 for d <= 0), so that a caller
// who waits that long never arrives early.
func Ceil(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
