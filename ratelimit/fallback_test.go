package ratelimit

import (
	"context"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// switchStore is a primary store that fails with errDown while down is set,
// and counts the calls of its Take.
type switchStore struct {
	mem   *MemoryStore
	down  atomic.Bool
	calls atomic.Int64
}

func newSwitchStore() *switchStore { return &switchStore{mem: NewMemoryStore(MemoryConfig{})} }

func (s *switchStore) Take(ctx context.Context, c Charge, now time.Time) (Decision, error) {
	s.calls.Add(1)
	if s.down.Load() {
		return Decision{}, errDown
	}
	return s.mem.Take(ctx, c, now)
}

// Peek is the MemoryStore's, failing while down; it is not counted in calls.
func (s *switchStore) Peek(ctx context.Context, c Charge, now time.Time) (Decision, error) {
	if s.down.Load() {
		return Decision{}, errDown
	}
	return s.mem.Peek(ctx, c, now)
}

func TestScaleLimit(t *testing.T) {
	tests := []struct {
		n     int
		share float64
		want  int
	}{
		{60, 1.0 / 3, 20},
		{300, 0.1, 30}, // 30.000000000000004 in float64
		{100, 0.07, 7}, // 7.000000000000001
		{10, 0.34, 4},
		{7, 0.5, 4},
		{5, 1, 5},
		{1, 0.1, 1},
		{2, 0.01, 1},
		{MaxLimit, 0.5, MaxLimit / 2},
		{MaxLimit, 1, MaxLimit},
		{0, 0.5, 0},
		{-3, 0.5, -3},
	}
	for _, tt := range tests {
		if got := scaleLimit(tt.n, tt.share); got != tt.want {
			t.Errorf("scaleLimit(%d, %v) = %d, want %d", tt.n, tt.share, got, tt.want)
		}
	}
}

// TestFallbackThroughMiddleware follows one key through a whole outage of its
// primary, on an injected clock: the primary's decisions, then local ones at
// a quarter of each limit with the scaled headers, one try of the primary a
// second, the primary again once it answers, and fresh local buckets in the
// next outage.
func TestFallbackThroughMiddleware(t *testing.T) {
	c := newClock()
	primary := newSwitchStore()
	var events []FallbackEvent
	store := Fallback(primary, FallbackConfig{Share: 0.25, RetryEvery: time.Second, Observe: func(e FallbackEvent) {
		events = append(events, e)
	}})
	h := Middleware(Config{Key: ByClientIP, Store: store, Now: c.Now, Limits: Limits{PerMinute: 8, PerDay: 100}, Logger: quiet})(statusHandler)

	type want struct {
		status                int
		limit, remaining      string
		dailyLimit, dailyLeft string
		retryAfter            string
		calls                 int64 // the primary's Take calls so far
		degraded              bool
		local                 uint64
		events                int
	}
	steps := []struct {
		name string
		wait time.Duration
		down bool
		want want
	}{
		{"up: the primary decides", 0, false, want{200, "8", "7", "100", "99", "", 1, false, 0, 0}},
		{"the primary fails: decided locally at a quarter", 0, true, want{200, "2", "1", "25", "24", "", 2, true, 1, 1}},
		{"local, no try before RetryEvery", 0, true, want{200, "2", "0", "25", "23", "", 2, true, 2, 1}},
		{"local refusal", 0, true, want{429, "2", "0", "25", "23", "30", 2, true, 3, 1}},
		{"still no try 999 ms on", 999 * time.Millisecond, true, want{429, "2", "0", "25", "23", "30", 2, true, 4, 1}},
		{"one second on: one try, it fails", time.Millisecond, true, want{429, "2", "0", "25", "23", "29", 3, true, 5, 1}},
		{"the next request does not try", 0, true, want{429, "2", "0", "25", "23", "29", 3, true, 6, 1}},
		{"the primary is back, but no try yet", 500 * time.Millisecond, false, want{429, "2", "0", "25", "23", "29", 3, true, 7, 1}},
		{"the try at two seconds: the primary decides again", 500 * time.Millisecond, false, want{200, "8", "6", "100", "98", "", 4, false, 7, 2}},
		{"the primary, every request", 0, false, want{200, "8", "5", "100", "97", "", 5, false, 7, 2}},
		{"a new outage starts from full local buckets", 0, true, want{200, "2", "1", "25", "24", "", 6, true, 8, 3}},
	}
	for _, st := range steps {
		c.Advance(st.wait)
		primary.down.Store(st.down)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		hd := rec.Header()
		got := want{rec.Code, hd.Get("X-RateLimit-Limit"), hd.Get("X-RateLimit-Remaining"), hd.Get("X-RateLimit-Daily-Limit"),
			hd.Get("X-RateLimit-Daily-Remaining"), hd.Get("Retry-After"), primary.calls.Load(), store.Degraded(), store.LocalDecisions(), len(events)}
		if got != st.want {
			t.Fatalf("%s:\n got %+v\nwant %+v", st.name, got, st.want)
		}
		if rec.Code == http.StatusTooManyRequests && rec.Body.String() != `{"error":"Rate limit exceeded"}`+"\n" {
			t.Errorf("%s: body %q", st.name, rec.Body.String())
		}
	}
	for i, e := range events {
		wantDegraded := i%2 == 0
		if e.Degraded != wantDegraded || (e.Err != nil) != wantDegraded || (wantDegraded && !errors.Is(e.Err, errDown)) {
			t.Errorf("event %d = %+v, want Degraded %v with errDown iff degraded", i, e, wantDegraded)
		}
	}
}

// TestFallbackNotAFailure: an error of the caller's leaving, or of invalid
// limits, is returned as it is and starts no outage; and invalid limits are
// refused in an outage too, though scaled they would be valid.
func TestFallbackNotAFailure(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	limits := Limits{PerMinute: 10, PerDay: 100}
	var events atomic.Int64
	cfg := FallbackConfig{Share: 0.5, Observe: func(FallbackEvent) { events.Add(1) }}

	primary := newSwitchStore()
	primary.down.Store(true)
	s := Fallback(primary, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Take(ctx, Charge{Key: "k", Limits: limits}, now); !errors.Is(err, errDown) || s.Degraded() || s.LocalDecisions() != 0 || events.Load() != 0 {
		t.Errorf("cancelled caller: err %v, degraded %v, local %d, events %d; want errDown, false, 0, 0", err, s.Degraded(), s.LocalDecisions(), events.Load())
	}

	s = Fallback(newSwitchStore(), cfg) // a MemoryStore refuses the limits itself
	big := Limits{PerMinute: 10, PerDay: MaxLimit + 2}
	if _, err := s.Take(context.Background(), Charge{Key: "k", Limits: big}, now); !errors.Is(err, ErrInvalidLimits) || s.Degraded() || events.Load() != 0 {
		t.Errorf("invalid limits: err %v, degraded %v, events %d; want ErrInvalidLimits, false, 0", err, s.Degraded(), events.Load())
	}

	primary = newSwitchStore()
	primary.down.Store(true)
	s = Fallback(primary, cfg)
	if d, err := s.Take(context.Background(), Charge{Key: "k", Limits: limits}, now); err != nil || !d.Allowed || d.Minute.Limit != 5 || d.Day.Limit != 50 || !s.Degraded() {
		t.Fatalf("outage: %+v, %v, degraded %v; want allowed at 5 and 50", d, err, s.Degraded())
	}
	if _, err := s.Take(context.Background(), Charge{Key: "k", Limits: big}, now); !errors.Is(err, ErrInvalidLimits) || s.LocalDecisions() != 1 {
		t.Errorf("invalid limits in an outage: err %v, local %d; want ErrInvalidLimits, 1", err, s.LocalDecisions())
	}
}

func TestFallbackConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  FallbackConfig
		ok   bool
	}{
		{"a third", FallbackConfig{Share: 1.0 / 3}, true},
		{"all", FallbackConfig{Share: 1}, true},
		{"small", FallbackConfig{Share: 0.001, RetryEvery: time.Minute}, true},
		{"zero share", FallbackConfig{}, false},
		{"negative share", FallbackConfig{Share: -0.5}, false},
		{"above one", FallbackConfig{Share: 1.01}, false},
		{"NaN", FallbackConfig{Share: math.NaN()}, false},
		{"infinite", FallbackConfig{Share: math.Inf(1)}, false},
		{"negative RetryEvery", FallbackConfig{Share: 0.5, RetryEvery: -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tt.ok)
			}
			defer func() {
				if p := recover(); (p == nil) != tt.ok {
					t.Errorf("Fallback panicked with %v, want a panic %v", p, !tt.ok)
				}
			}()
			Fallback(newSwitchStore(), tt.cfg)
		})
	}
	if err := (FallbackConfig{}).Validate(); err == nil || !strings.Contains(err.Error(), "Share") {
		t.Errorf("zero config: %v, want an error naming Share", err)
	}
}

// TestFallbackConcurrent: many requests of one key at once in an outage get
// exactly the scaled limit between them, and at each RetryEvery exactly one
// of them tries the primary.
func TestFallbackConcurrent(t *testing.T) {
	const (
		workers = 8
		each    = 50
	)
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	primary := newSwitchStore()
	primary.down.Store(true)
	s := Fallback(primary, FallbackConfig{Share: 0.1, RetryEvery: time.Second})
	limits := Limits{PerMinute: 1000, PerDay: 100_000} // 100 and 10,000 locally
	if _, err := s.Take(context.Background(), Charge{Key: "k", Limits: limits}, clock()); err != nil || !s.Degraded() {
		t.Fatalf("first take: %v, degraded %v", err, s.Degraded())
	}
	for round := range 3 {
		mu.Lock()
		now = now.Add(time.Second) // refills 100/60 local tokens
		mu.Unlock()
		before := primary.calls.Load()
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range each {
					d, err := s.Take(context.Background(), Charge{Key: "k", Limits: limits}, clock())
					if err != nil {
						t.Error(err)
						return
					}
					if d.Allowed {
						allowed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if tries := primary.calls.Load() - before; tries != 1 {
			t.Errorf("round %d: %d tries of the primary, want 1", round, tries)
		}
		// 99 left and a second's 1.67 refill, capped at 100; then 1.67
		// (1 whole, 0.67 kept), then 2.33.
		if want := [3]int64{100, 1, 2}[round]; allowed.Load() != want {
			t.Errorf("round %d: %d allowed, want %d", round, allowed.Load(), want)
		}
	}
}

// TestFallbackPeek: the primary's buckets while it answers, the local ones
// at the share in an outage, and no try of the primary either way.
func TestFallbackPeek(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	limits := Limits{PerMinute: 10, PerDay: 100}
	primary := newSwitchStore()
	s := Fallback(primary, FallbackConfig{Share: 0.5, RetryEvery: time.Second})
	ctx := context.Background()
	if _, err := s.Take(ctx, Charge{Key: "k", Limits: limits}, now); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Peek(ctx, Charge{Key: "k", Limits: limits}, now); err != nil || d.Minute != (Window{Limit: 10, Remaining: 9, Reset: 6 * time.Second, Period: time.Minute}) {
		t.Errorf("up: %+v, %v; want the primary's 9 of 10", d.Minute, err)
	}
	primary.down.Store(true)
	for range 2 {
		if _, err := s.Take(ctx, Charge{Key: "k", Limits: limits}, now); err != nil {
			t.Fatal(err)
		}
	}
	calls := primary.calls.Load()
	later := now.Add(time.Hour) // past every try
	if d, err := s.Peek(ctx, Charge{Key: "k", Limits: limits}, now); err != nil || d.Minute != (Window{Limit: 5, Remaining: 3, Reset: 24 * time.Second, Period: time.Minute}) {
		t.Errorf("down: %+v, %v; want the local 3 of 5", d.Minute, err)
	}
	if _, err := s.Peek(ctx, Charge{Key: "k", Limits: limits}, later); err != nil || primary.calls.Load() != calls || !s.Degraded() {
		t.Errorf("a peek tried the primary (%d calls, want %d) or ended the outage (%v)", primary.calls.Load(), calls, s.Degraded())
	}
	if _, err := s.Peek(ctx, Charge{Key: "k", Limits: Limits{PerMinute: MaxLimit + 2, PerDay: 1}}, now); !errors.Is(err, ErrInvalidLimits) {
		t.Errorf("invalid limits in an outage: %v, want ErrInvalidLimits", err)
	}
	if _, err := Fallback(failingStore{}, FallbackConfig{Share: 1}).Peek(ctx, Charge{Key: "k", Limits: limits}, now); !errors.Is(err, errNoPeek) {
		t.Errorf("a primary that cannot peek: %v, want errNoPeek", err)
	}
}

// BenchmarkFallback: what the FallbackStore adds to its primary's decision
// while the primary answers, and a local decision in an outage.
func BenchmarkFallback(b *testing.B) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	limits := Limits{PerMinute: MaxLimit, PerDay: MaxLimit}
	ctx := context.Background()
	up := newSwitchStore()
	down := newSwitchStore()
	down.down.Store(true)
	for _, bm := range []struct {
		name  string
		store Store
	}{
		{"primary alone", up},
		{"fallback, primary up", Fallback(up, FallbackConfig{Share: 0.5})},
		{"fallback, primary down", Fallback(down, FallbackConfig{Share: 0.5, RetryEvery: time.Hour})},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bm.store.Take(ctx, Charge{Key: "k", Limits: limits}, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFallbackScalesEveryWindow: in an outage every window of a Charge is
// scaled, the key's further ones and the owner's too, the cost is not, and
// the caller's slices are left as they were.
func TestFallbackScalesEveryWindow(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	week := 7 * 24 * time.Hour
	primary := newSwitchStore()
	primary.down.Store(true)
	s := Fallback(primary, FallbackConfig{Share: 0.5})
	c := Charge{
		Key:         "k",
		Limits:      Limits{PerMinute: 10, PerDay: 100, More: []Rate{{Limit: 4, Period: time.Second}, {Limit: 1001, Period: week}}},
		Owner:       "o",
		OwnerLimits: []Rate{{Limit: 30, Period: time.Minute}, {Limit: 301, Period: time.Hour}},
		Cost:        2,
	}
	more, owner := slices.Clone(c.Limits.More), slices.Clone(c.OwnerLimits)
	d, err := s.Take(context.Background(), c, now)
	if err != nil {
		t.Fatal(err)
	}
	type w struct {
		limit, remaining int
		period           time.Duration
		owner            bool
	}
	got := []w{{d.Minute.Limit, d.Minute.Remaining, d.Minute.Period, d.Minute.Owner}, {d.Day.Limit, d.Day.Remaining, d.Day.Period, d.Day.Owner}}
	for _, m := range d.More {
		got = append(got, w{m.Limit, m.Remaining, m.Period, m.Owner})
	}
	want := []w{
		{5, 3, time.Minute, false}, {50, 48, 24 * time.Hour, false}, // the key's pair
		{2, 0, time.Second, false}, {501, 499, week, false}, // the key's More
		{15, 13, time.Minute, true}, {151, 149, time.Hour, true}, // the owner's
	}
	if !d.Allowed || !slices.Equal(got, want) {
		t.Errorf("allowed %v, windows\n got %v\nwant %v", d.Allowed, got, want)
	}
	if !slices.Equal(c.Limits.More, more) || !slices.Equal(c.OwnerLimits, owner) {
		t.Errorf("the caller's windows changed: %v %v, want %v %v", c.Limits.More, c.OwnerLimits, more, owner)
	}
	// The second's scaled window (2) is spent: the same charge is refused
	// until it refills, in a second.
	if d, err := s.Take(context.Background(), c, now); err != nil || d.Allowed || d.RetryAfter != time.Second {
		t.Errorf("second charge: allowed %v, RetryAfter %v, %v; want refused for 1s", d.Allowed, d.RetryAfter, err)
	}
	// A cost above a scaled window is refused, though the whole limit holds it.
	c.Key, c.Owner, c.Cost = "k2", "o2", 3
	if d, err := s.Take(context.Background(), c, now); err != nil || d.Allowed {
		t.Errorf("cost 3 against a scaled 2 a second: allowed %v, %v; want refused", d.Allowed, err)
	}
}

// TestScaleLimitProperty: over random limits and shares, scaleLimit is the
// exact ceiling of limit × share (in rationals, of the share's float64 value),
// or one below it when that product is within a relative 2^-51 above a whole
// number (2^-52 of the float64 product, which can be a relative 2^-53 off);
// and it is between 1 and the limit.
func TestScaleLimitProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 5))
	for range 100_000 {
		n := 1 + int(r.Int64N(MaxLimit))
		if r.IntN(2) == 0 {
			n = 1 + r.IntN(10_000)
		}
		share := 1 - r.Float64() // (0, 1]
		if r.IntN(4) == 0 {
			share = 1 / float64(1+r.IntN(16))
		}
		got := scaleLimit(n, share)
		exact := new(big.Rat).Mul(new(big.Rat).SetInt64(int64(n)), new(big.Rat).SetFloat64(share))
		ceil := new(big.Int).Quo(new(big.Int).Add(exact.Num(), new(big.Int).Sub(exact.Denom(), big.NewInt(1))), exact.Denom())
		c := int(ceil.Int64())
		ok := got == c
		if got == c-1 {
			// exact - got ≤ exact × 2^-51
			over := new(big.Rat).Sub(exact, new(big.Rat).SetInt64(int64(got)))
			ok = over.Cmp(new(big.Rat).Mul(exact, new(big.Rat).SetFloat64(0x1p-51))) <= 0
		}
		if !ok || got < 1 || got > n {
			t.Fatalf("scaleLimit(%d, %v) = %d, exact ceiling %d", n, share, got, c)
		}
	}
}
