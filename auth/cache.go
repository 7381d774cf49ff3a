// This file holds the Cache: a Store in front of a slow Store, remembering
// found keys for a TTL and unknown hashes for a shorter one, within a bound.

package auth

import (
	"context"
	"errors"
	"sync"
	"time"
)

// CacheConfig configures [NewCache]. Its zero value is sane.
type CacheConfig struct {
	// TTL is how long a found key is served from the cache (zero: 30s;
	// negative: found keys are not cached).
	TTL time.Duration
	// NegativeTTL is how long an unknown hash is remembered as unknown (zero:
	// 5s; negative: unknown hashes are not cached).
	NegativeTTL time.Duration
	// MaxNegative bounds how many unknown hashes are remembered (zero: 10,000).
	// Hashes of unknown keys are chosen by whoever sends requests, so without
	// a bound they would grow memory without limit; when the bound is reached
	// an arbitrary remembered hash is forgotten.
	MaxNegative int
	// Now is the cache's clock (nil: time.Now).
	Now func() time.Time
	// Observe, if set, is told whether each Lookup was a hit, a negative hit
	// or a miss (see [Event]); it must be quick and safe for concurrent use.
	// A Lookup that waits for another's call to the store counts as a miss.
	// Nil reports nothing.
	Observe func(Event)
}

// Cache is a [Store] that remembers the answers of a slow Store.
//
// A found key is kept for TTL and an unknown hash for NegativeTTL; errors
// other than [ErrKeyNotFound] are never cached. At most one Lookup per hash is
// in flight to the underlying store: concurrent misses for the same hash wait
// for that one call and share its result (a cancellation of the caller that
// made it included; the next Lookup tries again).
//
// Because records are cached, a key disabled, deleted or added in the
// underlying store takes effect after at most TTL (NegativeTTL for an added
// key). Expiry is not delayed: the key middleware checks ExpiresAt of the
// record on every request.
//
// Found keys are not bounded by count: there are only as many as the store
// holds keys, and each is dropped when read after its TTL. Cache is safe for
// simultaneous use by multiple goroutines.
type Cache struct {
	store    Store
	ttl      time.Duration
	negTTL   time.Duration
	maxNeg   int
	now      func() time.Time
	mu       sync.Mutex
	found    map[[32]byte]cachedKey
	unknown  map[[32]byte]time.Time // hash → until
	inflight map[[32]byte]*lookupCall
	observe  func(Event)
}

type cachedKey struct {
	key   *Key
	until time.Time
}

// lookupCall is one Lookup in flight to the underlying store.
type lookupCall struct {
	done    chan struct{}
	key     *Key
	err     error
	waiters int // callers waiting besides the one that made the call
}

// NewCache returns a Cache in front of store, configured by cfg. store must
// not be nil.
func NewCache(store Store, cfg CacheConfig) *Cache {
	c := &Cache{
		store:    store,
		ttl:      cfg.TTL,
		negTTL:   cfg.NegativeTTL,
		maxNeg:   cfg.MaxNegative,
		now:      cfg.Now,
		observe:  cfg.Observe,
		found:    make(map[[32]byte]cachedKey),
		unknown:  make(map[[32]byte]time.Time),
		inflight: make(map[[32]byte]*lookupCall),
	}
	if c.ttl == 0 {
		c.ttl = 30 * time.Second
	}
	if c.negTTL == 0 {
		c.negTTL = 5 * time.Second
	}
	if c.maxNeg <= 0 {
		c.maxNeg = 10_000
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Lookup implements [Store].
func (c *Cache) Lookup(ctx context.Context, hash [32]byte) (*Key, error) {
	now := c.now()
	c.mu.Lock()
	if e, ok := c.found[hash]; ok {
		if now.Before(e.until) {
			c.mu.Unlock()
			observe(c.observe, CacheHit)
			return e.key, nil
		}
		delete(c.found, hash)
	}
	if until, ok := c.unknown[hash]; ok {
		if now.Before(until) {
			c.mu.Unlock()
			observe(c.observe, CacheNegativeHit)
			return nil, ErrKeyNotFound
		}
		delete(c.unknown, hash)
	}
	if call, ok := c.inflight[hash]; ok {
		call.waiters++
		c.mu.Unlock()
		observe(c.observe, CacheMiss)
		select {
		case <-call.done:
			return call.key, call.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	// The error stays if the store panics, so that waiters do not take a nil
	// key for a found one.
	call := &lookupCall{done: make(chan struct{}), err: errLookupPanicked}
	c.inflight[hash] = call
	c.mu.Unlock()
	observe(c.observe, CacheMiss)
	defer c.finish(hash, call)
	call.key, call.err = c.store.Lookup(ctx, hash)
	return call.key, call.err
}

var errLookupPanicked = errors.New("auth: store lookup panicked")

// finish records the result of call and wakes its waiters.
func (c *Cache) finish(hash [32]byte, call *lookupCall) {
	now := c.now()
	c.mu.Lock()
	delete(c.inflight, hash)
	switch {
	case call.err == nil && c.ttl > 0:
		c.found[hash] = cachedKey{call.key, now.Add(c.ttl)}
	case errors.Is(call.err, ErrKeyNotFound) && c.negTTL > 0:
		if len(c.unknown) >= c.maxNeg {
			c.evictUnknown()
		}
		c.unknown[hash] = now.Add(c.negTTL)
	}
	c.mu.Unlock()
	close(call.done)
}

// evictUnknown forgets one arbitrary unknown hash to make room for another.
// It does not sweep for expired entries: under a flood of invented keys the
// map is always full and a sweep would cost O(MaxNegative) per request. Expired
// entries are dropped when read. c.mu must be held.
func (c *Cache) evictUnknown() {
	for h := range c.unknown {
		delete(c.unknown, h)
		return
	}
}
