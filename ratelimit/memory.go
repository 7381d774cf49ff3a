package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// MemoryConfig configures a [MemoryStore]. The zero value is ready to use.
type MemoryConfig struct {
	// Shards is the number of independently locked parts the keys are spread
	// over by hash (zero: 64). More shards, less contention between keys.
	Shards int
	// SweepPerTake is how many buckets each Take checks for reclamation in
	// its own shard, and again in one other shard, taken in turn (zero: 2).
	// At 2 or more, every shard's idle buckets are all reclaimed within a few
	// passes over it, however few keys stay active and wherever they are.
	SweepPerTake int
}

// MemoryStore is a [Store] in this process's memory: each key's [Bucket] is
// kept in shards locked by key hash.
//
// State exists only for keys that were given to Take. A bucket that has refilled
// completely is the same as a new one, so it is reclaimed: each Take checks a few
// buckets of its shard and of one other shard, in turn, and drops the full ones,
// and a shard whose map has shrunk to a quarter of its peak is rebuilt so that the
// memory goes back too. No goroutine runs; [MemoryStore.Sweep] reclaims
// everything idle at once.
//
// A bucket's clock never goes back: a Take given a time earlier than the
// bucket's last change (two requests that read the clock in one order and
// reached the lock in the other) is decided at the later time, so that no
// refill is counted twice; and a bucket reclaimed at another key's later time
// starts again at that time, not at the earlier one its next request read.
//
// A MemoryStore is safe for concurrent use. Its Take never fails, except with
// [ErrInvalidLimits].
type MemoryStore struct {
	seed   maphash.Seed
	sweep  int
	shards []shard
}

type shard struct {
	mu      sync.Mutex
	now     int64 // the latest time this shard has seen, Unix milliseconds
	buckets map[string]*bucket
	order   []slot // the sweep's order; bucket.idx is its place here
	cursor  int
	peak    int
	other   int      // the next other shard a Take of this one sweeps
	_       [24]byte // keep neighbouring shards' locks off one cache line
}

// slot is a bucket's place in its shard's sweep order. fullAt is kept here, not
// in the bucket, so that the sweep reads adjacent memory instead of chasing a
// pointer to each bucket it checks.
type slot struct {
	fullAt int64 // Unix milliseconds from which both windows are full
	b      *bucket
}

// bucket is one key's state.
type bucket struct {
	Bucket
	key string
	idx int
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(cfg MemoryConfig) *MemoryStore {
	if cfg.Shards <= 0 {
		cfg.Shards = 64
	}
	if cfg.SweepPerTake <= 0 {
		cfg.SweepPerTake = 2
	}
	s := &MemoryStore{seed: maphash.MakeSeed(), sweep: cfg.SweepPerTake, shards: make([]shard, cfg.Shards)}
	for i := range s.shards {
		s.shards[i].buckets = make(map[string]*bucket)
		s.shards[i].other = i + 1
	}
	return s
}

// Take implements [Store].
func (s *MemoryStore) Take(_ context.Context, key string, limits Limits, now time.Time) (Decision, error) {
	if err := limits.Validate(); err != nil {
		return Decision{}, err
	}
	i := int(maphash.String(s.seed, key) % uint64(len(s.shards)))
	sh := &s.shards[i]
	sh.mu.Lock()
	ms := millis(now)
	shardNow := sh.tick(ms)
	b := sh.buckets[key]
	if b == nil {
		// At the shard's time: had this key been reclaimed at a later time
		// than now, a new bucket at now would count the refill between twice.
		b = &bucket{Bucket: Bucket{At: shardNow}, key: key, idx: len(sh.order)}
		sh.order = append(sh.order, slot{b: b})
		sh.buckets[key] = b
		sh.peak = max(sh.peak, len(sh.order))
	}
	next, allowed := b.Take(limits, ms)
	if allowed {
		b.Bucket = next
		sh.order[b.idx].fullAt = next.At + max(next.Minute.untilFull(), next.Day.untilFull())
	}
	sh.reclaim(shardNow, s.sweep, b)
	other := sh.other % len(s.shards)
	sh.other = other + 1
	sh.mu.Unlock()
	if other != i {
		s.shards[other].sweepIfFree(shardNow, s.sweep)
	}
	return next.Decision(allowed), nil
}

// tick moves the shard's clock to now if now is later, and returns the clock.
func (sh *shard) tick(now int64) int64 {
	sh.now = max(sh.now, now)
	return sh.now
}

// sweepIfFree checks up to n buckets of sh at now, unless another goroutine
// holds sh: a busy shard is swept by its own Takes.
func (sh *shard) sweepIfFree(now int64, n int) {
	if !sh.mu.TryLock() {
		return
	}
	if len(sh.order) > 0 {
		sh.reclaim(sh.tick(now), n, nil)
	}
	sh.mu.Unlock()
}

// Sweep reclaims every bucket that is full at now, in every shard, and returns
// how many it dropped. Take does the same a few buckets at a time; Sweep is for
// a caller that wants the memory back at once (after a burst of one-off keys).
func (s *MemoryStore) Sweep(now time.Time) int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		// From the start, a pass of len checks sees every bucket once: a drop
		// moves an unchecked bucket from the end into the checked place.
		sh.cursor = 0
		n += sh.reclaim(sh.tick(millis(now)), len(sh.order), nil)
		sh.mu.Unlock()
	}
	return n
}

// Len returns the number of keys that have state.
func (s *MemoryStore) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.order)
		sh.mu.Unlock()
	}
	return n
}

// reclaim checks up to n buckets from the cursor on, dropping those full at
// now (except keep, just taken from), and returns how many it dropped.
func (sh *shard) reclaim(now int64, n int, keep *bucket) int {
	dropped := 0
	for ; n > 0 && len(sh.order) > 0; n-- {
		if sh.cursor >= len(sh.order) {
			sh.cursor = 0
		}
		sl := sh.order[sh.cursor]
		if sl.b == keep || now < sl.fullAt {
			sh.cursor++
			continue
		}
		// Move the last bucket into this place; the cursor stays, to check it.
		last := sh.order[len(sh.order)-1]
		sh.order[sh.cursor] = last
		last.b.idx = sh.cursor
		sh.order[len(sh.order)-1] = slot{}
		sh.order = sh.order[:len(sh.order)-1]
		delete(sh.buckets, sl.b.key)
		dropped++
	}
	// Go maps keep their size after deletes: rebuild a shard that has shrunk to
	// a quarter of its peak, so that a burst of one-off keys gives its memory back.
	if dropped > 0 && sh.peak >= 64 && len(sh.order) <= sh.peak/4 {
		m := make(map[string]*bucket, len(sh.order))
		for _, sl := range sh.order {
			m[sl.b.key] = sl.b
		}
		sh.buckets = m
		sh.order = append(make([]slot, 0, len(sh.order)), sh.order...)
		sh.peak = len(sh.order)
	}
	return dropped
}
