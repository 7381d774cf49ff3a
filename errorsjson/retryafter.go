package errorsjson

import (
	"net/http"
	"strconv"
	"time"
)

// Seconds is d in whole seconds, rounded up (0 for d <= 0): the one rule by
// which every header of gatehouse that counts seconds (Retry-After, the
// rate-limit resets) turns a duration into a number, so that a caller who
// waits that long never arrives early.
func Seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// SetRetryAfter sets h's Retry-After to d in whole seconds, rounded up and at
// least 1 (the contract's "a whole number of seconds, at least 1"), as the 429
// and 503 answers of every layer carry it.
func SetRetryAfter(h http.Header, d time.Duration) {
	h["Retry-After"] = []string{strconv.FormatInt(max(Seconds(d), 1), 10)}
}
