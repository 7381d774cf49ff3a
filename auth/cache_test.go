package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/errorsjson"
	"github.com/gatehouse-go/gatehouse/internal/authtest"
	"github.com/gatehouse-go/gatehouse/internal/testclock"
)

// sharedLookup is the key middleware, behind errorsjson.RequestID, over a
// Cache over a store that answers when released, with the log lines and the
// events of the key checks and of the cache recorded.
type sharedLookup struct {
	h              http.Handler
	cache          *Cache
	store          *countingStore
	logs           *authtest.Log
	checks, lookup *recorder
	plain          string // the store's one key
}

func newSharedLookup(t *testing.T, cfg CacheConfig) *sharedLookup {
	t.Helper()
	plain, k := NewKey()
	s := &sharedLookup{
		store:  &countingStore{mem: NewMemoryStore(k), release: make(chan struct{})},
		checks: &recorder{},
		lookup: &recorder{},
		plain:  plain,
	}
	cfg.Now, cfg.Observe = fixedNow, s.lookup.observe
	s.cache = NewCache(s.store, cfg)
	logger, logs := authtest.NewLog()
	s.logs = logs
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	s.h = errorsjson.RequestID(Middleware(Config{Store: s.cache, Now: fixedNow, Logger: logger, Observe: s.checks.observe})(ok))
	return s
}

// start sends a request with the store's key and request id id, under ctx.
func (s *sharedLookup) start(ctx context.Context, id string) <-chan *httptest.ResponseRecorder {
	return authtest.Start(ctx, s.h, s.plain, id)
}

// waitCallers waits, without sleeping, until n callers have asked for the
// lookup of the key in flight.
func (s *sharedLookup) waitCallers(n int) {
	hash := HashKey(s.plain)
	for s.cache.Waiting(hash) < n {
		runtime.Gosched()
	}
}

// TestCallerHangUpFailsNoOtherCaller: caller A makes the first lookup of a key
// and gives up after 100 ms, while B and C, with no deadline, wait for the
// same lookup. A's going away does not end the lookup: B and C get what the
// store answers once it is released, 200 for the key, 503 with Retry-After for
// a store error, and only their answers are logged and reported; A's is not a
// store error. The store is asked once.
func TestCallerHangUpFailsNoOtherCaller(t *testing.T) {
	for _, tt := range []struct {
		name    string
		err     error  // the store's answer, once released (nil: the key)
		status  int    // B's and C's
		logLine string // B's and C's, the request id left out
		result  Result // B's and C's
	}{
		{"store answers", nil, 200, "", KeyValid},
		{"store unavailable", fmt.Errorf("db: %w", ErrStoreUnavailable), 503,
			`level=ERROR msg="auth: key store unavailable" error="db: auth: key store unavailable"`, KeyStoreUnavailable},
		{"store fails", errors.New("db broken"), 503,
			`level=ERROR msg="auth: key lookup failed" error="db broken"`, KeyStoreError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSharedLookup(t, CacheConfig{LookupTimeout: time.Minute})
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			a := s.start(ctx, "a")
			s.waitCallers(1)
			b := s.start(context.Background(), "b")
			c := s.start(context.Background(), "c")
			s.waitCallers(3)

			// A has gone; the store has not answered yet. Nobody reads A's
			// answer: it is the 503 the store's failures get.
			authtest.AssertAnswer(t, "A", <-a, 503, authtest.UnavailableBody("a"), "1")
			s.store.err = tt.err
			close(s.store.release)
			recB, recC := <-b, <-c
			if tt.status == 200 {
				authtest.AssertAnswer(t, "B", recB, 200, "ok", "")
				authtest.AssertAnswer(t, "C", recC, 200, "ok", "")
			} else {
				authtest.AssertAnswer(t, "B", recB, tt.status, authtest.UnavailableBody("b"), "1")
				authtest.AssertAnswer(t, "C", recC, tt.status, authtest.UnavailableBody("c"), "1")
			}

			var wantLogs []string
			if tt.logLine != "" {
				wantLogs = []string{tt.logLine + " request_id=b", tt.logLine + " request_id=c"}
			}
			if got := s.logs.Lines(); !slices.Equal(got, wantLogs) {
				t.Errorf("logs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantLogs, "\n"))
			}
			if got, want := s.checks.take(), []Result{KeyAbandoned, tt.result, tt.result}; !slices.Equal(got, want) {
				t.Errorf("key checks %v, want %v", got, want)
			}
			if got, want := s.lookup.take(), []Result{CacheMiss, CacheMiss, CacheMiss}; !slices.Equal(got, want) {
				t.Errorf("cache lookups %v, want %v", got, want)
			}
			if n := s.store.calls.Load(); n != 1 {
				t.Errorf("store calls %d, want 1", n)
			}
		})
	}
}

// TestCacheSharedDeadline: a store that does not answer within the Cache's
// LookupTimeout fails the lookup for every caller waiting for it, with
// ErrStoreUnavailable: 503 with Retry-After, logged once per request. The
// lookup's goroutine has ended: the next request asks the store again.
func TestCacheSharedDeadline(t *testing.T) {
	s := newSharedLookup(t, CacheConfig{LookupTimeout: 10 * time.Millisecond})
	b := s.start(context.Background(), "b")
	c := s.start(context.Background(), "c")
	authtest.AssertAnswer(t, "B", <-b, 503, authtest.UnavailableBody("b"), "1")
	authtest.AssertAnswer(t, "C", <-c, 503, authtest.UnavailableBody("c"), "1")
	n := s.store.calls.Load()
	if n != 1 && n != 2 { // C may have come after B's lookup ended
		t.Errorf("store calls %d, want 1 or 2", n)
	}
	line := `level=ERROR msg="auth: key store unavailable" error="auth: key store unavailable: no answer within 10ms: counting store: context deadline exceeded"`
	if got, want := s.logs.Lines(), []string{line + " request_id=b", line + " request_id=c"}; !slices.Equal(got, want) {
		t.Errorf("logs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got, want := s.checks.take(), []Result{KeyStoreUnavailable, KeyStoreUnavailable}; !slices.Equal(got, want) {
		t.Errorf("key checks %v, want %v", got, want)
	}
	if got := s.cache.Waiting(HashKey(s.plain)); got != 0 {
		t.Errorf("%d callers of a lookup still in flight", got)
	}
	close(s.store.release)
	authtest.AssertAnswer(t, "D", <-s.start(context.Background(), "d"), 200, "ok", "")
	if got := s.store.calls.Load(); got != n+1 {
		t.Errorf("store calls %d, want %d", got, n+1)
	}
}

// TestCacheStaleWindow: while the store fails, a found key is answered up to
// StaleWindow past its TTL, each such answer counted by Stale and observed
// as a miss; a hash never found, or a key past the window, gets the store's
// failure. A store that does not answer within LookupTimeout fails as well.
// Once the store answers again, its answer is served and cached.
func TestCacheStaleWindow(t *testing.T) {
	ctx := context.Background()
	_, k := NewKey()
	_, other := NewKey()
	store := &countingStore{mem: NewMemoryStore(k, other)}
	clk := testclock.New(t0)
	rec := &recorder{}
	c := NewCache(store, CacheConfig{TTL: time.Minute, StaleWindow: 5 * time.Minute, LookupTimeout: 10 * time.Millisecond, Now: clk.Now, Observe: rec.observe})
	if _, err := c.Lookup(ctx, k.Hash); err != nil {
		t.Fatal(err)
	}
	down := fmt.Errorf("db: %w", ErrStoreUnavailable)
	store.err = down
	steps := []struct {
		name      string
		advance   time.Duration
		hash      [32]byte
		hang      bool  // the store does not answer within LookupTimeout
		wantErr   error // nil: k
		wantStale int64
	}{
		{"within TTL", 59 * time.Second, k.Hash, false, nil, 0},
		{"past TTL", time.Second, k.Hash, false, nil, 1},
		{"never found", 0, other.Hash, false, down, 1},
		{"no answer in time", 0, k.Hash, true, nil, 2},
		{"at the end of the window", 5*time.Minute - time.Millisecond, k.Hash, false, nil, 3},
		{"past the window", time.Millisecond, k.Hash, false, ErrStoreUnavailable, 3},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		if st.hang {
			store.release = make(chan struct{})
		}
		got, err := c.Lookup(ctx, st.hash)
		store.release = nil
		switch {
		case st.wantErr == nil && (err != nil || got == nil || got.ID != k.ID):
			t.Errorf("%s: %v, %v; want the key", st.name, got, err)
		case st.wantErr != nil && (!errors.Is(err, st.wantErr) || got != nil):
			t.Errorf("%s: %v, %v; want error %v", st.name, got, err, st.wantErr)
		}
		if n := c.Stale(); n != st.wantStale {
			t.Errorf("%s: Stale() = %d, want %d", st.name, n, st.wantStale)
		}
	}
	if got, want := rec.take(), []Result{CacheMiss, CacheHit, CacheMiss, CacheMiss, CacheMiss, CacheMiss, CacheMiss}; !slices.Equal(got, want) {
		t.Errorf("observed %v, want %v", got, want)
	}
	// The store answers again: its record, disabled meanwhile, is served
	// and cached for TTL.
	store.err = nil
	store.mem.Disable(k.ID)
	for range 2 {
		if got, err := c.Lookup(ctx, k.Hash); err != nil || !got.Disabled {
			t.Errorf("after recovery: %v, %v; want the key disabled", got, err)
		}
	}
	if n := store.calls.Load(); n != 7 {
		t.Errorf("store calls %d, want 7", n)
	}
}

// TestCacheStaleWindowZero: without a StaleWindow, a key past its TTL gets
// the store's failure; with one, a key the store says is gone is not
// answered stale.
func TestCacheStaleWindowZero(t *testing.T) {
	ctx := context.Background()
	_, k := NewKey()
	for _, window := range []time.Duration{0, -time.Minute} {
		store := &countingStore{mem: NewMemoryStore(k)}
		clk := testclock.New(t0)
		c := NewCache(store, CacheConfig{TTL: time.Minute, StaleWindow: window, Now: clk.Now})
		c.Lookup(ctx, k.Hash)
		store.err = ErrStoreUnavailable
		clk.Advance(time.Minute)
		if got, err := c.Lookup(ctx, k.Hash); !errors.Is(err, ErrStoreUnavailable) || got != nil || c.Stale() != 0 {
			t.Errorf("StaleWindow %v, past TTL: %v, %v (stale %d); want ErrStoreUnavailable", window, got, err, c.Stale())
		}
	}
	store := &countingStore{mem: NewMemoryStore(k)}
	clk := testclock.New(t0)
	c := NewCache(store, CacheConfig{TTL: time.Minute, StaleWindow: time.Hour, NegativeTTL: -1, Now: clk.Now})
	c.Lookup(ctx, k.Hash)
	store.mem.Delete(k.ID)
	clk.Advance(time.Minute)
	if _, err := c.Lookup(ctx, k.Hash); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("deleted key: %v, want ErrKeyNotFound", err)
	}
	store.err = ErrStoreUnavailable
	if got, err := c.Lookup(ctx, k.Hash); !errors.Is(err, ErrStoreUnavailable) || got != nil {
		t.Errorf("deleted key, store down: %v, %v; want ErrStoreUnavailable, not the key stale", got, err)
	}
}

// TestCacheTimeoutKeepsUnavailableError: a store's error that already wraps
// ErrStoreUnavailable when LookupTimeout ends is answered as it is, not
// wrapped again.
func TestCacheTimeoutKeepsUnavailableError(t *testing.T) {
	c := NewCache(storeFunc(func(ctx context.Context, _ [32]byte) (*Key, error) {
		<-ctx.Done()
		return nil, fmt.Errorf("db: %w: %w", ErrStoreUnavailable, ctx.Err())
	}), CacheConfig{LookupTimeout: time.Millisecond, Now: fixedNow})
	_, err := c.Lookup(context.Background(), [32]byte{1})
	if got, want := fmt.Sprint(err), "db: auth: key store unavailable: context deadline exceeded"; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
}

// storeFunc is a Store that answers with itself.
type storeFunc func(context.Context, [32]byte) (*Key, error)

func (f storeFunc) Lookup(ctx context.Context, hash [32]byte) (*Key, error) { return f(ctx, hash) }

// TestCacheForget: Forget drops the hashes it is given, found or unknown,
// and no other; ForgetAll drops everything. Each hash dropped is asked of
// the store again, once.
func TestCacheForget(t *testing.T) {
	ctx := context.Background()
	_, a := NewKey()
	_, b := NewKey()
	unknown := [32]byte{42}
	store := &countingStore{mem: NewMemoryStore(a, b)}
	c := NewCache(store, CacheConfig{Now: fixedNow})
	lookupAll := func(wantCalls int64) {
		t.Helper()
		for _, h := range [][32]byte{a.Hash, b.Hash, unknown} {
			c.Lookup(ctx, h)
		}
		if n := store.calls.Load(); n != wantCalls {
			t.Fatalf("store calls %d, want %d", n, wantCalls)
		}
	}
	lookupAll(3)
	lookupAll(3) // all cached
	c.Forget(a.Hash, unknown)
	lookupAll(5)
	c.ForgetAll()
	lookupAll(8)
	c.Forget()
	lookupAll(8)
}

// TestCacheForgetDuringLookup: a store lookup under way when Forget (of any
// hash) or ForgetAll is called answers its callers, but its answer, found or
// unknown, is not kept: it may have read the store before the change. A
// lookup started after is kept.
func TestCacheForgetDuringLookup(t *testing.T) {
	_, k := NewKey()
	for _, tt := range []struct {
		name   string
		hash   [32]byte
		forget func(*Cache)
	}{
		{"found, Forget of another hash", k.Hash, func(c *Cache) { c.Forget([32]byte{7}) }},
		{"found, ForgetAll", k.Hash, (*Cache).ForgetAll},
		{"unknown, Forget", [32]byte{42}, func(c *Cache) { c.Forget([32]byte{42}) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			store := &countingStore{mem: NewMemoryStore(k), release: make(chan struct{})}
			c := NewCache(store, CacheConfig{Now: fixedNow})
			type answer struct {
				k   *Key
				err error
			}
			done := make(chan answer)
			go func() {
				k, err := c.Lookup(ctx, tt.hash)
				done <- answer{k, err}
			}()
			for c.Waiting(tt.hash) < 1 {
				runtime.Gosched()
			}
			tt.forget(c)
			close(store.release)
			got := <-done
			wantErr := error(nil)
			if tt.hash != k.Hash {
				wantErr = ErrKeyNotFound
			}
			if !errors.Is(got.err, wantErr) || (wantErr == nil && (got.k == nil || got.k.ID != k.ID)) {
				t.Errorf("lookup under way: %v, %v; want %v", got.k, got.err, wantErr)
			}
			for range 2 {
				c.Lookup(ctx, tt.hash)
			}
			if n := store.calls.Load(); n != 2 {
				t.Errorf("store calls %d, want 2: the answer under way is not kept, the next is", n)
			}
		})
	}
}

// BenchmarkCacheLookup is a Cache hit, the hot path of every request with a
// key in front of a slow store: a lock, a map read and the clock.
func BenchmarkCacheLookup(b *testing.B) {
	_, k := NewKey()
	c := NewCache(NewMemoryStore(k), CacheConfig{})
	ctx := context.Background()
	if _, err := c.Lookup(ctx, k.Hash); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Lookup(ctx, k.Hash); err != nil {
			b.Fatal(err)
		}
	}
}
