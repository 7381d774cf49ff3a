// This file holds the Cache: a Store in front of a slow Store, remembering
// found keys for a TTL and unknown hashes for a shorter one, within a bound.

package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/flight"
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
	// LookupTimeout bounds each lookup of the underlying store (zero or
	// negative: 5s). A lookup is shared by every caller of its hash and
	// belongs to none of them, so that it is bounded by this rather than by
	// a caller's context; past it, the callers waiting get an error wrapping
	// [ErrStoreUnavailable]. The underlying store's Lookup must return once
	// its context ends.
	LookupTimeout time.Duration
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
// for that one call and share its result. The call belongs to none of them:
// it runs under a context that carries the first caller's values but not its
// cancellation, bounded by LookupTimeout, and each caller stops waiting when
// its own context ends (then with its context's error), so that one caller
// going away fails nobody else; the result is still cached for the next. A
// panic of the underlying store is raised again in each caller waiting.
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
	store   Store
	ttl     time.Duration
	negTTL  time.Duration
	maxNeg  int
	timeout time.Duration // of a lookup of store
	now     func() time.Time
	mu      sync.Mutex
	found   map[[32]byte]cachedKey
	unknown map[[32]byte]time.Time // hash → until
	flights flight.Group[[32]byte, *Key]
	observe func(Event)
}

type cachedKey struct {
	key   *Key
	until time.Time
}

// errNoCacheStore refuses NewCache without a store to cache.
var errNoCacheStore = errors.New("auth: NewCache: store is nil: no key could ever be found")

// NewCache returns a Cache in front of store, configured by cfg. It panics
// if store is nil, as [Middleware] does with a Config without a Store.
func NewCache(store Store, cfg CacheConfig) *Cache {
	if store == nil {
		panic(errNoCacheStore)
	}
	c := &Cache{
		store:   store,
		ttl:     cfg.TTL,
		negTTL:  cfg.NegativeTTL,
		maxNeg:  cfg.MaxNegative,
		timeout: cfg.LookupTimeout,
		now:     cfg.Now,
		observe: cfg.Observe,
		found:   make(map[[32]byte]cachedKey),
		unknown: make(map[[32]byte]time.Time),
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
	if c.timeout <= 0 {
		c.timeout = 5 * time.Second
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
	c.mu.Unlock()
	observe(c.observe, CacheMiss)
	return c.flights.Do(ctx, hash, c.timeout, func(ctx context.Context) (*Key, error) {
		return c.fetch(ctx, hash)
	})
}

// fetch asks the underlying store for hash, under the shared lookup's context
// ctx, and keeps the answer.
func (c *Cache) fetch(ctx context.Context, hash [32]byte) (*Key, error) {
	k, err := c.store.Lookup(ctx, hash)
	if err != nil && !errors.Is(err, ErrKeyNotFound) && ctx.Err() != nil {
		err = fmt.Errorf("%w: no answer within %v: %w", ErrStoreUnavailable, c.timeout, err)
	}
	now := c.now()
	c.mu.Lock()
	switch {
	case err == nil && k != nil && c.ttl > 0:
		c.found[hash] = cachedKey{k, now.Add(c.ttl)}
	case errors.Is(err, ErrKeyNotFound) && c.negTTL > 0:
		if len(c.unknown) >= c.maxNeg {
			c.evictUnknown()
		}
		c.unknown[hash] = now.Add(c.negTTL)
	}
	c.mu.Unlock()
	return k, err
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
