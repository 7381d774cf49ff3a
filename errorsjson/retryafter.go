package errorsjson

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/seconds"
)

// SetRetryAfter sets h's Retry-After to d in whole seconds, rounded up and at
// least 1, as ratelimit rounds its resets and as docs/contract.md has every
// 429 and 503 carry it: a retry at that second is not too early.
func SetRetryAfter(h http.Header, d time.Duration) {
	h.Set("Retry-After", strconv.FormatInt(max(seconds.Ceil(d), 1), 10))
}
