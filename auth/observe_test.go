package auth

import (
	"context"
	"errors"
	"fmt"
	"github.com/gatehouse-go/gatehouse/internal/testclock"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// recorder collects events, safe for concurrent use.
type recorder struct {
	mu  sync.Mutex
	got []Result
}

func (r *recorder) observe(e Event) {
	r.mu.Lock()
	r.got = append(r.got, e.Result)
	r.mu.Unlock()
}

func (r *recorder) take() []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = nil
	return got
}

// TestObserveKeyChecks: each request's check reports one result, the one its
// answer stands for.
func TestObserveKeyChecks(t *testing.T) {
	plain, k := NewKey()
	_, expired := NewKey()
	expired.ExpiresAt = t0.Add(-time.Second)
	rec := &recorder{}
	th := NewThrottle(ThrottleConfig{Attempts: 1, Per: time.Minute, Now: fixedNow})
	h := Middleware(Config{Store: NewMemoryStore(k, expired), Now: fixedNow, Logger: discard, Throttle: th, Observe: rec.observe})(&okHandler{})
	do := func(key, addr string) int {
		req := httptest.NewRequest("POST", "/", nil)
		req.RemoteAddr = addr
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	codes := []int{
		do(plain, "192.0.2.1:1"),
		do("", "192.0.2.1:1"),
		do("ila_nonsense", "192.0.2.2:1"),
		do(unknownKey(), "192.0.2.2:1"), // the one attempt of 192.0.2.2 is spent
	}
	if want := []int{200, 401, 401, 429}; !slices.Equal(codes, want) {
		t.Fatalf("codes %v, want %v", codes, want)
	}
	if got, want := rec.take(), []Result{KeyValid, KeyMissing, KeyInvalid, KeyThrottled}; !slices.Equal(got, want) {
		t.Errorf("results %v, want %v", got, want)
	}

	for _, tt := range []struct {
		err  error
		want Result
	}{{fmt.Errorf("sqlstore: %w", ErrStoreUnavailable), KeyStoreUnavailable}, {errors.New("broken"), KeyStoreError}} {
		h := Middleware(Config{Store: failingStore{tt.err}, Logger: discard, Observe: rec.observe})(&okHandler{})
		req := httptest.NewRequest("POST", "/", nil)
		req.Header.Set("X-API-Key", plain)
		h.ServeHTTP(httptest.NewRecorder(), req)
		if got := rec.take(); !slices.Equal(got, []Result{tt.want}) {
			t.Errorf("store error %v: results %v, want %v", tt.err, got, tt.want)
		}
	}
	if KeyValid.String() != "KeyValid" || CacheNegativeHit.String() != "CacheNegativeHit" || Result(200).String() != "Result(200)" || !CacheMiss.Cached() || KeyInvalid.Cached() {
		t.Error("result names or Cached wrong")
	}
}

// TestObserveCache: a Cache reports hit, miss and negative hit per Lookup.
func TestObserveCache(t *testing.T) {
	ctx := context.Background()
	_, k := NewKey()
	rec := &recorder{}
	clk := testclock.New(t0)
	c := NewCache(NewMemoryStore(k), CacheConfig{Now: clk.Now, Observe: rec.observe})
	c.Lookup(ctx, k.Hash)
	c.Lookup(ctx, k.Hash)
	c.Lookup(ctx, [32]byte{1})
	c.Lookup(ctx, [32]byte{1})
	clk.Advance(time.Hour)
	c.Lookup(ctx, k.Hash)
	want := []Result{CacheMiss, CacheHit, CacheMiss, CacheNegativeHit, CacheMiss}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Errorf("results %v, want %v", got, want)
	}
}
