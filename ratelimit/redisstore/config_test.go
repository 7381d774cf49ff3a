package redisstore

import (
	"testing"

	"github.com/gatehouse-go/gatehouse/internal/refused"
)

// TestConfigRefused: New refuses a nil client when the store is built,
// not with a nil dereference at the first request.
func TestConfigRefused(t *testing.T) {
	refused.Panic(t, "redisstore: New: client is nil", func() { New(nil, Options{}) })
}
