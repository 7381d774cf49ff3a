package ratelimit

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// MemoryConfig configures a [MemoryStore]. The zero value is ready to use.
type MemoryConfig struct {
	// Shards is the number of independently locked parts the keys are spread
	// over by hash (zero: 64). More shards, less contention between keys.
	Shards int
	// SweepPerTake is how many buckets of its shard each Take checks for
	// reclamation (zero: 2). At 2 or more, a shard's idle buckets are all
	// reclaimed within a few passes over it, however few keys stay active.
	SweepPerTake int
}

// MemoryStore is a [Store] in this process's memory: each key's two windows are
// [rate.Limiter]s, kept in shards locked by key hash.
//
// State exists only for keys that were given to Take. A bucket that has refilled
// completely is the same as a new one, so it is reclaimed: each Take checks a few
// buckets of its shard in turn and drops the full ones, and a shard whose map has
// shrunk to a quarter of its peak is rebuilt so that the memory goes back too.
// No goroutine runs; [MemoryStore.Sweep] reclaims everything idle at once.
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
	buckets map[string]*bucket
	order   []slot // the sweep's order; bucket.idx is its place here
	cursor  int
	peak    int
	_       [40]byte // keep neighbouring shards' locks off one cache line
}

// slot is a bucket's place in its shard's sweep order. fullAt is kept here, not
// in the bucket, so that the sweep reads adjacent memory instead of chasing a
// pointer to each bucket it checks.
type slot struct {
	fullAt int64 // unix nanoseconds from which both windows are full
	b      *bucket
}

// bucket is one key's two windows.
type bucket struct {
	minute, day rate.Limiter
	limits      Limits
	key         string
	idx         int
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
	}
	return s
}

// Take implements [Store].
func (s *MemoryStore) Take(_ context.Context, key string, limits Limits, now time.Time) (Decision, error) {
	if limits.PerMinute <= 0 || limits.PerDay <= 0 {
		return Decision{}, ErrInvalidLimits
	}
	sh := &s.shards[maphash.String(s.seed, key)%uint64(len(s.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b := sh.buckets[key]
	if b == nil {
		b = newBucket(key, limits, now)
		b.idx = len(sh.order)
		sh.order = append(sh.order, slot{b: b})
		sh.buckets[key] = b
		sh.peak = max(sh.peak, len(sh.order))
	} else if b.limits != limits {
		b.setLimits(limits, now)
	}
	d := b.take(now)
	ns := now.UnixNano()
	sh.order[b.idx].fullAt = ns + int64(max(d.Minute.Reset, d.Day.Reset))
	sh.reclaim(ns, s.sweep, b)
	return d, nil
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
		n += sh.reclaim(now.UnixNano(), len(sh.order), nil)
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

// fill is longer than either window takes to refill from empty.
const fill = 25 * time.Hour

func newBucket(key string, limits Limits, now time.Time) *bucket {
	b := &bucket{key: key, limits: limits}
	// A zero Limiter is empty; setting its rate and size as of a time longer
	// ago than a refill makes it full at now, without a second allocation.
	past := now.Add(-fill)
	b.minute.SetLimitAt(past, perMinute(limits.PerMinute))
	b.minute.SetBurstAt(past, limits.PerMinute)
	b.day.SetLimitAt(past, perDay(limits.PerDay))
	b.day.SetBurstAt(past, limits.PerDay)
	return b
}

func perMinute(n int) rate.Limit { return rate.Limit(float64(n) / 60) }
func perDay(n int) rate.Limit    { return rate.Limit(float64(n) / 86400) }

// setLimits gives b new limits from now on. A window that is full stays full
// at its new size, as a new key's would be (and as a shared store that drops
// full windows has it); otherwise the tokens it holds stay, up to the new size,
// and refill at the new rate.
func (b *bucket) setLimits(l Limits, now time.Time) {
	if l.PerMinute != b.limits.PerMinute {
		resize(&b.minute, b.limits.PerMinute, l.PerMinute, perMinute(l.PerMinute), now)
	}
	if l.PerDay != b.limits.PerDay {
		resize(&b.day, b.limits.PerDay, l.PerDay, perDay(l.PerDay), now)
	}
	b.limits = l
}

func resize(l *rate.Limiter, oldSize, newSize int, r rate.Limit, now time.Time) {
	at := now
	if l.TokensAt(now) >= float64(oldSize) {
		// Full: start again from an empty limiter set up a refill ago, as
		// newBucket does. The shard's lock keeps everyone else out.
		*l = rate.Limiter{}
		at = now.Add(-fill)
	}
	l.SetLimitAt(at, r)
	l.SetBurstAt(at, newSize)
}

// take decides one request at now. The shard's lock makes the check of both
// windows and the take from both one step.
func (b *bucket) take(now time.Time) Decision {
	m, d := b.minute.TokensAt(now), b.day.TokensAt(now)
	dec := Decision{Allowed: m >= 1 && d >= 1}
	if dec.Allowed {
		b.minute.AllowN(now, 1)
		b.day.AllowN(now, 1)
		m--
		d--
	} else {
		dec.RetryAfter = max(untilOne(&b.minute, perMinute(b.limits.PerMinute), m, now),
			untilOne(&b.day, perDay(b.limits.PerDay), d, now))
	}
	dec.Minute = window(perMinute(b.limits.PerMinute), m, b.limits.PerMinute)
	dec.Day = window(perDay(b.limits.PerDay), d, b.limits.PerDay)
	return dec
}

func window(r rate.Limit, tokens float64, size int) Window {
	w := Window{Limit: size, Remaining: int(math.Floor(tokens))}
	if w.Remaining < 0 {
		w.Remaining = 0
	}
	if missing := float64(size) - tokens; missing > 0 {
		w.Reset = time.Duration(math.Ceil(missing / float64(r) * float64(time.Second)))
	}
	return w
}

// untilOne is the time from now until l, holding tokens now, holds one token,
// as the limiter itself will count it: the computed duration is checked with
// l.TokensAt and lengthened past any rounding.
func untilOne(l *rate.Limiter, r rate.Limit, tokens float64, now time.Time) time.Duration {
	if tokens >= 1 {
		return 0
	}
	d := time.Duration(math.Ceil((1 - tokens) / float64(r) * float64(time.Second)))
	// The float division can land a hair past a whole millisecond (20.000000001 s
	// for 20 s), which would cost a caller a whole second of Retry-After.
	if ms := d.Truncate(time.Millisecond); ms < d && l.TokensAt(now.Add(ms)) >= 1 {
		return ms
	}
	for step := time.Nanosecond; l.TokensAt(now.Add(d)) < 1; step *= 2 {
		d += step
	}
	return d
}
