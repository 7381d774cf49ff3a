package testrand

import "testing"

// TestSeed: GATEHOUSE_SEED seeds New, which then gives Seeded's numbers.
func TestSeed(t *testing.T) {
	t.Setenv("GATEHOUSE_SEED", "42")
	r, want := New(t), Seeded(42)
	for i := range 10 {
		if got, w := r.Uint64(), want.Uint64(); got != w {
			t.Fatalf("number %d: %d, want %d (seed 42)", i, got, w)
		}
	}
	if a, b := Seeded(1).Uint64(), Seeded(2).Uint64(); a == b {
		t.Errorf("seeds 1 and 2 both begin with %d", a)
	}
}

// TestLimit: every limit is from 1 to most, and each scale turns up: under
// 10, under 2,000, and within 1,000 of most.
func TestLimit(t *testing.T) {
	const most = 1 << 52
	r := Seeded(7)
	var tiny, api, top int
	for range 10_000 {
		l := Limit(r, most)
		if l < 1 || l > most {
			t.Fatalf("Limit = %d, want 1 to %d", l, most)
		}
		switch {
		case l <= 10:
			tiny++
		case l <= 2000:
			api++
		case l > most-1000:
			top++
		}
	}
	if tiny == 0 || api == 0 || top == 0 {
		t.Errorf("%d tiny, %d an API's, %d near %d; want some of each", tiny, api, top, most)
	}
}
