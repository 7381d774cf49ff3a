package auth

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"
)

// Store finds key records by the SHA-256 hash of the plaintext key.
//
// Lookup returns [ErrKeyNotFound] (possibly wrapped) for a hash it does not
// hold, [ErrStoreUnavailable] (possibly wrapped) when its database cannot be
// reached, and wraps any other failure with %w; the key middleware answers
// the first with 401, the second with 503 and anything else with 500. The
// returned Key is read-only.
// Implementations must be safe for simultaneous use.
type Store interface {
	Lookup(ctx context.Context, hash [32]byte) (*Key, error)
}

// MemoryStore is a [Store] held in memory that an administrator can change
// while it serves: a change is seen by the next Lookup, so a key disabled now
// is refused on the next request. The zero value is an empty store ready to
// use. MemoryStore is safe for simultaneous use by multiple goroutines.
type MemoryStore struct {
	mu     sync.RWMutex
	byHash map[[32]byte]*Key
	byID   map[string]*Key
}

// NewMemoryStore returns a MemoryStore holding keys (see [MemoryStore.Put] for
// duplicates).
func NewMemoryStore(keys ...Key) *MemoryStore {
	s := &MemoryStore{}
	s.Replace(keys)
	return s
}

// Lookup implements [Store]. It never fails other than with [ErrKeyNotFound].
func (s *MemoryStore) Lookup(_ context.Context, hash [32]byte) (*Key, error) {
	s.mu.RLock()
	k := s.byHash[hash]
	s.mu.RUnlock()
	if k == nil {
		return nil, ErrKeyNotFound
	}
	return k, nil
}

// Put adds k, or replaces the key with k's ID and the key with k's Hash. The
// store keeps its own copy of k.
func (s *MemoryStore) Put(k Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.put(k)
}

func (s *MemoryStore) put(k Key) {
	if s.byHash == nil {
		s.byHash = make(map[[32]byte]*Key)
		s.byID = make(map[string]*Key)
	}
	k.Products = slices.Clone(k.Products)
	if old := s.byID[k.ID]; old != nil {
		delete(s.byHash, old.Hash)
	}
	if old := s.byHash[k.Hash]; old != nil {
		delete(s.byID, old.ID)
	}
	s.byHash[k.Hash] = &k
	s.byID[k.ID] = &k
}

// Delete removes the key with the given ID and reports whether there was one.
func (s *MemoryStore) Delete(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.byID[id]
	if k == nil {
		return false
	}
	delete(s.byID, id)
	delete(s.byHash, k.Hash)
	return true
}

// Disable marks the key with the given ID disabled and reports whether there
// was one. Records already handed out by Lookup are not changed: the next
// Lookup returns a new, disabled one.
func (s *MemoryStore) Disable(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.byID[id]
	if k == nil {
		return false
	}
	d := *k
	d.Disabled = true
	s.byHash[d.Hash] = &d
	s.byID[id] = &d
	return true
}

// Replace swaps the whole content of the store for keys, atomically for
// readers, as a config reload does. Later keys win over earlier ones with the
// same ID or Hash.
func (s *MemoryStore) Replace(keys []Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byHash = make(map[[32]byte]*Key, len(keys))
	s.byID = make(map[string]*Key, len(keys))
	for _, k := range keys {
		s.put(k)
	}
}

// Keys returns a copy of every key in the store, sorted by ID.
func (s *MemoryStore) Keys() []Key {
	s.mu.RLock()
	keys := make([]Key, 0, len(s.byID))
	for _, k := range s.byID {
		c := *k
		c.Products = slices.Clone(k.Products)
		keys = append(keys, c)
	}
	s.mu.RUnlock()
	slices.SortFunc(keys, func(a, b Key) int { return strings.Compare(a.ID, b.ID) })
	return keys
}

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
