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
	for s.cache.flights.Callers(hash) < n {
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
	if got := s.cache.flights.Callers(HashKey(s.plain)); got != 0 {
		t.Errorf("%d callers of a lookup still in flight", got)
	}
	close(s.store.release)
	authtest.AssertAnswer(t, "D", <-s.start(context.Background(), "d"), 200, "ok", "")
	if got := s.store.calls.Load(); got != n+1 {
		t.Errorf("store calls %d, want %d", got, n+1)
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
