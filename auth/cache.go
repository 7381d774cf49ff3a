// This file holds the Cache: a Store in front of a slow Store, remembering
// found keys for a TTL and unknown hashes for a shorter one, within a bound;
// serving found keys a while longer when the store fails; forgetting what its
// owner says has changed.

package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
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
	// StaleWindow is how long past its TTL a found key is still answered
	// when the underlying store fails, instead of the failure (zero or
	// negative: never). A failure is any error but [ErrKeyNotFound], no
	// answer within LookupTimeout included. It keeps the keys in use working
	// through an outage of the store no longer than StaleWindow; a key
	// disabled meanwhile is refused once the store answers again.
	StaleWindow time.Duration
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
	// A Lookup that waits for another's call to the store counts as a miss,
	// and so does one answered stale (see [Cache.Stale]). Nil reports
	// nothing.
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
// key), or at once when the owner of the store, told of the change, calls
// [Cache.Forget] or [Cache.ForgetAll]. Expiry is not delayed: the key
// middleware checks ExpiresAt of the record on every request. When the store
// fails, a found key is answered up to StaleWindow past its TTL (see
// [CacheConfig.StaleWindow]); the Cache does not otherwise keep track of the
// store's health: a store that should be left alone after a failure answers
// its failure at once, without asking its database, as sqlstore's does.
//
// Found keys are not bounded by count: there are only as many as the store
// holds keys, and each is dropped when read after its TTL (and StaleWindow).
// Cache is safe for simultaneous use by multiple goroutines.
type Cache struct {
	store   Store
	ttl     time.Duration
	negTTL  time.Duration
	maxNeg  int
	stale   time.Duration // StaleWindow; 0: none
	timeout time.Duration // of a lookup of store
	now     func() time.Time
	mu      sync.Mutex
	found   map[[32]byte]cachedKey
	unknown map[[32]byte]time.Time // hash → until
	gen     uint64                 // bumped by every Forget and ForgetAll
	flights flight.Group[[32]byte, *Key]
	observe func(Event)
	staled  atomic.Int64 // answers served stale
}

type cachedKey struct {
	key   *Key
	until time.Time // of its TTL; it may be answered stale for StaleWindow more
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
		stale:   max(cfg.StaleWindow, 0),
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
		if !now.Before(e.until.Add(c.stale)) {
			delete(c.found, hash)
		}
	}
	if until, ok := c.unknown[hash]; ok {
		if now.Before(until) {
			c.mu.Unlock()
			observe(c.observe, CacheNegativeHit)
			return nil, ErrKeyNotFound
		}
		delete(c.unknown, hash)
	}
	gen := c.gen
	c.mu.Unlock()
	observe(c.observe, CacheMiss)
	return c.flights.Do(ctx, hash, c.timeout, func(ctx context.Context) (*Key, error) {
		return c.fetch(ctx, hash, gen)
	})
}

// fetch asks the underlying store for hash, under the shared lookup's context
// ctx, and keeps the answer, unless a Forget since generation gen may
// concern what it read; if the store fails, it answers the key stale if it
// may (see [CacheConfig.StaleWindow]).
func (c *Cache) fetch(ctx context.Context, hash [32]byte, gen uint64) (*Key, error) {
	k, err := c.store.Lookup(ctx, hash)
	if err != nil && !errors.Is(err, ErrKeyNotFound) && !errors.Is(err, ErrStoreUnavailable) && ctx.Err() != nil {
		err = fmt.Errorf("%w: no answer within %v: %w", ErrStoreUnavailable, c.timeout, err)
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	fresh := c.gen == gen
	switch {
	case err == nil && k != nil:
		if fresh && c.ttl > 0 {
			c.found[hash] = cachedKey{k, now.Add(c.ttl)}
		}
	case errors.Is(err, ErrKeyNotFound):
		delete(c.found, hash)
		if fresh && c.negTTL > 0 {
			if len(c.unknown) >= c.maxNeg {
				c.evictUnknown()
			}
			c.unknown[hash] = now.Add(c.negTTL)
		}
	case err != nil:
		if e, ok := c.found[hash]; ok && now.Before(e.until.Add(c.stale)) {
			c.staled.Add(1)
			return e.key, nil
		}
	}
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

// Forget drops what the Cache remembers of each hash, found or unknown, for
// an owner that learns the store changed them (a key disabled, deleted or
// created): the next Lookup of each asks the store. A lookup of the store
// under way when Forget is called, of any hash, answers its callers but is
// not kept, since it may have read the store before the change.
func (c *Cache) Forget(hashes ...[32]byte) {
	c.mu.Lock()
	c.gen++
	for _, h := range hashes {
		delete(c.found, h)
		delete(c.unknown, h)
	}
	c.mu.Unlock()
}

// ForgetAll drops everything the Cache remembers, for an owner that cannot
// tell what changed in the store; a lookup under way is not kept, as with
// [Cache.Forget].
func (c *Cache) ForgetAll() {
	c.mu.Lock()
	c.gen++
	clear(c.found)
	clear(c.unknown)
	c.mu.Unlock()
}

// Stale returns how many Lookups so far were answered with a key past its
// TTL because the store failed (see [CacheConfig.StaleWindow]).
func (c *Cache) Stale() int64 { return c.staled.Load() }

// Waiting returns how many callers have asked for the lookup of hash now in
// flight to the store, the one that started it included; 0 if none is.
// Tests use it to know that concurrent callers share one lookup.
func (c *Cache) Waiting(hash [32]byte) int { return c.flights.Callers(hash) }
