package main

import (
	"context"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/gatehouse-go/gatehouse/internal/redistest"
	"github.com/gatehouse-go/gatehouse/ratelimit/redisstore"
)

// TestRedisHostileEndpoint: an endpoint on -redis's address that answers
// every command with `*68719476736` (a terabyte to go-redis) does not cost
// the gateway its memory: under -redis-down closed and local:1/3 alike it
// refuses to start, with an error that wraps redisstore.ErrReplyTooLarge and
// names the address without the password, after allocating less than 64 MB.
func TestRedisHostileEndpoint(t *testing.T) {
	addr := redistest.Hostile(t, []byte("*68719476736\r\n"))
	for _, policy := range []string{"closed", "local:1/3"} {
		t.Run(policy, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-log-level", "ERROR",
				"-redis", "redis://:hostile-pw@" + addr + "/0", "-redis-down", policy}, io.Discard, io.Discard, nil, nil)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, redisstore.ErrReplyTooLarge) || !strings.HasPrefix(err.Error(), "-redis: Redis at redis://:xxxxx@"+addr+"/0 does not answer: ") ||
				strings.Contains(err.Error(), "hostile-pw") {
				t.Errorf("run: %v; want -redis: Redis at the redacted URL does not answer, wrapping ErrReplyTooLarge", err)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
				t.Errorf("the start allocated %d bytes, want at most %d", got, 64<<20)
			}
		})
	}
}
