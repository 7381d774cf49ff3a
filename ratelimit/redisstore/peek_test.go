package redisstore

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/redistest"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// TestPeekAgreesWithMemoryStore: after the same takes, a Redis store and a
// MemoryStore peek the same windows, and peeking takes nothing from either.
func TestPeekAgreesWithMemoryStore(t *testing.T) {
	s := redistest.Start(t)
	clock := newFakeClock()
	rs := exactStore(exactClient(t, s), Options{Now: clock.Now})
	mem := ratelimit.NewMemoryStore(ratelimit.MemoryConfig{})
	ctx := context.Background()
	l := ratelimit.Limits{PerMinute: 3, PerDay: 10}
	check := func(when string) {
		t.Helper()
		for range 3 { // peeking again changes nothing
			got, err := rs.Peek(ctx, ratelimit.Charge{Key: "k", Limits: l}, time.Time{})
			if err != nil {
				t.Fatalf("%s: Peek: %v", when, err)
			}
			want, _ := mem.Peek(ctx, ratelimit.Charge{Key: "k", Limits: l}, clock.Now())
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: redis peeks %+v, memory %+v", when, got, want)
			}
		}
	}
	check("unseen key")
	for range 4 {
		mustTake(t, rs, "k", l, time.Time{})
		mem.Take(ctx, ratelimit.Charge{Key: "k", Limits: l}, clock.Now())
	}
	check("after 4 takes of 3 a minute")
	clock.Advance(25 * time.Second)
	check("25 s later")
	if d := mustTake(t, rs, "k", l, time.Time{}); !d.Allowed || d.Minute.Remaining != 0 {
		t.Fatalf("take after peeks: %+v, want allowed with 0 left (one refilled)", d)
	}
	real := exactStore(exactClient(t, s), Options{}) // Redis's own clock
	mustTake(t, real, "r", l, time.Time{})
	mustTake(t, real, "r", l, time.Time{})
	got, err := real.Peek(ctx, ratelimit.Charge{Key: "r", Limits: l}, time.Time{})
	if err != nil || got.Day.Remaining != 8 || got.Minute.Remaining != 1 {
		t.Fatalf("peek on Redis's clock after 2 takes: %+v, %v; want 1 of the minute and 8 of the day left", got, err)
	}
}
