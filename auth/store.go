// This file holds where keys are kept: the Store interface the key middleware
// asks, MemoryStore (its index is in hashindex.go), and cow, the
// copy-on-write holder of MemoryStore's index and, as cowMap, of
// MemoryCatalog's table. The Cache in front of a slow Store is in cache.go.

package auth

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// Errors of a [Store]. Compare with errors.Is.
var (
	// ErrKeyNotFound is what a [Store] returns for a hash it does not hold.
	ErrKeyNotFound = errors.New("auth: API key not found")
	// ErrStoreUnavailable is what a [Store] returns (possibly wrapped) when it
	// cannot answer for now, its database being down: the key middleware
	// answers 503 with Retry-After, not 401, since the key may well be valid.
	ErrStoreUnavailable = errors.New("auth: key store unavailable")
)

// Store finds key records by the SHA-256 hash of the plaintext key.
//
// Lookup returns [ErrKeyNotFound] (possibly wrapped) for a hash it does not
// hold, [ErrStoreUnavailable] (possibly wrapped) when its database cannot be
// reached, and wraps any other failure with %w; the key middleware answers
// the first with 401 and any other error with 503 (reported as
// KeyStoreUnavailable for the second, KeyStoreError for the rest). Lookup
// must return once ctx ends. The returned Key is read-only.
// Implementations must be safe for simultaneous use.
type Store interface {
	Lookup(ctx context.Context, hash [32]byte) (*Key, error)
}

// MemoryStore is a [Store] held in memory that an administrator can change
// while it serves: a change is seen by the next Lookup, so a key disabled now
// is refused on the next request. Lookup takes no lock; each change copies
// the store, so changes are for an administrator, not for every request. The
// zero value is an empty store ready to use. MemoryStore is safe for
// simultaneous use by multiple goroutines.
type MemoryStore struct {
	keys cow[hashIndex] // by Hash; IDs are unique too
}

// NewMemoryStore returns a MemoryStore holding keys (see [MemoryStore.Replace]
// for duplicates).
func NewMemoryStore(keys ...Key) *MemoryStore {
	s := &MemoryStore{}
	s.Replace(keys)
	return s
}

// Lookup implements [Store]. It never fails other than with [ErrKeyNotFound].
func (s *MemoryStore) Lookup(_ context.Context, hash [32]byte) (*Key, error) {
	if k := s.keys.load().get(&hash); k != nil {
		return k, nil
	}
	return nil, ErrKeyNotFound
}

// Put adds k, or replaces the key with k's ID and the key with k's Hash. The
// store keeps its own copy of k.
func (s *MemoryStore) Put(k Key) {
	s.change(func(m map[[32]byte]*Key) {
		deleteKeyID(m, k.ID)
		m[k.Hash] = ownKey(k)
	})
}

// Delete removes the key with the given ID and reports whether there was one.
func (s *MemoryStore) Delete(id string) (found bool) {
	s.change(func(m map[[32]byte]*Key) { found = deleteKeyID(m, id) })
	return found
}

// Disable marks the key with the given ID disabled and reports whether there
// was one. Records already handed out by Lookup are not changed: the next
// Lookup returns a new, disabled one.
func (s *MemoryStore) Disable(id string) (found bool) {
	s.change(func(m map[[32]byte]*Key) {
		for h, k := range m {
			if k.ID == id {
				d := *k
				d.Disabled = true
				m[h] = &d
				found = true
				return
			}
		}
	})
	return found
}

// Replace swaps the whole content of the store for keys, atomically for
// readers, as a config reload does. Later keys win over earlier ones with the
// same ID or Hash.
func (s *MemoryStore) Replace(keys []Key) {
	m := make(map[[32]byte]*Key, len(keys))
	hashOf := make(map[string][32]byte, len(keys)) // ID → Hash of the latest key with it
	for _, k := range keys {
		if h, ok := hashOf[k.ID]; ok && m[h] != nil && m[h].ID == k.ID {
			delete(m, h)
		}
		m[k.Hash] = ownKey(k)
		hashOf[k.ID] = k.Hash
	}
	x := newHashIndex(m)
	s.keys.change(func(*hashIndex) *hashIndex { return x })
}

// change applies f to a map of the store's records by Hash and makes an index
// of the result current: readers see the whole change or none of it.
func (s *MemoryStore) change(f func(map[[32]byte]*Key)) {
	s.keys.change(func(x *hashIndex) *hashIndex {
		m := x.toMap()
		f(m)
		return newHashIndex(m)
	})
}

// ownKey returns a copy of k that shares no memory with the caller's.
func ownKey(k Key) *Key {
	k.Products = slices.Clone(k.Products)
	k.Windows = slices.Clone(k.Windows)
	return &k
}

// deleteKeyID removes the key with the given ID from m and reports whether
// there was one.
func deleteKeyID(m map[[32]byte]*Key, id string) bool {
	for h, k := range m {
		if k.ID == id {
			delete(m, h)
			return true
		}
	}
	return false
}

// cow holds the current version of something readers share and never
// write: load takes no lock (the hot path of every request), and a change
// makes the next version from the current one under a lock that serialises
// changes, so that a reader always sees one whole version, before or after.
// Changes are an administrator's. The zero value holds no version yet.
type cow[T any] struct {
	mu  sync.Mutex
	cur atomic.Pointer[T]
}

// load returns the current version, or nil before the first change.
func (c *cow[T]) load() *T { return c.cur.Load() }

// change makes next(current) the current version, current being nil before
// the first.
func (c *cow[T]) change(next func(current *T) *T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur.Store(next(c.cur.Load()))
}

// cowMap is a copy-on-write map of shared, read-only records, the table of
// [MemoryCatalog]: a change copies the map. The zero value is an empty map
// ready to use.
type cowMap[K comparable, V any] struct {
	m cow[map[K]*V]
}

// get returns the record under k, or nil.
func (c *cowMap[K, V]) get(k K) *V {
	if m := c.m.load(); m != nil {
		return (*m)[k]
	}
	return nil
}

// change applies f to a copy of the map and makes the copy current.
func (c *cowMap[K, V]) change(f func(map[K]*V)) {
	c.m.change(func(old *map[K]*V) *map[K]*V {
		var m map[K]*V
		if old != nil {
			m = maps.Clone(*old)
		}
		if m == nil {
			m = make(map[K]*V)
		}
		f(m)
		return &m
	})
}

// replace makes m, which the caller no longer touches, the current map.
func (c *cowMap[K, V]) replace(m map[K]*V) {
	c.m.change(func(*map[K]*V) *map[K]*V { return &m })
}

// all returns the current records, in no order.
func (c *cowMap[K, V]) all() []*V {
	if m := c.m.load(); m != nil {
		return slices.Collect(maps.Values(*m))
	}
	return nil
}
