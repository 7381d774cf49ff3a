package upstream

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfter bounds a parsed Retry-After: a day is longer than any real
// answer and keeps arithmetic on attacker-chosen values far from overflow.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter parses a Retry-After value, either delay-seconds ("120") or
// an HTTP-date ("Wed, 21 Oct 2026 07:28:00 GMT"), relative to now. It returns
// the wait, at most 24 hours and never negative (a date in the past is 0), and
// false if value is neither form.
func parseRetryAfter(value string, now time.Time) (time.Duration, bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	if strings.Trim(value, "0123456789") == "" {
		n, err := strconv.ParseUint(value, 10, 64)
		if err != nil {
			// Every byte is a digit: the only error is a value past uint64.
			// (ParseUint reports the overflow before it reaches a later
			// non-digit, so the check above must come first.)
			return maxRetryAfter, true
		}
		if n > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(value)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	switch {
	case d < 0:
		return 0, true
	case d > maxRetryAfter:
		return maxRetryAfter, true
	}
	return d, true
}
