package ratelimit

import (
	"context"
	"errors"
	"math"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/seconds"
	"github.com/gatehouse-go/gatehouse/internal/testrand"
	"github.com/gatehouse-go/gatehouse/ratelimit/internal/gcra"
)

// model is a window kept in exact rationals: the time, in milliseconds, until
// it is full. It is the specification gcra.Bucket's integers must meet.
type model struct {
	debt  *big.Rat
	limit int64
}

// modelTake is gcra.Take on two models: pay back the time passed; a changed
// limit keeps the time until full rounded up to the millisecond; a request
// costs window/limit and passes if the window then holds at most its length.
// It returns the windows as the decision sees them, and changes ws only if
// the request passes.
func modelTake(ws [2]*model, lengths [2]int64, limits [2]int64, elapsed int64) ([2]*model, bool) {
	ok := true
	var seen [2]*model
	for i, w := range ws {
		v := &model{debt: new(big.Rat).Sub(w.debt, big.NewRat(elapsed, 1)), limit: w.limit}
		if v.debt.Sign() < 0 || v.limit == 0 {
			v.debt.SetInt64(0)
		}
		if v.limit != limits[i] {
			v.debt.SetInt(ceilRat(v.debt))
			v.limit = limits[i]
		}
		after := new(big.Rat).Add(v.debt, big.NewRat(lengths[i], limits[i]))
		ok = ok && after.Cmp(big.NewRat(lengths[i], 1)) <= 0
		seen[i] = v
	}
	if ok {
		for i, v := range seen {
			v.debt.Add(v.debt, big.NewRat(lengths[i], limits[i]))
			*ws[i] = *v
		}
	}
	return seen, ok
}

func ceilRat(x *big.Rat) *big.Int {
	q, m := new(big.Int).DivMod(x.Num(), x.Denom(), new(big.Int))
	if m.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	return q
}

// modelWindow is what a model window tells the caller.
func modelWindow(w *model, length int64) (remaining, reset int64) {
	used := ceilRat(new(big.Rat).Mul(w.debt, big.NewRat(w.limit, length)))
	return w.limit - used.Int64(), ceilRat(w.debt).Int64()
}

// modelUntilOne is the whole milliseconds until w has room for a request.
func modelUntilOne(w *model, length int64) int64 {
	over := new(big.Rat).Add(w.debt, big.NewRat(length, w.limit))
	over.Sub(over, big.NewRat(length, 1))
	if over.Sign() <= 0 {
		return 0
	}
	return ceilRat(over).Int64()
}

// TestBucketIsExact: gcra's integer arithmetic gives exactly what exact
// rational arithmetic gives, over random histories with limits up to MaxLimit,
// limit changes and clocks that step back.
func TestBucketIsExact(t *testing.T) {
	r := testrand.New(t)
	lengths := [2]int64{minuteMs, dayMs}
	for h := 0; h < 1000; h++ {
		var b gcra.Bucket
		ws := [2]*model{{debt: new(big.Rat)}, {debt: new(big.Rat)}}
		l := Limits{PerMinute: testrand.Limit(r, MaxLimit), PerDay: testrand.Limit(r, MaxLimit)}
		now, clock := int64(1_700_000_000_000), int64(0) // clock: the model's last change
		for i := 0; i < 60; i++ {
			switch r.IntN(10) {
			case 0:
				l = Limits{PerMinute: testrand.Limit(r, MaxLimit), PerDay: testrand.Limit(r, MaxLimit)}
			case 1:
				now -= r.Int64N(5000) // a clock that steps back
			case 2, 3:
				now += r.Int64N(100_000_000)
			default:
				now += r.Int64N(2000)
			}
			seen, wantOK := modelTake(ws, lengths, [2]int64{int64(l.PerMinute), int64(l.PerDay)}, max(now-clock, 0))
			if wantOK {
				clock = max(clock, now)
			}
			d := takeDecide(&b, l, 1, now)
			wm, wmReset := modelWindow(seen[0], minuteMs)
			wd, wdReset := modelWindow(seen[1], dayMs)
			want := Decision{Allowed: wantOK,
				Minute: Window{Limit: l.PerMinute, Remaining: int(wm), Reset: time.Duration(wmReset) * time.Millisecond, Period: time.Minute},
				Day:    Window{Limit: l.PerDay, Remaining: int(wd), Reset: time.Duration(wdReset) * time.Millisecond, Period: 24 * time.Hour}}
			if !wantOK {
				want.RetryAfter = time.Duration(max(modelUntilOne(seen[0], minuteMs), modelUntilOne(seen[1], dayMs))) * time.Millisecond
			}
			if !reflect.DeepEqual(d, want) {
				t.Fatalf("history %d step %d, limits %+v:\n got  %+v\n want %+v", h, i, l, d, want)
			}
		}
	}
}

// takeDecide is one request of cost under l at now on b, as MemoryStore
// makes it with gcra: b changes only if the request is allowed, and the
// decision is of the bucket as Take left it.
func takeDecide(b *gcra.Bucket, l Limits, cost int, now int64) Decision {
	next := *b
	ok := gcra.Take(&next, &l, cost, now)
	if ok {
		*b = next
	}
	var d Decision
	gcra.Decide(&d, &next, ok, cost, nil)
	return d
}

// takeAt is take of a plain charge: key under l, cost 1, no owner.
func takeAt(t *testing.T, s *MemoryStore, key string, l Limits, at time.Time) Decision {
	t.Helper()
	return take(t, s, Charge{Key: key, Limits: l}, at)
}

// TestClockNeverGoesBack: a request that read the clock before another but
// reached the store after it is decided at the later time, so the refill
// between the two is counted once. (x/time/rate moved its clock back and
// counted it twice: golang/go#56287.)
func TestClockNeverGoesBack(t *testing.T) {
	s := NewMemoryStore(MemoryConfig{})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := Limits{PerMinute: 60, PerDay: MaxLimit} // a token a second
	for range 60 {
		takeAt(t, s, "k", l, t0)
	}
	passed := 0
	for _, at := range []time.Duration{2500, 1000, 2500, 2500, 2500} {
		if takeAt(t, s, "k", l, t0.Add(at*time.Millisecond)).Allowed {
			passed++
		}
	}
	// 2.5 s refill two whole tokens, however the times arrive.
	if passed != 2 {
		t.Errorf("%d passed after the bucket was drained, 2.5 s of a token a second; want 2", passed)
	}
}

// TestReclaimKeepsTheClock: a bucket reclaimed at another key's later time
// comes back full, and a request for it with an earlier time is decided at
// the shard's time, so the full bucket it gets is the one it was due.
func TestReclaimKeepsTheClock(t *testing.T) {
	s := NewMemoryStore(MemoryConfig{Shards: 1})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := Limits{PerMinute: 1, PerDay: MaxLimit}
	takeAt(t, s, "a", l, t0)
	takeAt(t, s, "b", l, t0.Add(61*time.Second)) // sweeps a, full by now
	d := takeAt(t, s, "a", l, t0.Add(30*time.Second))
	if !d.Allowed {
		t.Fatalf("a at the shard's time, 61 s after its one request: refused %+v", d)
	}
	// That pass was at 61 s: the next token is 60 s later, not 30.
	if d := takeAt(t, s, "a", l, t0.Add(91*time.Second)); d.Allowed || d.RetryAfter != 30*time.Second {
		t.Errorf("a at 91 s: %+v, want refused with RetryAfter 30s", d)
	}
}

// TestConcurrentPassesWithinTheRate: 64 goroutines hammer one key through
// the middleware, on the real clock, until each has been refused a few times:
// the passes never exceed the bucket's size plus its refill over the time the
// test ran. The run ends on refusals, not after a fixed time, so that a slow
// machine still drains the bucket (it only has to take more than its refill,
// 100 a second).
func TestConcurrentPassesWithinTheRate(t *testing.T) {
	const (
		perMinute = 6_000 // 100 a second
		workers   = 64
		refusals  = 50     // a worker stops at its 50th refusal
		maxEach   = 20_000 // or at this many requests: the bucket never ran dry
	)
	l := Limits{PerMinute: perMinute, PerDay: MaxLimit}
	var passed, refused atomic.Int64
	type workerRefusals struct{}
	h := Middleware(Config{Key: ByClientIP, Limits: l, OnLimited: func(_ http.ResponseWriter, r *http.Request, _ Decision) {
		refused.Add(1)
		*r.Context().Value(workerRefusals{}).(*int) += 1
	}})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { passed.Add(1) }))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range workers {
		wg.Go(func() {
			w := &nopWriter{h: make(http.Header)}
			no := 0 // this worker's refusals
			r := httptest.NewRequest("GET", "/", nil)
			r = r.WithContext(context.WithValue(r.Context(), workerRefusals{}, &no))
			<-start
			for i := 0; i < maxEach && no < refusals; i++ {
				h.ServeHTTP(w, r)
			}
		})
	}
	first := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(first)
	bound := perMinute + int64(math.Ceil(elapsed.Seconds()*perMinute/60)) + 1
	t.Logf("%d passes, %d refused in %v, bound %d", passed.Load(), refused.Load(), elapsed, bound)
	if passed.Load() > bound {
		t.Errorf("%d passes in %v; a %d/min bucket allows at most %d", passed.Load(), elapsed, perMinute, bound)
	}
	if refused.Load() < workers*refusals {
		t.Errorf("%d refused in %v, want %d: the bucket never ran dry, so the bound was not tested", refused.Load(), elapsed, workers*refusals)
	}
}

// TestLimitChangeGrantsNoMore: a 1,000/min key lowered to 10/min for one
// request and raised again six seconds later admits no more in 7 s than at
// 1,000/min all along (2,001 against 1,116 when a window that had filled at
// the lower limit was full at the raised one).
func TestLimitChangeGrantsNoMore(t *testing.T) {
	count := func(lowered bool) int {
		s := NewMemoryStore(MemoryConfig{})
		passed := 0
		for _, st := range limitChangeSteps(lowered) {
			for takeAt(t, s, "k", st.limits, st.at).Allowed {
				passed++
				if st.once {
					break
				}
			}
		}
		return passed
	}
	constant, changed := count(false), count(true)
	if constant != 1116 {
		t.Errorf("constant 1,000/min: %d passes in 7 s, want 1,116", constant)
	}
	if changed > constant {
		t.Errorf("lowered and raised again: %d passes in 7 s, more than %d at the higher limit all along", changed, constant)
	}
}

type limitStep struct {
	at     time.Time
	limits Limits
	once   bool // one request, not as many as pass
}

// limitChangeSteps is the history of TestLimitChangeGrantsNoMore: as many
// requests as pass at 0, one at 1 s (at 10/min if lowered), and as many as
// pass at 7 s.
func limitChangeSteps(lowered bool) []limitStep {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	high, low := Limits{PerMinute: 1000, PerDay: MaxLimit}, Limits{PerMinute: 1000, PerDay: MaxLimit}
	if lowered {
		low.PerMinute = 10
	}
	return []limitStep{{t0, high, false}, {t0.Add(time.Second), low, true}, {t0.Add(7 * time.Second), high, false}}
}

// TestExtremeLimits: limits up to MaxLimit count every request exactly; larger
// ones are refused by the store and by Middleware's construction.
func TestExtremeLimits(t *testing.T) {
	s := NewMemoryStore(MemoryConfig{})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	top := Limits{PerMinute: MaxLimit, PerDay: MaxLimit}
	for i := 1; i <= 3; i++ {
		d := takeAt(t, s, "k", top, t0)
		if !d.Allowed || d.Minute.Remaining != MaxLimit-i || d.Day.Remaining != MaxLimit-i {
			t.Fatalf("request %d at MaxLimit: %+v, want remaining %d", i, d, MaxLimit-i)
		}
	}
	for _, l := range []Limits{{PerMinute: MaxLimit + 1, PerDay: 1}, {PerMinute: 1, PerDay: MaxLimit + 1}, {PerMinute: math.MaxInt64, PerDay: math.MaxInt64}, {PerMinute: 0, PerDay: 1}, {PerMinute: 1, PerDay: -1}} {
		if _, err := s.Take(context.Background(), Charge{Key: "k", Limits: l}, t0); !errors.Is(err, ErrInvalidLimits) {
			t.Errorf("%+v: err %v, want ErrInvalidLimits", l, err)
		}
		if err := l.Validate(); !errors.Is(err, ErrInvalidLimits) {
			t.Errorf("%+v: Validate %v, want ErrInvalidLimits", l, err)
		}
	}
	if err := (Config{Key: ByClientIP, Limits: Limits{PerDay: math.MaxInt64}}).Validate(); !errors.Is(err, ErrInvalidLimits) {
		t.Errorf("Config.Validate with PerDay MaxInt64: %v", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Middleware accepted PerDay = MaxInt64")
			}
		}()
		Middleware(Config{Key: ByClientIP, Limits: Limits{PerDay: math.MaxInt64}})
	}()
	// Through the middleware, the headers show the exact figures.
	h := Middleware(Config{Key: ByClientIP, Limits: top, Now: func() time.Time { return t0 }})(statusHandler)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	want := strconv.Itoa(MaxLimit - 1)
	if got := rec.Header().Get("X-RateLimit-Daily-Remaining"); rec.Code != 200 || got != want {
		t.Errorf("at MaxLimit: %d Daily-Remaining %q, want 200 %q", rec.Code, got, want)
	}
}

// TestRetryAtRetryAfterAlwaysPasses: over random limits and histories, a
// refused request made again exactly Retry-After (the header's whole seconds)
// later passes, and one made a millisecond before RetryAfter does not.
func TestRetryAtRetryAfterAlwaysPasses(t *testing.T) {
	r := testrand.New(t)
	for h := 0; h < 2000; h++ {
		s := NewMemoryStore(MemoryConfig{})
		l := Limits{PerMinute: 1 + r.IntN(200), PerDay: 1 + r.IntN(5000)}
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(time.Second))))
		var d Decision
		for i := 0; i < 10_000; i++ {
			if d = takeAt(t, s, "k", l, now); !d.Allowed {
				break
			}
			now = now.Add(time.Duration(r.Int64N(int64(time.Second))))
		}
		if d.Allowed {
			continue
		}
		if d.RetryAfter > time.Millisecond {
			if e := takeAt(t, s, "k", l, now.Add(d.RetryAfter-time.Millisecond)); e.Allowed {
				t.Fatalf("history %d, %+v: passed 1 ms before RetryAfter %v", h, l, d.RetryAfter)
			}
		}
		at := now.Add(time.Duration(seconds.Ceil(d.RetryAfter)) * time.Second)
		if e := takeAt(t, s, "k", l, at); !e.Allowed {
			t.Fatalf("history %d, %+v: refused at Retry-After %d s: %+v", h, l, seconds.Ceil(d.RetryAfter), e)
		}
	}
}
