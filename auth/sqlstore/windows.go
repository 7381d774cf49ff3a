package sqlstore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// storedWindow is one of a key's windows in the windows column's JSON:
// {"limit":1000,"per_seconds":3600}, the format of every release
// (TestWindowsStoredJSON).
type storedWindow struct {
	Limit      int   `json:"limit"`
	PerSeconds int64 `json:"per_seconds"`
}

// encodeWindows returns the windows column's JSON for ws: "[]" for none.
func encodeWindows(ws []ratelimit.Rate) string {
	out := make([]storedWindow, 0, len(ws))
	for _, w := range ws {
		out = append(out, storedWindow{Limit: w.Limit, PerSeconds: int64(w.Period / time.Second)})
	}
	b, _ := json.Marshal(out) // a slice of two ints cannot fail
	return string(b)
}

// decodeWindows reads the windows column: nil for none.
func decodeWindows(s string) ([]ratelimit.Rate, error) {
	var in []storedWindow
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, err
	}
	if len(in) == 0 {
		return nil, nil
	}
	ws := make([]ratelimit.Rate, 0, len(in))
	for _, w := range in {
		ws = append(ws, ratelimit.Rate{Limit: w.Limit, Period: time.Duration(w.PerSeconds) * time.Second})
	}
	return ws, nil
}

// windowsOrNil returns ws, or nil when it is empty, so that a key without
// windows reads back the same whatever it was made with.
func windowsOrNil(ws []ratelimit.Rate) []ratelimit.Rate {
	if len(ws) == 0 {
		return nil
	}
	return ws
}

// checkWindows returns an error wrapping ErrInvalid for windows the rate
// limiter would refuse (ratelimit.Limits.Validate, whose rule this is): a
// limit below 1, a period that is not a whole number of seconds from 1s to
// 31 days, a period twice, or a minute or a day (PerMinute and PerDay are
// those).
func checkWindows(ws []ratelimit.Rate) error {
	if len(ws) == 0 {
		return nil
	}
	if err := (ratelimit.Limits{PerMinute: 1, PerDay: 1, More: ws}).Validate(); err != nil {
		return fmt.Errorf("%w: windows: %v", ErrInvalid, err)
	}
	return nil
}
