package auth

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/testclock"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

func TestMemoryStore(t *testing.T) {
	ctx := context.Background()
	_, a := NewKey()
	_, b := NewKey()
	a.Products = []string{"quote"}
	s := NewMemoryStore(a, b)

	if k, err := s.Lookup(ctx, a.Hash); err != nil || k.ID != a.ID {
		t.Fatalf("Lookup(a) = %v, %v", k, err)
	}
	if _, err := s.Lookup(ctx, [32]byte{1}); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Lookup(unknown) error = %v, want ErrKeyNotFound", err)
	}

	a.Products[0] = "changed by the caller"
	if k, _ := s.Lookup(ctx, a.Hash); k.Products[0] != "quote" {
		t.Errorf("the store shares the caller's Products slice")
	}

	before, _ := s.Lookup(ctx, a.Hash)
	if !s.Disable(a.ID) {
		t.Fatal("Disable(a) = false")
	}
	if k, _ := s.Lookup(ctx, a.Hash); !k.Disabled {
		t.Error("a is not disabled after Disable")
	}
	if before.Disabled {
		t.Error("Disable changed a record already handed out")
	}
	if s.Disable("nope") || s.Delete("nope") {
		t.Error("Disable or Delete of an unknown id reports true")
	}

	// Put with an existing ID and a new hash: the old hash goes.
	_, rotated := NewKey()
	rotated.ID = b.ID
	s.Put(rotated)
	if _, err := s.Lookup(ctx, b.Hash); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("old hash of a re-put key still found: %v", err)
	}
	if k, err := s.Lookup(ctx, rotated.Hash); err != nil || k.ID != b.ID {
		t.Errorf("Lookup(rotated) = %v, %v", k, err)
	}

	if !s.Delete(a.ID) {
		t.Fatal("Delete(a) = false")
	}
	if _, err := s.Lookup(ctx, a.Hash); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("deleted key still found: %v", err)
	}
	if keys := keysOf(s); len(keys) != 1 || keys[0].ID != b.ID {
		t.Errorf("keysOf = %v, want only %s", keys, b.ID)
	}

	s.Replace([]Key{a})
	if keys := keysOf(s); len(keys) != 1 || keys[0].ID != a.ID || keys[0].Disabled {
		t.Errorf("after Replace, keysOf = %+v, want only an enabled %s", keys, a.ID)
	}

	var zero MemoryStore
	if _, err := zero.Lookup(ctx, a.Hash); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("zero MemoryStore Lookup error = %v", err)
	}
	zero.Put(a)
	if _, err := zero.Lookup(ctx, a.Hash); err != nil {
		t.Errorf("zero MemoryStore after Put: %v", err)
	}
}

// TestMemoryStoreConcurrent: under concurrent Lookup, Disable, Put and keysOf
// (run with -race too), every Lookup finds the key, a record it handed out
// never changes afterwards, keysOf always holds exactly the one key, and the
// last write wins.
func TestMemoryStoreConcurrent(t *testing.T) {
	_, k := NewKey()
	k.Products = []string{"quote"}
	s := NewMemoryStore(k)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 200 {
				switch (i + j) % 4 {
				case 0:
					got, err := s.Lookup(context.Background(), k.Hash)
					if err != nil || got.ID != k.ID || got.Hash != k.Hash {
						t.Errorf("Lookup = %+v, %v; want the key", got, err)
						return
					}
					was := got.Disabled
					s.Disable(k.ID)
					if got.Disabled != was {
						t.Errorf("a record handed out by Lookup changed from Disabled=%v to %v", was, got.Disabled)
					}
				case 1:
					if !s.Disable(k.ID) {
						t.Error("Disable found no key")
					}
				case 2:
					s.Put(k)
				case 3:
					if keys := keysOf(s); len(keys) != 1 || keys[0].ID != k.ID || keys[0].Hash != k.Hash || !slices.Equal(keys[0].Products, k.Products) {
						t.Errorf("Keys = %+v, want the one key", keys)
					}
				}
			}
		})
	}
	wg.Wait()
	s.Put(k)
	if got, _ := s.Lookup(context.Background(), k.Hash); got == nil || got.Disabled {
		t.Errorf("after Put, Lookup = %+v; want the key enabled", got)
	}
	s.Disable(k.ID)
	if got, _ := s.Lookup(context.Background(), k.Hash); got == nil || !got.Disabled {
		t.Errorf("after Disable, Lookup = %+v; want the key disabled", got)
	}
}

// countingStore counts lookups and answers from a MemoryStore, or with err.
type countingStore struct {
	calls atomic.Int64
	mem   *MemoryStore
	err   error
	// release, if not nil, is waited on before answering, until the
	// lookup's context ends, as a database's query waits.
	release chan struct{}
}

func (s *countingStore) Lookup(ctx context.Context, hash [32]byte) (*Key, error) {
	s.calls.Add(1)
	if s.release != nil {
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, fmt.Errorf("counting store: %w", ctx.Err())
		}
	}
	if s.err != nil {
		return nil, s.err
	}
	return s.mem.Lookup(ctx, hash)
}

func TestCacheTTL(t *testing.T) {
	ctx := context.Background()
	_, k := NewKey()
	store := &countingStore{mem: NewMemoryStore(k)}
	clk := testclock.New(t0)
	c := NewCache(store, CacheConfig{TTL: time.Minute, NegativeTTL: 10 * time.Second, Now: clk.Now})

	lookup := func(hash [32]byte, wantErr error, wantCalls int64) *Key {
		t.Helper()
		got, err := c.Lookup(ctx, hash)
		if !errors.Is(err, wantErr) {
			t.Fatalf("Lookup error = %v, want %v", err, wantErr)
		}
		if n := store.calls.Load(); n != wantCalls {
			t.Fatalf("store calls = %d, want %d", n, wantCalls)
		}
		return got
	}

	lookup(k.Hash, nil, 1)
	lookup(k.Hash, nil, 1) // cached
	store.mem.Disable(k.ID)
	if got := lookup(k.Hash, nil, 1); got.Disabled {
		t.Fatal("a cached key saw the disable before its TTL")
	}
	clk.Advance(time.Minute)
	if got := lookup(k.Hash, nil, 2); !got.Disabled {
		t.Fatal("disable not seen after TTL")
	}

	unknown := [32]byte{42}
	lookup(unknown, ErrKeyNotFound, 3)
	lookup(unknown, ErrKeyNotFound, 3) // negatively cached
	clk.Advance(10 * time.Second)
	lookup(unknown, ErrKeyNotFound, 4)
}

func TestCacheDoesNotCacheErrors(t *testing.T) {
	boom := errors.New("database down")
	store := &countingStore{err: fmt.Errorf("lookup: %w", boom)}
	c := NewCache(store, CacheConfig{Now: fixedNow})
	for i := range 3 {
		if _, err := c.Lookup(context.Background(), [32]byte{1}); !errors.Is(err, boom) {
			t.Fatalf("Lookup error = %v, want %v", err, boom)
		}
		if n := store.calls.Load(); n != int64(i+1) {
			t.Fatalf("store calls = %d, want %d: an error was cached", n, i+1)
		}
	}
}

func TestCacheNegativeBound(t *testing.T) {
	store := &countingStore{mem: NewMemoryStore()}
	c := NewCache(store, CacheConfig{MaxNegative: 50, NegativeTTL: time.Hour, Now: fixedNow})
	for i := range 10_000 {
		var h [32]byte
		h[0], h[1] = byte(i), byte(i>>8)
		if _, err := c.Lookup(context.Background(), h); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("Lookup error = %v", err)
		}
		if n := len(c.unknown); n > 50 {
			t.Fatalf("after %d unknown hashes, %d are remembered, want at most 50", i+1, n)
		}
	}
	if n := len(c.unknown); n != 50 {
		t.Errorf("remembered %d unknown hashes, want 50", n)
	}
}

func TestCacheSingleflight(t *testing.T) {
	const n = 20
	_, k := NewKey()
	store := &countingStore{mem: NewMemoryStore(k), release: make(chan struct{})}
	c := NewCache(store, CacheConfig{Now: fixedNow})

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			got, err := c.Lookup(context.Background(), k.Hash)
			if err == nil && got.ID != k.ID {
				err = fmt.Errorf("got key %s, want %s", got.ID, k.ID)
			}
			errs <- err
		})
	}
	// Wait, without sleeping, until one caller is in the store and every
	// other one waits for it.
	for c.Waiting(k.Hash) < n {
		runtime.Gosched()
	}
	close(store.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if calls := store.calls.Load(); calls != 1 {
		t.Errorf("%d concurrent misses made %d store calls, want 1", n, calls)
	}
}

func TestCacheWaiterContextCanceled(t *testing.T) {
	_, k := NewKey()
	store := &countingStore{mem: NewMemoryStore(k), release: make(chan struct{})}
	c := NewCache(store, CacheConfig{Now: fixedNow})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Lookup(context.Background(), k.Hash)
	}()
	for c.Waiting(k.Hash) == 0 {
		runtime.Gosched()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Lookup(ctx, k.Hash); !errors.Is(err, context.Canceled) {
		t.Errorf("waiter with a canceled context got %v, want context.Canceled", err)
	}
	close(store.release)
	<-done
}

type panickingStore struct{}

func (panickingStore) Lookup(context.Context, [32]byte) (*Key, error) { panic("broken store") }

func TestCacheStorePanicReleasesHash(t *testing.T) {
	c := NewCache(panickingStore{}, CacheConfig{Now: fixedNow})
	for range 2 {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("the store's panic was swallowed")
				}
			}()
			c.Lookup(context.Background(), [32]byte{1})
		}()
		if c.Waiting([32]byte{1}) != 0 {
			t.Fatal("a panicking lookup stays in flight")
		}
	}
}

// TestMemoryStoreReplaceDuplicates: in Replace, a later key wins over an
// earlier one with the same ID (a rotated key: the old hash is no longer
// found) or the same Hash, and an ID whose hash was taken over is not
// mistaken for the key now under that hash.
func TestMemoryStoreReplaceDuplicates(t *testing.T) {
	ctx := context.Background()
	_, a := NewKey()
	_, rotated := NewKey()
	rotated.ID = a.ID
	_, b := NewKey()
	c := b
	c.ID = "key_c" // same hash as b
	s := NewMemoryStore(a, rotated, b, c, Key{ID: b.ID, Hash: [32]byte{1}})
	if _, err := s.Lookup(ctx, a.Hash); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Lookup(old hash of a rotated key) error = %v, want ErrKeyNotFound", err)
	}
	if k, err := s.Lookup(ctx, rotated.Hash); err != nil || k.ID != a.ID {
		t.Errorf("Lookup(rotated) = %+v, %v; want %s", k, err, a.ID)
	}
	if k, err := s.Lookup(ctx, b.Hash); err != nil || k.ID != "key_c" {
		t.Errorf("Lookup(b's hash) = %+v, %v; want key_c, the later key", k, err)
	}
	if got := len(keysOf(s)); got != 3 {
		t.Errorf("store holds %d keys, want 3", got)
	}
}

// TestMemoryStoreOwnsWindows: a key's Windows are copied in, like its
// Products, so the caller changing its slice later changes nothing served.
func TestMemoryStoreOwnsWindows(t *testing.T) {
	_, k := NewKey()
	k.Owner = "acme"
	k.Windows = []ratelimit.Rate{{Limit: 1000, Period: time.Hour}}
	s := NewMemoryStore(k)
	k.Windows[0].Limit = 1
	got, err := s.Lookup(context.Background(), k.Hash)
	if err != nil || got.Owner != "acme" || len(got.Windows) != 1 || got.Windows[0] != (ratelimit.Rate{Limit: 1000, Period: time.Hour}) {
		t.Errorf("Lookup = %+v, %v; want owner acme and the window 1000/1h as Put", got, err)
	}
}
