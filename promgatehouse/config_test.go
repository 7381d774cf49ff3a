package promgatehouse

import (
	"testing"

	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/prometheus/client_golang/prometheus"
)

// TestConfigRefused: New and RegisterFallback refuse a nil registerer or state
// with an error when they are called, not with a panic at registration or at
// the first scrape.
func TestConfigRefused(t *testing.T) {
	if m, err := New(nil, Config{}); m != nil || err == nil || err.Error() != "promgatehouse: New: Registerer is nil" {
		t.Errorf("New(nil) = %v, %v", m, err)
	}
	s := ratelimit.Fallback(ratelimit.NewMemoryStore(ratelimit.MemoryConfig{}), ratelimit.FallbackConfig{Share: 1})
	if err := RegisterFallback(nil, s); err == nil || err.Error() != "promgatehouse: RegisterFallback: Registerer is nil" {
		t.Errorf("RegisterFallback(nil, s) = %v", err)
	}
	if err := RegisterFallback(prometheus.NewRegistry(), nil); err == nil || err.Error() != "promgatehouse: RegisterFallback: FallbackState is nil" {
		t.Errorf("RegisterFallback(reg, nil) = %v", err)
	}
}
