package ratelimit

import (
	"context"
	"time"

	"github.com/gatehouse-go/gatehouse/ratelimit/internal/gcra"
)

// Peeker is a [Store] that can tell where a key's windows, and its owner's,
// stand without spending a token: an admin page reads it while the key's
// traffic goes on. [MemoryStore] and redisstore's Store implement it.
type Peeker interface {
	// Peek returns the decision the request c at now would see if it took
	// nothing: Allowed says a request of c's cost would pass, and each
	// Window's Remaining is what is left now (not after a request). A bucket
	// never seen has every window full. Peek changes nothing.
	Peek(ctx context.Context, c Charge, now time.Time) (Decision, error)
}

// Peek implements [Peeker]: it reads the key's bucket (and the owner's) under
// its shard's lock (both shards', in index order) and changes nothing, not
// even a shard's clock or sweep.
func (s *MemoryStore) Peek(_ context.Context, c Charge, now time.Time) (Decision, error) {
	if err := c.Validate(); err != nil {
		return Decision{}, err
	}
	i, kh := s.shardOf(c.Key)
	j, oh := -1, uint64(0)
	if c.owned() {
		j, oh = s.shardOf(c.Owner)
		s.lockPair(i, j)
	} else {
		s.shards[i].mu.Lock()
	}
	var kb, ob gcra.Bucket
	if b := s.shards[i].names.find(kh, c.Key, false); b != nil {
		kb = s.shards[i].state(b)
	}
	at := max(s.shards[i].now, millis(now))
	if j >= 0 {
		if b := s.shards[j].names.find(oh, c.Owner, true); b != nil {
			ob = s.shards[j].state(b)
		}
		at = max(at, s.shards[j].now)
		s.unlockPair(i, j)
	} else {
		s.shards[i].mu.Unlock()
	}
	var d Decision
	gcra.Peek(&kb, &c.Limits, at)
	if j < 0 {
		gcra.PeekDecide(&d, &kb, c.Cost, nil)
		return d, nil
	}
	ownerLimits := Limits{More: c.OwnerLimits}
	gcra.Peek(&ob, &ownerLimits, at)
	gcra.PeekDecide(&d, &kb, c.Cost, &ob)
	return d, nil
}
