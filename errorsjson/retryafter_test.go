package errorsjson

import (
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/seconds"
)

func TestSeconds(t *testing.T) {
	tests := []struct {
		d         time.Duration
		want      int64
		wantRetry string
	}{
		{-time.Second, 0, "1"},
		{0, 0, "1"},
		{time.Nanosecond, 1, "1"},
		{time.Second, 1, "1"},
		{time.Second + time.Nanosecond, 2, "2"},
		{1500 * time.Millisecond, 2, "2"},
		{30 * time.Second, 30, "30"},
		{24 * time.Hour, 86400, "86400"},
	}
	for _, tt := range tests {
		if got := seconds.Ceil(tt.d); got != tt.want {
			t.Errorf("seconds.Ceil(%v) = %d, want %d", tt.d, got, tt.want)
		}
		h := http.Header{}
		SetRetryAfter(h, tt.d)
		if got := h.Values("Retry-After"); len(got) != 1 || got[0] != tt.wantRetry {
			t.Errorf("SetRetryAfter(%v) = %q, want [%q]", tt.d, got, tt.wantRetry)
		}
	}
}
