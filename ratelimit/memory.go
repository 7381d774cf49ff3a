package ratelimit

import (
	"context"
	"hash/maphash"
	"maps"
	"sync"
	"time"

	"github.com/gatehouse-go/gatehouse/ratelimit/internal/gcra"
)

// MemoryConfig configures a [MemoryStore]. The zero value is ready to use.
type MemoryConfig struct {
	// Shards is the number of independently locked parts the keys are spread
	// over by hash (zero: 64). More shards, less contention between keys.
	Shards int
	// SweepPerTake is how many buckets each Take checks for reclamation in
	// its own shard, and as many again, on average, in other shards: every
	// eighth Take of a shard checks eight times SweepPerTake buckets of one
	// other shard, taken in turn (zero: 2). At 2 or more, every
	// shard's idle buckets are all reclaimed within a few passes over it,
	// however few keys stay active and wherever they are.
	SweepPerTake int
}

// MemoryStore is a [Store] in this process's memory: each key's bucket, and
// each owner's, is kept in shards locked by the name's hash.
//
// State exists only for keys and owners that were given to Take. A bucket that has refilled
// completely is the same as a new one, so it is reclaimed: each Take checks a few
// buckets of its shard, and every eighth Take of a shard as many as eight Takes
// would of one other shard, in turn, and drops the full ones,
// and a shard whose buckets have shrunk to a quarter of its peak is rebuilt so that the
// memory goes back too. A bucket taken from only once (a key seen once) goes as
// soon as it is full; one taken from again (a key that returns, or one whose
// bucket the shard dropped lately and that comes back) stays, full, for as long
// as one request takes to refill in its slowest window, so that a key that
// comes back at about its rate finds its bucket instead of making it anew, and
// one a little slower makes it anew about once, not at every request. No goroutine
// runs; [MemoryStore.Sweep] reclaims everything full at once.
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
	mu     sync.Mutex
	now    int64                       // the latest time this shard has seen, Unix milliseconds
	names  nameIndex                   // the keys' and the owners' buckets
	more   map[*bucket][]gcra.MoreDebt // the further windows of the buckets that have any
	order  []slot                      // the sweep's order; bucket.idx is its place here
	cursor int
	peak   int
	other  int // the next other shard a Take of this one sweeps
	takes  int // Takes of this shard, modulo otherEvery
	// dropped holds a fingerprint of each name whose bucket the shard dropped
	// lately, at a place given by the name's hash (see fingerprint), in a
	// table of at least twice the shard's peak number of buckets; a later
	// drop of a name of the same place takes it over. A bucket made for a
	// name found there is taken as one taken from again (bucket.again): a
	// key that comes back a little slower than its bucket refills loses its
	// bucket once (unless another name dropped since took its place), not
	// at every request. A name never dropped matches a fingerprint by chance
	// once in 32,768 at the most, so a key seen once still goes as soon as
	// its bucket is full; the table costs at most 8 bytes a bucket of the
	// shard's peak and goes when the shard is rebuilt.
	dropped []uint16
	seed    maphash.Seed // the store's, to hash a dropped bucket's name again
}

// otherEvery is how many Takes of a shard go by between two sweeps of another
// shard, each of which checks otherEvery times SweepPerTake buckets: as many
// checks as a sweep of SweepPerTake at every Take, for one lock of the other
// shard taken instead of otherEvery. Taking another shard's lock moves its
// cache line from the core that took it last: a lock at every Take cost the
// limiter 12% of its time a request with one key in parallel, 7% with
// 100,000 keys serially and 11% in parallel (BenchmarkMiddleware, wall
// time, p <= 0.015 by benchstat over 15 interleaved runs).
const otherEvery = 8

// sweepOther returns the other shard this Take of sh sweeps, and false if it
// sweeps none.
func (sh *shard) sweepOther(shards int) (int, bool) {
	sh.takes++
	if sh.takes < otherEvery {
		return 0, false
	}
	sh.takes = 0
	other := sh.other % shards
	sh.other = other + 1
	return other, true
}

// slot is a bucket's place in its shard's sweep order. due is kept here, not
// in the bucket, so that the sweep reads adjacent memory instead of chasing a
// pointer to each bucket it checks.
type slot struct {
	// due is the time, Unix milliseconds, from which Take's sweep drops the
	// bucket: when every window is full, for a bucket taken from once; one
	// request's refill in its slowest window later (gcra.Bucket.Step) for
	// one taken from again.
	due int64
	b   *bucket
}

// bucket is one key's or one owner's state: a gcra.Bucket laid out to take no
// more memory than the pair's (80 bytes) when it has no further windows,
// which are kept in its shard's more map.
type bucket struct {
	at          int64
	minute, day gcra.Debt
	key         string // the key's or the owner's name
	idx         int32
	owner       bool
	more        bool // its further windows are in the shard's more map
	// again: taken from again after the Take that made it, or made for a
	// name the shard dropped lately (shard.dropped): its key returns.
	again bool
}

// state returns b's gcra.Bucket. Its More is b's own: gcra's Take and Peek
// never write to it.
func (sh *shard) state(b *bucket) gcra.Bucket {
	s := gcra.Bucket{At: b.at, Minute: b.minute, Day: b.day}
	if b.more {
		s.More = sh.more[b]
	}
	return s
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
		s.shards[i].other = i + 1
		s.shards[i].seed = s.seed
	}
	return s
}

// Take implements [Store]. A Charge with an owner locks the shards of the key
// and of the owner, in index order (one lock when they are the same), so that
// the two buckets are decided as one: both take the cost, or neither changes.
func (s *MemoryStore) Take(_ context.Context, c Charge, now time.Time) (Decision, error) {
	if err := c.Validate(); err != nil {
		return Decision{}, err
	}
	if c.owned() {
		return s.takeOwned(&c, now), nil
	}
	i, h := s.shardOf(c.Key)
	sh := &s.shards[i]
	sh.mu.Lock()
	ms := millis(now)
	shardNow := sh.tick(ms)
	b := sh.get(c.Key, h, false, shardNow)
	next := sh.state(b)
	allowed := gcra.Take(&next, &c.Limits, c.Cost, ms)
	if allowed {
		sh.keep(b, &next)
	}
	sh.reclaim(shardNow, s.sweep, false, b, nil)
	other, sweep := sh.sweepOther(len(s.shards))
	sh.mu.Unlock()
	if sweep && other != i {
		s.shards[other].sweepIfFree(shardNow, s.sweep*otherEvery)
	}
	var d Decision
	gcra.Decide(&d, &next, allowed, c.Cost, nil)
	return d, nil
}

// takeOwned is Take of a Charge with an owner's bucket.
func (s *MemoryStore) takeOwned(c *Charge, now time.Time) Decision {
	i, kh := s.shardOf(c.Key)
	j, oh := s.shardOf(c.Owner)
	s.lockPair(i, j)
	ksh, osh := &s.shards[i], &s.shards[j]
	ms := millis(now)
	kNow, oNow := ksh.tick(ms), osh.tick(ms)
	kb := ksh.get(c.Key, kh, false, kNow)
	ob := osh.get(c.Owner, oh, true, oNow)
	ownerLimits := Limits{More: c.OwnerLimits}
	kn, on := ksh.state(kb), osh.state(ob)
	kok := gcra.Take(&kn, &c.Limits, c.Cost, ms)
	ook := gcra.Take(&on, &ownerLimits, c.Cost, ms)
	allowed := kok && ook
	switch {
	case allowed:
		ksh.keep(kb, &kn)
		osh.keep(ob, &on)
	case kok: // refused by the owner: the key's bucket as it stands, untouched
		kn = ksh.state(kb)
		gcra.Peek(&kn, &c.Limits, ms)
	case ook:
		on = osh.state(ob)
		gcra.Peek(&on, &ownerLimits, ms)
	}
	ksh.reclaim(kNow, s.sweep, false, kb, ob)
	if j != i {
		osh.reclaim(oNow, s.sweep, false, kb, ob)
	}
	other, sweep := ksh.sweepOther(len(s.shards))
	s.unlockPair(i, j)
	if sweep && other != i && other != j {
		s.shards[other].sweepIfFree(kNow, s.sweep*otherEvery)
	}
	var d Decision
	gcra.Decide(&d, &kn, allowed, c.Cost, &on)
	return d
}

// shardOf returns the index of the shard of a key's or an owner's name, and
// the name's hash, which its shard's nameIndex and dropped table use too.
func (s *MemoryStore) shardOf(name string) (int, uint64) {
	h := maphash.String(s.seed, name)
	return int(h % uint64(len(s.shards))), h
}

// lockPair locks shards i and j, in index order so that two Takes never wait
// on each other, once when they are the same.
func (s *MemoryStore) lockPair(i, j int) {
	lo, hi := min(i, j), max(i, j)
	s.shards[lo].mu.Lock()
	if hi != lo {
		s.shards[hi].mu.Lock()
	}
}

// unlockPair undoes lockPair(i, j).
func (s *MemoryStore) unlockPair(i, j int) {
	if i != j {
		s.shards[j].mu.Unlock()
	}
	s.shards[i].mu.Unlock()
}

// get returns the bucket of a key's or (with owner) an owner's name, marked
// as taken from again, or a new one if it has none: at the shard's time, as
// had it been reclaimed at a later time than the request's, a new bucket at
// that time would count the refill between twice.
func (sh *shard) get(name string, hash uint64, owner bool, shardNow int64) *bucket {
	b := sh.names.find(hash, name, owner)
	if b != nil {
		b.again = true
	} else {
		b = &bucket{at: shardNow, key: name, owner: owner, idx: int32(len(sh.order)), again: sh.wasDropped(hash, owner)}
		sh.order = append(sh.order, slot{b: b})
		sh.names.add(hash, b)
		sh.peak = max(sh.peak, len(sh.order))
	}
	return b
}

// keep stores next, an allowed Take's, as b's state.
func (sh *shard) keep(b *bucket, next *gcra.Bucket) {
	b.at, b.minute, b.day = next.At, next.Minute, next.Day
	switch {
	case next.More != nil:
		if sh.more == nil {
			sh.more = make(map[*bucket][]gcra.MoreDebt)
		}
		sh.more[b], b.more = next.More, true
	case b.more:
		delete(sh.more, b)
		b.more = false
	}
	due := next.At + next.FullIn()
	if b.again {
		due += next.Step()
	}
	sh.order[b.idx].due = due
}

// full reports whether every window of b is full at now.
func (sh *shard) full(b *bucket, now int64) bool {
	s := sh.state(b)
	return now >= b.at+s.FullIn()
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
		sh.reclaim(sh.tick(now), n, false, nil, nil)
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
		n += sh.reclaim(sh.tick(millis(now)), len(sh.order), true, nil, nil)
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

// reclaim checks up to n buckets from the cursor on, dropping those due at
// now (with all, every one full at now) except keep and keep2, just taken
// from, and returns how many it dropped.
func (sh *shard) reclaim(now int64, n int, all bool, keep, keep2 *bucket) int {
	dropped := 0
	for ; n > 0 && len(sh.order) > 0; n-- {
		if sh.cursor >= len(sh.order) {
			sh.cursor = 0
		}
		sl := sh.order[sh.cursor]
		if sl.b == keep || sl.b == keep2 || now < sl.due && !(all && sh.full(sl.b, now)) {
			sh.cursor++
			continue
		}
		// Move the last bucket into this place; the cursor stays, to check it.
		last := sh.order[len(sh.order)-1]
		sh.order[sh.cursor] = last
		last.b.idx = int32(sh.cursor)
		sh.order[len(sh.order)-1] = slot{}
		sh.order = sh.order[:len(sh.order)-1]
		h := maphash.String(sh.seed, sl.b.key)
		sh.names.remove(h, sl.b)
		if sl.b.more {
			delete(sh.more, sl.b)
		}
		sh.remember(h, sl.b.owner)
		dropped++
	}
	// The index, the order and Go maps keep their size after deletes: rebuild
	// a shard that has shrunk to a quarter of its peak, so that a burst of
	// one-off keys gives its memory back.
	if dropped > 0 && sh.peak >= 64 && len(sh.order) <= sh.peak/4 {
		sh.names.fit()
		if sh.more != nil {
			more := make(map[*bucket][]gcra.MoreDebt, len(sh.more))
			maps.Copy(more, sh.more)
			sh.more = more
		}
		sh.order = append(make([]slot, 0, len(sh.order)), sh.order...)
		sh.peak = len(sh.order)
		sh.dropped = nil
	}
	return dropped
}

// fingerprint returns the place in a table of n places (a power of two) and
// the fingerprint, never 0 (an empty place), in sh.dropped of a key's or
// (with owner) an owner's name whose hash is h.
func fingerprint(h uint64, owner bool, n int) (int, uint16) {
	fp := uint16(h>>48) | 1
	if owner {
		fp ^= 2
	}
	// The shard's own names share the low bits the shard index was taken
	// from: the place comes from the middle ones.
	return int(h>>16) & (n - 1), fp
}

// remember records in sh.dropped that the bucket of a key's or (with owner)
// an owner's name whose hash is h is dropped, first making the table anew,
// empty, with the smallest power of two of places not below twice the
// shard's peak, if it has fewer.
func (sh *shard) remember(h uint64, owner bool) {
	if len(sh.dropped) < 2*sh.peak {
		sh.dropped = make([]uint16, halfFull(sh.peak))
	}
	i, fp := fingerprint(h, owner, len(sh.dropped))
	sh.dropped[i] = fp
}

// wasDropped reports whether sh.dropped has the fingerprint of a key's or
// (with owner) an owner's name whose hash is h.
func (sh *shard) wasDropped(h uint64, owner bool) bool {
	if len(sh.dropped) == 0 {
		return false
	}
	i, fp := fingerprint(h, owner, len(sh.dropped))
	return sh.dropped[i] == fp
}
