package ratelimit

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"
)

func TestIncrementalReclaim(t *testing.T) {
	c := newClock()
	s := NewMemoryStore(MemoryConfig{Shards: 1}) // busy keys in every shard
	ctx := context.Background()
	l := Limits{PerMinute: 10, PerDay: 100}
	for i := 0; i < 1000; i++ {
		s.Take(ctx, Charge{Key: "once-" + strconv.Itoa(i), Limits: l}, c.Now())
	}
	if n := s.Len(); n != 1000 {
		t.Fatalf("Len = %d, want 1000", n)
	}
	// Not yet full: the day window needs 86400/100 s per token.
	c.Advance(2 * time.Minute)
	for i := 0; i < 1000; i++ {
		s.Take(ctx, Charge{Key: "busy-" + strconv.Itoa(i%8), Limits: l}, c.Now())
	}
	if n := s.Len(); n != 1008 {
		t.Fatalf("Len = %d before the buckets are full, want 1008", n)
	}
	c.Advance(24 * time.Hour)
	// Only 8 keys stay busy; their Takes sweep the rest away.
	for i := 0; i < 2000; i++ {
		s.Take(ctx, Charge{Key: "busy-" + strconv.Itoa(i%8), Limits: l}, c.Now())
		c.Advance(time.Millisecond)
	}
	if n := s.Len(); n != 8 {
		t.Errorf("Len = %d after the idle keys refilled, want 8 (the busy ones)", n)
	}
}

func TestSweepKeepsPartialBuckets(t *testing.T) {
	c := newClock()
	s := NewMemoryStore(MemoryConfig{})
	ctx := context.Background()
	s.Take(ctx, Charge{Key: "a", Limits: Limits{PerMinute: 10, PerDay: 100}}, c.Now())
	c.Advance(time.Minute)
	if n := s.Sweep(c.Now()); n != 0 {
		t.Errorf("Sweep dropped %d buckets whose day window is not full", n)
	}
	c.Advance(24 * time.Hour)
	if n := s.Sweep(c.Now()); n != 1 {
		t.Errorf("Sweep dropped %d, want 1", n)
	}
	// A key seen again after being reclaimed starts full, as it would have been.
	d, _ := s.Take(ctx, Charge{Key: "a", Limits: Limits{PerMinute: 10, PerDay: 100}}, c.Now())
	if d.Minute.Remaining != 9 || d.Day.Remaining != 99 {
		t.Errorf("reclaimed key: %+v", d)
	}
}

// TestMillionKeysReclaimed touches 1,000,000 keys once, lets a day pass and
// checks that reclaiming them gives the heap back.
func TestMillionKeysReclaimed(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000,000 keys")
	}
	const keys = 1_000_000
	c := newClock()
	s := NewMemoryStore(MemoryConfig{})
	ctx := context.Background()
	l := Limits{PerMinute: 60, PerDay: 10000}
	base := heap()
	buf := make([]byte, 0, 16)
	for i := 0; i < keys; i++ {
		buf = strconv.AppendInt(append(buf[:0], "key-"...), int64(i), 10)
		s.Take(ctx, Charge{Key: string(buf), Limits: l}, c.Now())
	}
	full := heap()
	t.Logf("%d keys: heap %d MB over baseline, %d bytes/key", keys, (full-base)>>20, (full-base)/keys)
	// docs/reliability.md quotes about 140 bytes a key; hold it with some room.
	if perKey := (full - base) / keys; perKey > 200 {
		t.Errorf("%d bytes a key, want at most 200", perKey)
	}
	if s.Len() != keys {
		t.Fatalf("Len = %d, want %d", s.Len(), keys)
	}
	c.Advance(24*time.Hour + time.Second)
	if n := s.Sweep(c.Now()); n != keys {
		t.Fatalf("Sweep dropped %d, want %d", n, keys)
	}
	after := heap()
	t.Logf("after reclaim: heap %d KB over baseline", (after-base)>>10)
	if after > base+1<<20 {
		t.Errorf("heap %d bytes over baseline after reclaiming every key, want under 1 MB (it held %d MB)", after-base, (full-base)>>20)
	}
	runtime.KeepAlive(s)
}

func heap() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestSweepFromAnyCursor checks that Sweep reclaims every idle bucket wherever
// the incremental sweep of Take has left off.
func TestSweepFromAnyCursor(t *testing.T) {
	for _, takes := range []int{0, 1, 7, 30, 99} {
		c := newClock()
		s := NewMemoryStore(MemoryConfig{Shards: 1})
		ctx := context.Background()
		l := Limits{PerMinute: 10, PerDay: 100}
		for i := 0; i < 100; i++ {
			s.Take(ctx, Charge{Key: strconv.Itoa(i), Limits: l}, c.Now())
		}
		c.Advance(time.Minute)
		for i := 0; i < takes; i++ { // moves the cursor, reclaims nothing yet
			s.Take(ctx, Charge{Key: "busy", Limits: l}, c.Now())
		}
		c.Advance(25 * time.Hour)
		s.Take(ctx, Charge{Key: "busy", Limits: l}, c.Now())
		s.Sweep(c.Now())
		if n := s.Len(); n != 1 {
			t.Errorf("after %d takes: Len = %d after Sweep, want 1 (the busy key)", takes, n)
		}
	}
}

// TestQuietShardsReclaimed: with the default shard count, 100,000 one-off keys
// are all reclaimed by the Takes of 8 busy keys a day later, wherever the busy
// keys' shards are, and the heap goes back to where it was.
func TestQuietShardsReclaimed(t *testing.T) {
	const keys, busy, takes = 100_000, 8, 200_000
	c := newClock()
	s := NewMemoryStore(MemoryConfig{})
	ctx := context.Background()
	l := Limits{PerMinute: 10, PerDay: 100}
	base := heap()
	for i := 0; i < keys; i++ {
		s.Take(ctx, Charge{Key: "once-" + strconv.Itoa(i), Limits: l}, c.Now())
	}
	full := heap()
	c.Advance(24*time.Hour + time.Minute)
	n := 0
	for ; n < takes && s.Len() > busy; n++ {
		s.Take(ctx, Charge{Key: "busy-" + strconv.Itoa(n%busy), Limits: l}, c.Now())
		c.Advance(time.Millisecond)
	}
	t.Logf("%d one-off keys reclaimed by %d Takes of %d busy keys", keys, n, busy)
	if n := s.Len(); n != busy {
		t.Fatalf("Len = %d after %d Takes of %d busy keys, want %d", n, takes, busy, busy)
	}
	if after := heap(); after > base+1<<20 {
		t.Errorf("heap %d bytes over baseline after reclaiming, want under 1 MB (it held %d MB)", after-base, (full-base)>>20)
	}
	runtime.KeepAlive(s)
}

// TestReturningKeysKeptLonger: Take's sweep drops a bucket taken from once as
// soon as it is full, and one taken from again once it has been full for as
// long as a request takes to refill in its slowest window; Sweep drops both as
// soon as they are full.
func TestReturningKeysKeptLonger(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := Limits{PerMinute: 60, PerDay: 86_400} // a token a second in each window
	s := NewMemoryStore(MemoryConfig{Shards: 1})
	takeAt(t, s, "once", l, t0) // full at 1 s
	takeAt(t, s, "back", l, t0)
	takeAt(t, s, "back", l, t0.Add(time.Second)) // full at 2 s; a request refills in 1 s: due at 3 s
	lenAfterTakes(t, s, "busy", l, t0, []keysAt{
		{2999 * time.Millisecond, 2}, // "back" and "busy"
		{3000 * time.Millisecond, 1}, // "busy"
	})

	s = NewMemoryStore(MemoryConfig{Shards: 1})
	takeAt(t, s, "back", l, t0)
	takeAt(t, s, "back", l, t0.Add(time.Second))
	if n := s.Sweep(t0.Add(1999 * time.Millisecond)); n != 0 {
		t.Errorf("Sweep at 1.999 s dropped %d, want 0: the bucket is full at 2 s", n)
	}
	if n := s.Sweep(t0.Add(2 * time.Second)); n != 1 {
		t.Errorf("Sweep at 2 s dropped %d, want 1: the bucket is full", n)
	}
}

// keysAt is how many keys a store should hold after Takes at a time.
type keysAt struct {
	at   time.Duration
	keys int
}

// lenAfterTakes takes key 4 times at t0 plus each want's at, and checks that
// s then holds want's number of keys.
func lenAfterTakes(t *testing.T, s *MemoryStore, key string, l Limits, t0 time.Time, want []keysAt) {
	t.Helper()
	for _, w := range want {
		for range 4 {
			takeAt(t, s, key, l, t0.Add(w.at))
		}
		if n := s.Len(); n != w.keys {
			t.Errorf("Len = %d after Takes of another key at %v, want %d", n, w.at, w.keys)
		}
	}
}

// TestDroppedKeysKeptLongerWhenBack: a key whose bucket was dropped, full,
// between two of its requests gets a bucket that Take's sweep keeps as a
// returning key's (TestReturningKeysKeptLonger), full for one request's
// refill, so that a key a little slower than its refill loses its bucket
// once, not at every request; a new key's bucket still goes as soon as it is
// full.
func TestDroppedKeysKeptLongerWhenBack(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := Limits{PerMinute: 60, PerDay: 86_400} // a token a second in each window
	s := NewMemoryStore(MemoryConfig{Shards: 1})
	takeAt(t, s, "back", l, t0) // full at 1 s
	for range 4 {
		takeAt(t, s, "busy", l, t0.Add(time.Second))
	}
	if n := s.Len(); n != 1 {
		t.Fatalf("Len = %d after Takes of another key at 1 s, want 1: the bucket of back is full", n)
	}
	takeAt(t, s, "back", l, t0.Add(1500*time.Millisecond)) // anew: full at 2.5 s, due at 3.5 s
	takeAt(t, s, "new", l, t0.Add(1500*time.Millisecond))  // full and due at 2.5 s
	lenAfterTakes(t, s, "busy", l, t0, []keysAt{
		{3499 * time.Millisecond, 2}, // "back" and "busy"
		{3500 * time.Millisecond, 1}, // "busy"
	})
}

// TestOtherShardSweptEveryEighthTake: a shard's Takes sweep another shard at
// every eighth of them, for eight times SweepPerTake buckets, and not between.
func TestOtherShardSweptEveryEighthTake(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := Limits{PerMinute: 60, PerDay: 86_400} // full a second after one request
	s := NewMemoryStore(MemoryConfig{Shards: 2, SweepPerTake: 1})
	var busy string
	var idle []string
	for i := 0; busy == "" || len(idle) < 20; i++ {
		k := strconv.Itoa(i)
		switch shard, _ := s.shardOf(k); {
		case shard == 0 && busy == "":
			busy = k
		case shard == 1 && len(idle) < 20:
			idle = append(idle, k)
		}
	}
	for _, k := range idle {
		takeAt(t, s, k, l, t0)
	}
	// At 2 s every idle bucket is full. Shard 0's first sweep of another
	// shard is shard 1's, at its eighth Take.
	for i := 1; i <= 8; i++ {
		takeAt(t, s, busy, l, t0.Add(2*time.Second))
		want := 21
		if i == 8 {
			want = 13
		}
		if n := s.Len(); n != want {
			t.Fatalf("Len = %d after %d Takes of a key of another shard, want %d", n, i, want)
		}
	}
}
