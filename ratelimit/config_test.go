package ratelimit

import (
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/refused"
)

// TestConfigRefused: each configuration that cannot work is refused when the
// middleware or the store is built, with a panic whose error is Validate's,
// word for word, and names the field; so is a nil primary or handler.
func TestConfigRefused(t *testing.T) {
	const noKey = "ratelimit: Config.Key is nil; say what to limit by (ratelimit.ByClientIP for the client IP)"
	const badLimits = "ratelimit: invalid limits: 1 a minute and 4503599627370497 a day, want 1 to 2^52"
	const share = "ratelimit: FallbackConfig.Share must be above 0 and at most 1 (1/N for N replicas)"
	const retry = "ratelimit: FallbackConfig.RetryEvery is negative (-1s)"
	for _, tt := range []struct {
		name  string
		err   error
		want  string
		build func()
	}{
		{"no key", Config{}.Validate(), noKey, func() { Middleware(Config{}) }},
		{"limits above MaxLimit", Config{Key: ByClientIP, Limits: Limits{PerMinute: 1, PerDay: MaxLimit + 1}}.Validate(), badLimits,
			func() { Middleware(Config{Key: ByClientIP, Limits: Limits{PerMinute: 1, PerDay: MaxLimit + 1}}) }},
		{"no share", FallbackConfig{}.Validate(), share, func() { Fallback(newSwitchStore(), FallbackConfig{}) }},
		{"negative RetryEvery", FallbackConfig{Share: 1, RetryEvery: -time.Second}.Validate(), retry,
			func() { Fallback(newSwitchStore(), FallbackConfig{Share: 1, RetryEvery: -time.Second}) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil || tt.err.Error() != tt.want {
				t.Errorf("Validate() = %v, want %q", tt.err, tt.want)
			}
			refused.Panic(t, tt.want, tt.build)
		})
	}
	refused.Panic(t, "ratelimit: Fallback: primary store is nil", func() { Fallback(nil, FallbackConfig{Share: 1}) })
	refused.Panic(t, "ratelimit: Middleware of a nil handler", func() { Middleware(Config{Key: ByClientIP})(nil) })
}
