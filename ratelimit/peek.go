package ratelimit

import (
	"context"
	"hash/maphash"
	"time"
)

// Peeker is a [Store] that can tell where a key's windows stand without
// spending a token: an admin page reads it while the key's traffic goes on.
// [MemoryStore] and redisstore's Store implement it.
type Peeker interface {
	// Peek returns the decision a request of key under limits at now would see
	// if it took nothing: Allowed says a request would pass, and each Window's
	// Remaining is what is left now (not after a request). A key never seen
	// has both windows full. Peek changes nothing.
	Peek(ctx context.Context, key string, limits Limits, now time.Time) (Decision, error)
}

// PeekDecision is what a bucket as [Bucket.Peek] returned it tells a reader:
// Remaining is what is left now, Allowed whether one more request passes
// and, if not, RetryAfter when one would.
func (b Bucket) PeekDecision() Decision {
	_, allowed := b.Take(Limits{PerMinute: int(b.Minute.Limit), PerDay: int(b.Day.Limit)}, b.At)
	return b.Decision(allowed)
}

// Peek implements [Peeker]: it reads key's bucket under its shard's lock and
// changes nothing, not even the shard's clock or sweep.
func (s *MemoryStore) Peek(_ context.Context, key string, limits Limits, now time.Time) (Decision, error) {
	if err := limits.Validate(); err != nil {
		return Decision{}, err
	}
	sh := &s.shards[int(maphash.String(s.seed, key)%uint64(len(s.shards)))]
	sh.mu.Lock()
	var b Bucket
	if bk := sh.buckets[key]; bk != nil {
		b = bk.Bucket
	}
	at := max(sh.now, millis(now))
	sh.mu.Unlock()
	return b.Peek(limits, at).PeekDecision(), nil
}
