package ratelimit

import (
	"context"
	"testing"
	"time"
)

// TestRaisedLimitOfAFullWindow: a window that is full when its limit changes
// is full at the new size, as a new key's would be; one that is not keeps its
// time until full.
func TestRaisedLimitOfAFullWindow(t *testing.T) {
	s := NewMemoryStore(MemoryConfig{})
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	take := func(at time.Duration, l Limits) Decision {
		d, err := s.Take(context.Background(), Charge{Key: "k", Limits: l}, t0.Add(at))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	take(0, Limits{PerMinute: 2, PerDay: 10})              // minute 1 of 2, day 9 of 10
	d := take(time.Hour, Limits{PerMinute: 7, PerDay: 20}) // minute full again; day not
	if d.Minute.Remaining != 6 {
		t.Errorf("full minute window raised to 7: remaining %d after one request, want 6", d.Minute.Remaining)
	}
	// The day window was 8,640 - 3,600 = 5,040 s from full: at 20 a day (4,320 s
	// each) 1.17 requests' worth, 2.17 with this one, so 17 whole remain.
	if d.Day.Remaining != 17 {
		t.Errorf("day window raised to 20: remaining %d, want 17", d.Day.Remaining)
	}
}
