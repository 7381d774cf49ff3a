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

	"github.com/gatehouse-go/gatehouse/internal/testrand"
	"github.com/gatehouse-go/gatehouse/ratelimit/internal/gcra"
)

const month = 30 * 24 * time.Hour

// win is a Window in a test's table: limit, remaining, reset and period.
func win(limit, remaining int, reset, period time.Duration) Window {
	return Window{Limit: limit, Remaining: remaining, Reset: reset, Period: period}
}

// ownerWin is win of an owner's window.
func ownerWin(limit, remaining int, reset, period time.Duration) Window {
	w := win(limit, remaining, reset, period)
	w.Owner = true
	return w
}

// take is a MemoryStore's Take of c at t, failing the test on an error.
func take(t *testing.T, s *MemoryStore, c Charge, at time.Time) Decision {
	t.Helper()
	return noError(t)(s.Take(context.Background(), c, at))
}

// peek is a MemoryStore's Peek of c at t, failing the test on an error.
func peek(t *testing.T, s *MemoryStore, c Charge, at time.Time) Decision {
	t.Helper()
	return noError(t)(s.Peek(context.Background(), c, at))
}

// noError returns a store's decision, failing t on the store's error.
func noError(t *testing.T) func(Decision, error) Decision {
	return func(d Decision, err error) Decision {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
}

// TestWindowsOfManyPeriods: a key with a second, an hour and a 30-day window
// beside its minute and day, on an injected clock: every window of every
// decision, exactly, and the window that refuses.
func TestWindowsOfManyPeriods(t *testing.T) {
	c := Charge{Key: "k", Limits: Limits{PerMinute: 100, PerDay: 1000,
		More: []Rate{{Limit: 2, Period: time.Second}, {Limit: 3, Period: time.Hour}, {Limit: 4, Period: month}}}}
	s := NewMemoryStore(MemoryConfig{})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	steps := []struct {
		at   time.Duration
		want Decision
	}{
		{0, Decision{Allowed: true, Minute: win(100, 99, 600*ms, time.Minute), Day: win(1000, 999, 86400*ms, 24*time.Hour),
			More: []Window{win(2, 1, 500*ms, time.Second), win(3, 2, 20*time.Minute, time.Hour), win(4, 3, month/4, month)}}},
		{0, Decision{Allowed: true, Minute: win(100, 98, 1200*ms, time.Minute), Day: win(1000, 998, 172800*ms, 24*time.Hour),
			More: []Window{win(2, 0, time.Second, time.Second), win(3, 1, 40*time.Minute, time.Hour), win(4, 2, month/2, month)}}},
		// The second's window is out: refused until its next token, half a second.
		{0, Decision{Minute: win(100, 98, 1200*ms, time.Minute), Day: win(1000, 998, 172800*ms, 24*time.Hour),
			More:       []Window{win(2, 0, time.Second, time.Second), win(3, 1, 40*time.Minute, time.Hour), win(4, 2, month/2, month)},
			RetryAfter: 500 * ms}},
		{500 * ms, Decision{Allowed: true, Minute: win(100, 97, 1300*ms, time.Minute), Day: win(1000, 997, 258700*ms, 24*time.Hour),
			More: []Window{win(2, 0, time.Second, time.Second), win(3, 0, time.Hour-500*ms, time.Hour), win(4, 1, 3*month/4-500*ms, month)}}},
		// Now the hour is out: a token back 20 minutes after the first request.
		{1500 * ms, Decision{Minute: win(100, 99, 300*ms, time.Minute), Day: win(1000, 997, 257700*ms, 24*time.Hour),
			More:       []Window{win(2, 2, 0, time.Second), win(3, 0, time.Hour-1500*ms, time.Hour), win(4, 1, 3*month/4-1500*ms, month)},
			RetryAfter: 20*time.Minute - 1500*ms}},
		{20 * time.Minute, Decision{Allowed: true, Minute: win(100, 99, 600*ms, time.Minute), Day: win(1000, 999, 86400*ms, 24*time.Hour),
			More: []Window{win(2, 1, 500*ms, time.Second), win(3, 0, time.Hour, time.Hour), win(4, 0, month-20*time.Minute, month)}}},
		// Two hours on, the hour is full again but the 30 days are not:
		// refused until a quarter of 30 days after the first request.
		{140 * time.Minute, Decision{Minute: win(100, 100, 0, time.Minute), Day: win(1000, 1000, 0, 24*time.Hour),
			More:       []Window{win(2, 2, 0, time.Second), win(3, 3, 0, time.Hour), win(4, 0, month-140*time.Minute, month)},
			RetryAfter: month/4 - 140*time.Minute}},
		{month / 4, Decision{Allowed: true, Minute: win(100, 99, 600*ms, time.Minute), Day: win(1000, 999, 86400*ms, 24*time.Hour),
			More: []Window{win(2, 1, 500*ms, time.Second), win(3, 2, 20*time.Minute, time.Hour), win(4, 0, month, month)}}},
	}
	for i, st := range steps {
		d := take(t, s, c, t0.Add(st.at))
		if !reflect.DeepEqual(d, st.want) {
			t.Fatalf("step %d at %v:\n got  %+v\n want %+v", i, st.at, d, st.want)
		}
		if d.Allowed {
			continue
		}
		if p := peek(t, s, c, t0.Add(st.at+d.RetryAfter-ms)); p.Allowed {
			t.Errorf("step %d: a millisecond before RetryAfter: allowed", i)
		}
		if p := peek(t, s, c, t0.Add(st.at+d.RetryAfter)); !p.Allowed {
			t.Errorf("step %d: at RetryAfter: refused %+v", i, p)
		}
	}
}

// TestWindowMatchedByPeriod: changing a key's further windows keeps the debt
// of a period it still has (even moved in the order), starts a new period
// full, and drops one it no longer has.
func TestWindowMatchedByPeriod(t *testing.T) {
	s := NewMemoryStore(MemoryConfig{})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := Limits{PerMinute: 100, PerDay: 1000, More: []Rate{{Limit: 2, Period: time.Hour}, {Limit: 2, Period: 2 * time.Hour}}}
	take(t, s, Charge{Key: "k", Limits: l}, t0)
	l2 := Limits{PerMinute: 100, PerDay: 1000, More: []Rate{{Limit: 4, Period: 3 * time.Hour}, {Limit: 2, Period: 2 * time.Hour}}}
	d := take(t, s, Charge{Key: "k", Limits: l2}, t0)
	want := []Window{win(4, 3, 45*time.Minute, 3*time.Hour), win(2, 0, 2*time.Hour, 2*time.Hour)}
	if !d.Allowed || !reflect.DeepEqual(d.More, want) {
		t.Errorf("after the change: %+v, want allowed with More %+v", d, want)
	}
	// The hour's window was dropped: back, it starts full.
	d = take(t, s, Charge{Key: "k", Limits: Limits{PerMinute: 100, PerDay: 1000, More: []Rate{{Limit: 2, Period: time.Hour}}}}, t0)
	if want := []Window{win(2, 1, 30*time.Minute, time.Hour)}; !d.Allowed || !reflect.DeepEqual(d.More, want) {
		t.Errorf("the hour back: %+v, want allowed with More %+v", d, want)
	}
}

// TestCost: a request of cost 3 takes 3 tokens from each window, and
// Retry-After is when 3 fit again, not 1.
func TestCost(t *testing.T) {
	s := NewMemoryStore(MemoryConfig{})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := Charge{Key: "k", Limits: Limits{PerMinute: 10, PerDay: 100}, Cost: 3}
	for i, want := range []Decision{
		{Allowed: true, Minute: win(10, 7, 18*time.Second, time.Minute), Day: win(100, 97, 2592*time.Second, 24*time.Hour)},
		{Allowed: true, Minute: win(10, 4, 36*time.Second, time.Minute), Day: win(100, 94, 5184*time.Second, 24*time.Hour)},
		{Allowed: true, Minute: win(10, 1, 54*time.Second, time.Minute), Day: win(100, 91, 7776*time.Second, 24*time.Hour)},
		// One token left, three wanted: 12 s until the minute's debt is 42 s.
		{Minute: win(10, 1, 54*time.Second, time.Minute), Day: win(100, 91, 7776*time.Second, 24*time.Hour), RetryAfter: 12 * time.Second},
	} {
		if d := take(t, s, c, t0); !reflect.DeepEqual(d, want) {
			t.Fatalf("request %d:\n got  %+v\n want %+v", i, d, want)
		}
	}
	if d := take(t, s, c, t0.Add(12*time.Second-time.Millisecond)); d.Allowed {
		t.Errorf("a millisecond before Retry-After: allowed")
	}
	if d := take(t, s, c, t0.Add(12*time.Second)); !d.Allowed || d.Minute.Remaining != 0 {
		t.Errorf("at Retry-After: %+v, want allowed with none left", d)
	}
	// A cost of 1 fits where 3 do not.
	if d := take(t, s, Charge{Key: "k", Limits: c.Limits}, t0.Add(12*time.Second)); d.Allowed {
		t.Errorf("cost 1 with no token left: allowed")
	}
}

// TestCostAboveALimit: a cost above a window's limit never passes; it is
// refused with that window's whole period as Retry-After, and still refused
// then; the request spends nothing.
func TestCostAboveALimit(t *testing.T) {
	s := NewMemoryStore(MemoryConfig{})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := Limits{PerMinute: 10, PerDay: 100, More: []Rate{{Limit: 5, Period: time.Hour}}}
	for _, at := range []time.Duration{0, time.Hour, 48 * time.Hour} {
		d := take(t, s, Charge{Key: "k", Limits: l, Cost: 6}, t0.Add(at))
		if d.Allowed || d.RetryAfter != time.Hour || d.Minute.Remaining != 10 || d.More[0].Remaining != 5 {
			t.Errorf("cost 6 over a 5/hour window at %v: %+v, want refused, RetryAfter 1h, nothing spent", at, d)
		}
	}
	d := take(t, s, Charge{Key: "k", Limits: l, Cost: 11}, t0)
	if d.Allowed || d.RetryAfter != time.Hour {
		t.Errorf("cost 11 over a 10/minute and a 5/hour window: %+v, want RetryAfter 1h, the longer", d)
	}
	// And what the middleware tells: 429, Retry-After 3600, the hour named.
	var ev []Event
	h := Middleware(Config{Key: func(*http.Request) (Charge, bool) { return Charge{Key: "m", Limits: l, Cost: 6}, true },
		Now: func() time.Time { return t0 }, Observe: func(e Event) { ev = append(ev, e) }})(statusHandler)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "3600" ||
		!reflect.DeepEqual(ev, []Event{{Result: Refused, Window: "hour"}}) {
		t.Errorf("middleware: %d Retry-After %q events %+v, want 429, 3600, refused by hour", rec.Code, rec.Header().Get("Retry-After"), ev)
	}
}

// TestInvalidCharges: out-of-range costs and windows get ErrInvalidLimits from
// Take and Peek.
func TestInvalidCharges(t *testing.T) {
	s := NewMemoryStore(MemoryConfig{})
	pair := Limits{PerMinute: 1, PerDay: 1}
	with := func(r ...Rate) Limits { l := pair; l.More = r; return l }
	for name, c := range map[string]Charge{
		"negative cost":         {Key: "k", Limits: pair, Cost: -1},
		"cost above MaxCost":    {Key: "k", Limits: pair, Cost: MaxCost + 1},
		"zero limit":            {Key: "k", Limits: with(Rate{Limit: 0, Period: time.Hour})},
		"limit above MaxLimit":  {Key: "k", Limits: with(Rate{Limit: MaxLimit + 1, Period: time.Hour})},
		"sub-second period":     {Key: "k", Limits: with(Rate{Limit: 1, Period: 1500 * time.Millisecond})},
		"zero period":           {Key: "k", Limits: with(Rate{Limit: 1})},
		"period above 31 days":  {Key: "k", Limits: with(Rate{Limit: 1, Period: MaxPeriod + time.Second})},
		"a minute in More":      {Key: "k", Limits: with(Rate{Limit: 1, Period: time.Minute})},
		"a day in More":         {Key: "k", Limits: with(Rate{Limit: 1, Period: 24 * time.Hour})},
		"two hours in More":     {Key: "k", Limits: with(Rate{Limit: 1, Period: time.Hour}, Rate{Limit: 2, Period: time.Hour})},
		"owner's bad rate":      {Key: "k", Limits: pair, Owner: "o", OwnerLimits: []Rate{{Limit: 1, Period: 0}}},
		"owner's shared period": {Key: "k", Limits: pair, Owner: "o", OwnerLimits: []Rate{{Limit: 1, Period: time.Hour}, {Limit: 1, Period: time.Hour}}},
	} {
		if _, err := s.Take(context.Background(), c, time.Now()); !errors.Is(err, ErrInvalidLimits) {
			t.Errorf("%s: Take err %v, want ErrInvalidLimits", name, err)
		}
		if _, err := s.Peek(context.Background(), c, time.Now()); !errors.Is(err, ErrInvalidLimits) {
			t.Errorf("%s: Peek err %v, want ErrInvalidLimits", name, err)
		}
	}
	if s.Len() != 0 {
		t.Errorf("%d buckets after invalid charges, want 0", s.Len())
	}
	for name, c := range map[string]Charge{
		"MaxCost":                {Key: "k", Limits: pair, Cost: MaxCost},
		"a minute for the owner": {Key: "k", Limits: pair, Owner: "o", OwnerLimits: []Rate{{Limit: 1, Period: time.Minute}}},
		"31 days":                {Key: "k", Limits: with(Rate{Limit: MaxLimit, Period: MaxPeriod})},
	} {
		if _, err := s.Take(context.Background(), c, time.Now()); err != nil {
			t.Errorf("%s: %v, want valid", name, err)
		}
	}
}

// TestOwnerSharedByKeys: two keys of one owner share the owner's allowance; a
// refusal by the owner spends nothing of the key's, and a refusal by the key
// nothing of the owner's.
func TestOwnerSharedByKeys(t *testing.T) {
	s := NewMemoryStore(MemoryConfig{})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	own := []Rate{{Limit: 3, Period: time.Hour}}
	k1 := Charge{Key: "k1", Limits: Limits{PerMinute: 10, PerDay: 100}, Owner: "acme", OwnerLimits: own}
	k2 := k1
	k2.Key = "k2"
	take(t, s, k1, t0)
	take(t, s, k1, t0)
	d := take(t, s, k2, t0)
	want := Decision{Allowed: true, Minute: win(10, 9, 6*time.Second, time.Minute), Day: win(100, 99, 864*time.Second, 24*time.Hour),
		More: []Window{ownerWin(3, 0, time.Hour, time.Hour)}}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("k2's first, the owner's third:\n got  %+v\n want %+v", d, want)
	}
	d = take(t, s, k2, t0)
	want = Decision{Minute: win(10, 9, 6*time.Second, time.Minute), Day: win(100, 99, 864*time.Second, 24*time.Hour),
		More: []Window{ownerWin(3, 0, time.Hour, time.Hour)}, RetryAfter: 20 * time.Minute}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("k2's second, refused by the owner:\n got  %+v\n want %+v", d, want)
	}
	// Nothing of k2's was spent by the refusal: alone, it has 9 left.
	if p := peek(t, s, Charge{Key: "k2", Limits: k2.Limits}, t0); p.Minute.Remaining != 9 || p.Day.Remaining != 99 {
		t.Errorf("k2 after the owner's refusal: %+v, want 9 and 99 left", p)
	}
	// An owner's bucket is apart from a key's of the same name.
	if d := take(t, s, Charge{Key: "acme", Limits: Limits{PerMinute: 10, PerDay: 100}}, t0); !d.Allowed || d.Minute.Remaining != 9 {
		t.Errorf("the key named as the owner: %+v, want its own full bucket", d)
	}

	// A key refused by its own minute spends nothing of its owner's.
	k3 := Charge{Key: "k3", Limits: Limits{PerMinute: 1, PerDay: 100}, Owner: "beta", OwnerLimits: []Rate{{Limit: 10, Period: time.Hour}}}
	take(t, s, k3, t0)
	d = take(t, s, k3, t0)
	want = Decision{Minute: win(1, 0, time.Minute, time.Minute), Day: win(100, 99, 864*time.Second, 24*time.Hour),
		More: []Window{ownerWin(10, 9, 6*time.Minute, time.Hour)}, RetryAfter: time.Minute}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("k3's second, refused by its minute:\n got  %+v\n want %+v", d, want)
	}
	if p := peek(t, s, k3, t0); p.More[0].Remaining != 9 {
		t.Errorf("beta after k3's refusal: %+v, want 9 left", p.More[0])
	}
}

// TestOwnerBucketsReclaimed: owners' buckets are reclaimed as keys' are, by
// Sweep and by Takes as they go.
func TestOwnerBucketsReclaimed(t *testing.T) {
	s := NewMemoryStore(MemoryConfig{Shards: 4})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := Limits{PerMinute: MaxLimit, PerDay: MaxLimit}
	for i := range 100 {
		take(t, s, Charge{Key: "k", Limits: l, Owner: "o" + string(rune('a'+i%26)) + string(rune('a'+i/26)), OwnerLimits: []Rate{{Limit: 2, Period: time.Hour}}}, t0)
	}
	if n := s.Len(); n != 101 {
		t.Fatalf("%d buckets, want 101 (a key and 100 owners)", n)
	}
	if n := s.Sweep(t0.Add(29 * time.Minute)); n != 1 {
		t.Errorf("Sweep at 29 min dropped %d, want 1 (the key): every owner's hour is still spent", n)
	}
	// Takes of one other key, an hour on, reclaim them as they go.
	for range 200 {
		take(t, s, Charge{Key: "busy", Limits: Limits{PerMinute: MaxLimit, PerDay: MaxLimit}}, t0.Add(time.Hour))
	}
	if n := s.Len(); n != 1 {
		t.Errorf("%d buckets after an hour of another key's Takes, want 1 (busy)", n)
	}
	take(t, s, Charge{Key: "k", Limits: l, Owner: "x", OwnerLimits: []Rate{{Limit: 2, Period: time.Hour}}}, t0.Add(time.Hour))
	if n := s.Sweep(t0.Add(2 * time.Hour)); n != 3 || s.Len() != 0 {
		t.Errorf("Sweep two hours on dropped %d (left %d), want 3 and 0", n, s.Len())
	}
}

// TestConcurrentKeysAndOwnerWithinTheRate: 64 goroutines on eight keys of one
// owner, on the real clock: each key's passes stay within its second's window
// and all of them within the owner's, limit plus refill over the time the
// test ran. Key 0's window (20/s) binds it; the owner's (500/s) binds the
// others (100/s each).
func TestConcurrentKeysAndOwnerWithinTheRate(t *testing.T) {
	const (
		keys        = 8
		ownerPerSec = 500
		workers     = 64
		run         = 1500 * time.Millisecond
		maxEach     = 200_000
	)
	perSec := func(k int) int64 {
		if k == 0 {
			return 20
		}
		return 100
	}
	s := NewMemoryStore(MemoryConfig{Shards: 16})
	var charges [keys]Charge
	for i := range charges {
		charges[i] = Charge{Key: "key" + string(rune('a'+i)), Limits: Limits{PerMinute: MaxLimit, PerDay: MaxLimit,
			More: []Rate{{Limit: int(perSec(i)), Period: time.Second}}}, Owner: "acme", OwnerLimits: []Rate{{Limit: ownerPerSec, Period: time.Second}}}
	}
	var passed [keys]atomic.Int64
	var refused atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	deadline := time.Now().Add(run)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < maxEach; i++ {
				k := (w + i) % keys
				d, err := s.Take(context.Background(), charges[k], time.Now())
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					passed[k].Add(1)
				} else {
					refused.Add(1)
				}
				if i%64 == 0 && time.Now().After(deadline) {
					return
				}
			}
		}()
	}
	first := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(first)
	bound := func(perSec int64) int64 { return perSec + int64(math.Ceil(elapsed.Seconds()*float64(perSec))) + 1 }
	var total int64
	for i := range passed {
		p := passed[i].Load()
		total += p
		if p > bound(perSec(i)) {
			t.Errorf("key %d: %d passes in %v; a %d/s window allows at most %d", i, p, elapsed, perSec(i), bound(perSec(i)))
		}
	}
	t.Logf("%d passes (key 0: %d), %d refused in %v, owner's bound %d", total, passed[0].Load(), refused.Load(), elapsed, bound(ownerPerSec))
	if total > bound(ownerPerSec) {
		t.Errorf("owner: %d passes in %v; a %d/s window allows at most %d", total, elapsed, ownerPerSec, bound(ownerPerSec))
	}
	if refused.Load() == 0 {
		t.Errorf("no request refused in %v: the bound was not tested", elapsed)
	}
}

// TestHeadersOfMoreAndOwner: the whole header map of a key with a further
// window and an owner with two, on a pass and on the owner's refusal; the
// event names the owner's day.
func TestHeadersOfMoreAndOwner(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var events []Event
	h := Middleware(Config{
		Key: func(*http.Request) (Charge, bool) {
			return Charge{Key: "k", Limits: Limits{PerMinute: 10, PerDay: 100, More: []Rate{{Limit: 50, Period: time.Hour}}},
				Owner: "acme", OwnerLimits: []Rate{{Limit: 2, Period: 24 * time.Hour}, {Limit: 5, Period: month}}}, true
		},
		Now:     func() time.Time { return t0 },
		Observe: func(e Event) { events = append(events, e) },
	})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	const policy = `"minute";q=10;w=60, "day";q=100;w=86400, "hour";q=50;w=3600, "owner-day";q=2;w=86400, "owner-30d";q=5;w=2592000`
	for i, want := range []struct {
		code   int
		header http.Header
		body   string
	}{
		{200, http.Header{
			"X-Ratelimit-Limit": {"10"}, "X-Ratelimit-Remaining": {"9"}, "X-Ratelimit-Daily-Limit": {"100"}, "X-Ratelimit-Daily-Remaining": {"99"},
			"Ratelimit-Policy": {policy},
			"Ratelimit":        {`"minute";r=9;t=6, "day";r=99;t=864, "hour";r=49;t=72, "owner-day";r=1;t=43200, "owner-30d";r=4;t=518400`},
		}, ""},
		{200, http.Header{
			"X-Ratelimit-Limit": {"10"}, "X-Ratelimit-Remaining": {"8"}, "X-Ratelimit-Daily-Limit": {"100"}, "X-Ratelimit-Daily-Remaining": {"98"},
			"Ratelimit-Policy": {policy},
			"Ratelimit":        {`"minute";r=8;t=12, "day";r=98;t=1728, "hour";r=48;t=144, "owner-day";r=0;t=86400, "owner-30d";r=3;t=1036800`},
		}, ""},
		{429, http.Header{
			"X-Ratelimit-Limit": {"10"}, "X-Ratelimit-Remaining": {"8"}, "X-Ratelimit-Daily-Limit": {"100"}, "X-Ratelimit-Daily-Remaining": {"98"},
			"Ratelimit-Policy":       {policy},
			"Ratelimit":              {`"minute";r=8;t=12, "day";r=98;t=1728, "hour";r=48;t=144, "owner-day";r=0;t=86400, "owner-30d";r=3;t=1036800`},
			"Retry-After":            {"43200"},
			"Content-Type":           {"application/json"},
			"Content-Length":         {"32"},
			"Cache-Control":          {"no-store"},
			"X-Content-Type-Options": {"nosniff"},
		}, "{\"error\":\"Rate limit exceeded\"}\n"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != want.code || !reflect.DeepEqual(rec.Header(), want.header) || rec.Body.String() != want.body {
			t.Errorf("request %d: %d %q\n%v\nwant %d %q\n%v", i, rec.Code, rec.Body.String(), rec.Header(), want.code, want.body, want.header)
		}
	}
	if want := []Event{{Result: Passed}, {Result: Passed}, {Result: Refused, Window: "owner-day"}}; !reflect.DeepEqual(events, want) {
		t.Errorf("events %+v, want %+v", events, want)
	}
}

// TestWindowNames: the rule that names windows in the headers and events.
func TestWindowNames(t *testing.T) {
	for _, tt := range []struct {
		period time.Duration
		owner  bool
		want   string
	}{
		{time.Second, false, "second"}, {90 * time.Second, false, "90s"}, {time.Minute, false, "minute"},
		{2 * time.Minute, false, "2m"}, {time.Hour, false, "hour"}, {90 * time.Minute, false, "90m"},
		{6 * time.Hour, false, "6h"}, {24 * time.Hour, false, "day"}, {7 * 24 * time.Hour, false, "7d"},
		{month, false, "30d"}, {25 * time.Hour, false, "25h"}, {24 * time.Hour, true, "owner-day"}, {time.Hour, true, "owner-hour"},
	} {
		if got := windowName(tt.period, tt.owner); got != tt.want {
			t.Errorf("windowName(%v, %v) = %q, want %q", tt.period, tt.owner, got, tt.want)
		}
	}
}

// mwindow is a window of the reference model, in exact rationals: its debt in
// milliseconds (the time until it is full) and the limit it is counted in.
type mwindow struct {
	debt  *big.Rat
	limit int64
}

// mrate is a window's rule in the model: period in milliseconds and limit.
type mrate struct{ period, limit int64 }

// modelTakeAll is gcra.Take of cost on the model: windows keyed by period;
// pay back the time passed; a changed limit keeps the time until full
// rounded up to the millisecond; a window whose period is new starts full;
// the request adds cost×period/limit to each and passes if each then holds
// at most its period. It returns the windows as the decision sees them (in
// rates' order), and replaces ws only if the request passes.
func modelTakeAll(ws map[int64]*mwindow, rates []mrate, cost, elapsed int64) ([]*mwindow, bool) {
	ok := true
	seen := make([]*mwindow, len(rates))
	for i, r := range rates {
		v := &mwindow{debt: new(big.Rat)}
		if w := ws[r.period]; w != nil {
			v = &mwindow{debt: new(big.Rat).Sub(w.debt, big.NewRat(elapsed, 1)), limit: w.limit}
		}
		if v.debt.Sign() < 0 || v.limit == 0 {
			v.debt.SetInt64(0)
		}
		if v.limit != r.limit {
			v.debt.SetInt(ceilRat(v.debt))
			v.limit = r.limit
		}
		after := new(big.Rat).Add(v.debt, big.NewRat(cost*r.period, r.limit))
		ok = ok && after.Cmp(big.NewRat(r.period, 1)) <= 0
		seen[i] = v
	}
	if ok {
		clear(ws)
		for i, v := range seen {
			w := &mwindow{debt: new(big.Rat).Add(v.debt, big.NewRat(cost*rates[i].period, rates[i].limit)), limit: v.limit}
			ws[rates[i].period] = w
			seen[i] = w
		}
	}
	return seen, ok
}

// modelDecision is what the model's windows, as seen, tell the caller.
func modelDecision(seen []*mwindow, rates []mrate, cost int64, ok bool) Decision {
	var d Decision
	d.Allowed = ok
	var retry int64
	for i, w := range seen {
		p := rates[i].period
		used := ceilRat(new(big.Rat).Mul(w.debt, big.NewRat(w.limit, p)))
		win := Window{Limit: int(w.limit), Remaining: int(w.limit - used.Int64()), Reset: time.Duration(ceilRat(w.debt).Int64()) * time.Millisecond,
			Period: time.Duration(p) * time.Millisecond}
		switch i {
		case 0:
			d.Minute = win
		case 1:
			d.Day = win
		default:
			d.More = append(d.More, win)
		}
		if cost > w.limit {
			retry = max(retry, p)
			continue
		}
		over := new(big.Rat).Add(w.debt, big.NewRat(cost*p, w.limit))
		if over.Sub(over, big.NewRat(p, 1)); over.Sign() > 0 {
			retry = max(retry, ceilRat(over).Int64())
		}
	}
	if !ok {
		d.RetryAfter = time.Duration(retry) * time.Millisecond
	}
	return d
}

// TestBucketWindowsAreExact: gcra's integers give exactly what exact
// rationals give, over random histories of windows of random periods (added,
// dropped, reordered), limits up to MaxLimit, costs up to MaxCost, and clocks
// that step back.
func TestBucketWindowsAreExact(t *testing.T) {
	r := testrand.New(t)
	periods := []time.Duration{time.Second, 7 * time.Second, time.Hour, 6 * time.Hour, 7 * 24 * time.Hour, month, MaxPeriod}
	for h := range 300 {
		ws := map[int64]*mwindow{}
		var clock int64 = 1_700_000_000_000
		b := gcra.Bucket{At: clock}
		now := clock
		l := Limits{PerMinute: testrand.Limit(r, MaxLimit), PerDay: testrand.Limit(r, MaxLimit)}
		for i := range 300 {
			if r.IntN(10) == 0 {
				l = Limits{PerMinute: testrand.Limit(r, MaxLimit), PerDay: testrand.Limit(r, MaxLimit)}
				for _, j := range r.Perm(len(periods))[:r.IntN(4)] {
					l.More = append(l.More, Rate{Limit: testrand.Limit(r, MaxLimit), Period: periods[j]})
				}
			}
			if r.IntN(8) == 0 {
				now -= r.Int64N(5000)
			} else {
				now += r.Int64N(3_000_000)
			}
			cost := 1
			switch r.IntN(4) {
			case 0:
				cost = 1 + r.IntN(20)
			case 1:
				cost = 1 + r.IntN(MaxCost)
			}
			rates := []mrate{{minuteMs, int64(l.PerMinute)}, {dayMs, int64(l.PerDay)}}
			for _, m := range l.More {
				rates = append(rates, mrate{m.Period.Milliseconds(), int64(m.Limit)})
			}
			seen, wantOK := modelTakeAll(ws, rates, int64(cost), max(now-clock, 0))
			if wantOK {
				clock = max(clock, now)
			}
			d := takeDecide(&b, l, cost, now)
			want := modelDecision(seen, rates, int64(cost), wantOK)
			if !reflect.DeepEqual(d, want) {
				t.Fatalf("history %d step %d, limits %+v cost %d:\n got  %+v\n want %+v", h, i, l, cost, d, want)
			}
		}
	}
}

// FuzzBucketTake: over any history the fuzzer makes (limits of every scale,
// further windows of every valid period, costs up to MaxCost, clocks that
// step back), gcra's Take and Decide give exactly what the model in
// exact rationals gives.
func FuzzBucketTake(f *testing.F) {
	f.Add([]byte{0x81, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		next := func(n int) uint64 { // the next n bytes, little-endian (zeros past the end)
			var v uint64
			for i := range n {
				if len(data) > 0 {
					v |= uint64(data[0]) << (8 * i)
					data = data[1:]
				}
			}
			return v
		}
		limit := func() int { // of every scale, as testrand.Limit
			v := next(7)
			return 1 + int((v>>2)%[...]uint64{10, 2000, 1_000_000, MaxLimit}[v&3])
		}
		ws := map[int64]*mwindow{}
		var clock int64 = 1_700_000_000_000
		b := gcra.Bucket{At: clock}
		now := clock
		var l Limits
		for step := 0; len(data) > 0 && step < 64; step++ {
			flags := next(1)
			if step == 0 || flags&1 != 0 {
				l = Limits{PerMinute: limit(), PerDay: limit()}
				for n := (flags >> 1) & 3; n > 0; n-- {
					p := time.Duration(1+next(4)%uint64(MaxPeriod/time.Second)) * time.Second
					r := Rate{Limit: limit(), Period: p}
					if (Limits{PerMinute: 1, PerDay: 1, More: append(l.More[:len(l.More):len(l.More)], r)}).Validate() == nil {
						l.More = append(l.More, r)
					}
				}
			}
			cost := 1 + int(next(3)%MaxCost)
			if flags&8 == 0 {
				cost = 1 + int(flags>>4)
			}
			d := int64(next(3)) // up to 4.6 hours
			if flags&0x80 != 0 {
				d = -d % 10_000
			}
			now += d
			rates := []mrate{{minuteMs, int64(l.PerMinute)}, {dayMs, int64(l.PerDay)}}
			for _, m := range l.More {
				rates = append(rates, mrate{m.Period.Milliseconds(), int64(m.Limit)})
			}
			seen, wantOK := modelTakeAll(ws, rates, int64(cost), max(now-clock, 0))
			if wantOK {
				clock = max(clock, now)
			}
			if got, want := takeDecide(&b, l, cost, now), modelDecision(seen, rates, int64(cost), wantOK); !reflect.DeepEqual(got, want) {
				t.Fatalf("step %d, limits %+v cost %d:\n got  %+v\n want %+v", step, l, cost, got, want)
			}
		}
	})
}

// TestFurtherWindowsReclaimed: the further windows a shard keeps beside its
// buckets go with them, when reclaimed and when a key's limits drop them.
func TestFurtherWindowsReclaimed(t *testing.T) {
	s := NewMemoryStore(MemoryConfig{Shards: 4})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	more := func() int {
		n := 0
		for i := range s.shards {
			n += len(s.shards[i].more)
		}
		return n
	}
	l := Limits{PerMinute: 10, PerDay: 100, More: []Rate{{Limit: 5, Period: time.Hour}}}
	for i := range 300 {
		take(t, s, Charge{Key: "k" + strconv.Itoa(i), Limits: l, Owner: "o" + strconv.Itoa(i%7), OwnerLimits: []Rate{{Limit: 100, Period: time.Hour}}}, t0)
	}
	if n := more(); n != 307 {
		t.Fatalf("%d further windows kept, want 307 (300 keys, 7 owners)", n)
	}
	// A key whose limits drop its further windows drops them here too.
	take(t, s, Charge{Key: "k0", Limits: Limits{PerMinute: 10, PerDay: 100, More: []Rate{}}}, t0)
	if n := more(); n != 306 {
		t.Errorf("%d further windows kept after k0 dropped its, want 306", n)
	}
	if n := s.Sweep(t0.Add(time.Hour)); n != 307 || more() != 0 {
		t.Errorf("Sweep an hour on dropped %d buckets, %d further windows left; want 307 and 0", n, more())
	}
}

// TestConfigMoreIsTheDefault: a key whose More is nil has the Config's
// further windows, as it has its PerMinute and PerDay; an empty More has none.
func TestConfigMoreIsTheDefault(t *testing.T) {
	var more []Rate
	h := Middleware(Config{
		Key:    func(*http.Request) (Charge, bool) { return Charge{Key: "k", Limits: Limits{More: more}}, true },
		Limits: Limits{PerMinute: 10, PerDay: 100, More: []Rate{{Limit: 5, Period: time.Hour}}},
		Now:    func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) },
	})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, tt := range []struct {
		more   []Rate
		policy string
	}{
		{nil, `"minute";q=10;w=60, "day";q=100;w=86400, "hour";q=5;w=3600`},
		{[]Rate{}, ""},
	} {
		more = tt.more
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if got := rec.Header().Get("RateLimit-Policy"); got != tt.policy {
			t.Errorf("More %#v: RateLimit-Policy %q, want %q", tt.more, got, tt.policy)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Middleware with an invalid Config.Limits.More did not panic")
		}
	}()
	Middleware(Config{Key: ByClientIP, Limits: Limits{More: []Rate{{Limit: 1, Period: time.Millisecond}}}})
}
