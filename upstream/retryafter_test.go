package upstream

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/errorsjson"
)

// retryAfterReference is parseRetryAfter derived again from RFC 9110's
// Retry-After (delay-seconds, a run of decimal digits, or an HTTP-date in one
// of its three forms) and the bound of 24 hours, without strconv.
func retryAfterReference(value string, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(value)
	if v != "" && strings.Trim(v, "0123456789") == "" {
		var n uint64
		for i := 0; i < len(v); i++ {
			n = n*10 + uint64(v[i]-'0')
			if n > 86400 {
				return 24 * time.Hour, true
			}
		}
		return time.Duration(n) * time.Second, true
	}
	for _, layout := range []string{http.TimeFormat, time.RFC850, time.ANSIC} {
		if t, err := time.Parse(layout, v); err == nil {
			return min(max(t.Sub(now), 0), 24*time.Hour), true
		}
	}
	return 0, false
}

// FuzzParseRetryAfter: decimal seconds parse to exactly that many seconds (at
// most a day), an HTTP-date to its difference from now (0 if past, at most a
// day), anything else is refused with 0; the wait is never negative, and
// written back it is a whole number of seconds, at least 1.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{
		"0", "120", " 7 ", "86400", "86401", "99999999999999999999", "0086400", "-1", "+5", "1e9", "1.5", "0x10", "1_000", "",
		"Wed, 21 Oct 2026 07:28:00 GMT",
		now.Add(90 * time.Second).Format(http.TimeFormat),
		now.Add(90 * time.Second).Format(time.RFC850),
		now.Add(90 * time.Second).Format(time.ANSIC),
		now.Add(-time.Hour).Format(http.TimeFormat),
		now.Add(72 * time.Hour).Format(http.TimeFormat),
		"Tue, 24 Nov 2026 12:01:30 PST",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseRetryAfter(s, now)
		if want, wantOK := retryAfterReference(s, now); d != want || ok != wantOK {
			t.Fatalf("parseRetryAfter(%q) = %v, %v; want %v, %v", s, d, ok, want, wantOK)
		}
		if d < 0 || d > 24*time.Hour {
			t.Fatalf("parseRetryAfter(%q) = %v, outside [0, 24h]", s, d)
		}
		h := http.Header{}
		errorsjson.SetRetryAfter(h, d)
		if v, err := strconv.Atoi(h.Get("Retry-After")); err != nil || v < 1 || time.Duration(v)*time.Second < d {
			t.Fatalf("SetRetryAfter(%v) wrote %q, want a whole number ≥ 1 and ≥ the wait", d, h.Get("Retry-After"))
		}
	})
}
