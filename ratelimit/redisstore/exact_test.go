package redisstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/redistest"
	"github.com/gatehouse-go/gatehouse/internal/seconds"
	"github.com/gatehouse-go/gatehouse/internal/testclock"
	"github.com/gatehouse-go/gatehouse/internal/testrand"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/redis/go-redis/v9"
)

// newFakeClock is the time a test gives the script in place of Redis's TIME.
func newFakeClock() *testclock.Clock {
	return testclock.New(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
}

func mustTake(t *testing.T, s ratelimit.Store, key string, l ratelimit.Limits, now time.Time) ratelimit.Decision {
	t.Helper()
	return mustCharge(t, s, ratelimit.Charge{Key: key, Limits: l}, now)
}

func mustCharge(t *testing.T, s ratelimit.Store, c ratelimit.Charge, now time.Time) ratelimit.Decision {
	t.Helper()
	d, err := s.Take(context.Background(), c, now)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestRandomHistoriesAgreeWithMemoryStore replays random histories (limits of
// every scale and their changes, times from milliseconds to days apart, clocks
// that step back, retries at exactly Retry-After) on this store and on
// ratelimit.MemoryStore: every decision is the same, to the millisecond.
// Seeded: replay a failure with -seed=N or GATEHOUSE_SEED=N.
func TestRandomHistoriesAgreeWithMemoryStore(t *testing.T) {
	s := redistest.Start(t)
	r := testrand.New(t)
	clock := newFakeClock()
	rs := exactStore(exactClient(t, s), Options{Now: clock.Now})
	histories, steps := 300, 40
	if testing.Short() {
		histories = 50
	}
	seen := map[string]int{}
	for h := range histories {
		ms := ratelimit.NewMemoryStore(ratelimit.MemoryConfig{})
		key := "h" + strconv.Itoa(h)
		l := ratelimit.Limits{PerMinute: testrand.Limit(r, ratelimit.MaxLimit), PerDay: testrand.Limit(r, ratelimit.MaxLimit)}
		if r.IntN(2) == 0 { // small limits, to see refusals often
			l = ratelimit.Limits{PerMinute: 1 + r.IntN(20), PerDay: 1 + r.IntN(200)}
		}
		clock.Set(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(time.Hour)))))
		var last ratelimit.Decision
		for i := range steps {
			switch k := r.IntN(20); {
			case k == 0:
				l.PerMinute = testrand.Limit(r, ratelimit.MaxLimit)
				seen["limit change"]++
			case k == 1:
				l.PerDay = 1 + r.IntN(300)
				seen["limit change"]++
			case k == 2:
				clock.Advance(-time.Duration(r.Int64N(int64(5 * time.Second)))) // steps back
				seen["clock back"]++
			case k == 3:
				clock.Advance(time.Duration(r.Int64N(int64(30 * time.Hour))))
			case k < 8 && !last.Allowed && last.RetryAfter > 0:
				clock.Advance(time.Duration(seconds.Ceil(last.RetryAfter)) * time.Second) // exactly at Retry-After
				seen["retry at Retry-After"]++
			case k < 12:
				clock.Advance(time.Duration(r.Int64N(int64(3 * time.Second))))
			}
			want := mustTake(t, ms, "k", l, clock.Now())
			got := mustTake(t, rs, key, l, time.Time{})
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("history %d step %d at %v, %+v:\n redis  %+v\n memory %+v", h, i, clock.Now(), l, got, want)
			}
			last = got
			if !got.Allowed {
				seen["refusal"]++
			}
		}
	}
	for _, kind := range []string{"limit change", "clock back", "retry at Retry-After", "refusal"} {
		if seen[kind] == 0 {
			t.Errorf("no %s in %d histories: the test did not cover it", kind, histories)
		}
	}
	t.Logf("%d histories of %d steps: %v", histories, steps, seen)
}

// TestRedisClockNeverGoesBack: a script time earlier than the bucket's last
// change (Redis's clock stepped back) is decided at the later time: the refill
// in between is counted once.
func TestRedisClockNeverGoesBack(t *testing.T) {
	s := redistest.Start(t)
	clock := newFakeClock()
	t0 := clock.Now()
	rs := exactStore(exactClient(t, s), Options{Now: clock.Now})
	l := ratelimit.Limits{PerMinute: 60, PerDay: ratelimit.MaxLimit} // a token a second
	for range 60 {
		mustTake(t, rs, "k", l, time.Time{})
	}
	passed := 0
	for _, at := range []time.Duration{2500, 1000, 2500, 2500, 2500} {
		clock.Set(t0.Add(at * time.Millisecond))
		if mustTake(t, rs, "k", l, time.Time{}).Allowed {
			passed++
		}
	}
	if passed != 2 {
		t.Errorf("%d passed after the bucket was drained, 2.5 s of a token a second; want 2", passed)
	}
}

// TestRedisRetryAtRetryAfterAlwaysPasses: over random limits and histories,
// a refused request made again exactly Retry-After (the header's whole
// seconds) later passes, and one made a millisecond before RetryAfter does
// not: thousands of refusals, each retried, on chains of requests that run a
// key dry again and again. The first chain replays a seed on which the float
// arithmetic of the old script refused retry 19,349 (Go and Lua disagreed by a
// rounding); the second is random.
func TestRedisRetryAtRetryAfterAlwaysPasses(t *testing.T) {
	s := redistest.Start(t)
	const pinned = 1795836359952574425
	retryChain(t, s, "pinned", testrand.Seeded(pinned), 19400)
	n := 5000
	if testing.Short() {
		n = 500
	}
	retryChain(t, s, "random", testrand.New(t), n)
}

func retryChain(t *testing.T, s *redistest.Server, name string, r *rand.Rand, retries int) {
	t.Helper()
	clock := newFakeClock()
	rs := exactStore(exactClient(t, s), Options{Now: clock.Now, Prefix: name})
	var key string
	var l ratelimit.Limits
	for n := 0; n < retries; n++ {
		if n%20 == 0 { // a new key every 20 retries
			key = "r" + strconv.Itoa(n)
			// Rates that divide a minute evenly give Retry-Afters of exactly
			// whole seconds, where rounding is most likely to refuse a retry.
			l = ratelimit.Limits{PerMinute: []int{1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60, 7, 13, 45}[r.IntN(15)], PerDay: 1 + r.IntN(2000)}
			clock.Advance(time.Duration(r.Int64N(3600)) * time.Second)
		}
		var d ratelimit.Decision
		for d = mustTake(t, rs, key, l, time.Time{}); d.Allowed; d = mustTake(t, rs, key, l, time.Time{}) {
			if r.IntN(2) == 0 { // else the same instant
				clock.Advance(time.Duration(r.Int64N(300)) * time.Millisecond)
			}
		}
		refusedAt := clock.Now()
		if d.RetryAfter > time.Millisecond {
			clock.Set(refusedAt.Add(d.RetryAfter - time.Millisecond))
			if e := mustTake(t, rs, key, l, time.Time{}); e.Allowed {
				t.Fatalf("%s chain, retry %d, %+v: passed 1 ms before RetryAfter %v", name, n, l, d.RetryAfter)
			}
		}
		clock.Set(refusedAt.Add(time.Duration(seconds.Ceil(d.RetryAfter)) * time.Second))
		if e := mustTake(t, rs, key, l, time.Time{}); !e.Allowed {
			t.Fatalf("%s chain, retry %d, %+v: refused at Retry-After %d s: %+v", name, n, l, seconds.Ceil(d.RetryAfter), e)
		}
		if r.IntN(2) == 0 {
			clock.Advance(time.Duration(r.Int64N(1000)) * time.Millisecond)
		}
	}
}

// TestRedisLimitChangeGrantsNoMore: a 1,000/min key lowered to 10/min for one
// request and raised again six seconds later admits no more in 7 s than at
// 1,000/min all along (2,001 against 1,116 when the raise refilled it).
func TestRedisLimitChangeGrantsNoMore(t *testing.T) {
	s := redistest.Start(t)
	clock := newFakeClock()
	rs := exactStore(exactClient(t, s), Options{Now: clock.Now})
	t0 := clock.Now()
	count := func(key string, lowered bool) int {
		high, low := ratelimit.Limits{PerMinute: 1000, PerDay: ratelimit.MaxLimit}, ratelimit.Limits{PerMinute: 1000, PerDay: ratelimit.MaxLimit}
		if lowered {
			low.PerMinute = 10
		}
		passed := 0
		for _, st := range []struct {
			at     time.Duration
			limits ratelimit.Limits
			once   bool
		}{{0, high, false}, {time.Second, low, true}, {7 * time.Second, high, false}} {
			clock.Set(t0.Add(st.at))
			for mustTake(t, rs, key, st.limits, time.Time{}).Allowed {
				passed++
				if st.once {
					break
				}
			}
		}
		return passed
	}
	constant, changed := count("constant", false), count("changed", true)
	if constant != 1116 {
		t.Errorf("constant 1,000/min: %d passes in 7 s, want 1,116", constant)
	}
	if changed > constant {
		t.Errorf("lowered and raised again: %d passes in 7 s, more than %d at the higher limit all along", changed, constant)
	}
}

// TestRedisExtremeLimits: at MaxLimit every request is counted exactly;
// above it the store refuses the limits without asking Redis. (The clock
// stands still: at MaxLimit a millisecond refills 75 billion requests.)
func TestRedisExtremeLimits(t *testing.T) {
	s := redistest.Start(t)
	rs := exactStore(exactClient(t, s), Options{Now: newFakeClock().Now})
	top := ratelimit.Limits{PerMinute: ratelimit.MaxLimit, PerDay: ratelimit.MaxLimit}
	for i := 1; i <= 3; i++ {
		d := mustTake(t, rs, "k", top, time.Time{})
		if !d.Allowed || d.Minute.Remaining != ratelimit.MaxLimit-i || d.Day.Remaining != ratelimit.MaxLimit-i {
			t.Fatalf("request %d at MaxLimit: %+v, want remaining %d", i, d, ratelimit.MaxLimit-i)
		}
	}
	for _, l := range []ratelimit.Limits{{PerMinute: ratelimit.MaxLimit + 1, PerDay: 1}, {PerMinute: 1, PerDay: math.MaxInt64}} {
		if _, err := rs.Take(context.Background(), ratelimit.Charge{Key: "k", Limits: l}, time.Time{}); !errors.Is(err, ratelimit.ErrInvalidLimits) {
			t.Errorf("%+v: %v, want ErrInvalidLimits", l, err)
		}
	}
}

// TestSkewedCallersAgree: two replicas whose clocks are an hour apart, on one
// Redis, decide one key as one: the time each gives Take is ignored and
// Redis's TIME decides. A script that used the caller's time would let the
// replica an hour ahead through, its bucket refilled.
func TestSkewedCallersAgree(t *testing.T) {
	s := redistest.Start(t)
	ahead, behind := exactStore(exactClient(t, s), Options{}), exactStore(exactClient(t, s), Options{})
	l := ratelimit.Limits{PerMinute: 1, PerDay: 100}
	began := time.Now()
	real := began
	if d := mustTake(t, behind, "k", l, real.Add(-time.Hour)); !d.Allowed {
		t.Fatalf("first request refused: %+v", d)
	}
	a := mustTake(t, ahead, "k", l, real.Add(time.Hour))
	b := mustTake(t, behind, "k", l, real.Add(-time.Hour))
	if a.Allowed || b.Allowed {
		t.Fatalf("second and third requests of a 1/min key within a second: ahead %+v, behind %+v; want both refused", a, b)
	}
	// Both a minute, less the time the test took (Redis's clock ran no
	// longer; a second more for the two clocks' rounding), from a token.
	took := time.Since(began)
	for _, d := range []ratelimit.Decision{a, b} {
		if d.RetryAfter > time.Minute || d.RetryAfter < time.Minute-took-time.Second {
			t.Errorf("RetryAfter %v, %v after the first request; want just under a minute on either replica", d.RetryAfter, took)
		}
	}
}

// TestRepeatedDecisionChargesOnce: the script run twice with one decision id
// (go-redis's retry after a lost reply) takes one token and answers allowed
// both times; ids are remembered for the key's last idsKept (32) allowed
// decisions.
func TestRepeatedDecisionChargesOnce(t *testing.T) {
	s := redistest.Start(t)
	rs := exactStore(exactClient(t, s), Options{Now: newFakeClock().Now})
	ctx := context.Background()
	l := ratelimit.Limits{PerMinute: 100, PerDay: 1000}
	id := rs.nextID()
	for i := range 2 {
		d, err := rs.take(ctx, &ratelimit.Charge{Key: "k", Limits: l}, id)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed || d.Minute.Remaining != 99 {
			t.Fatalf("run %d of one decision: %+v, want allowed with 99 left", i+1, d)
		}
	}
	for i := range idsKept {
		mustTake(t, rs, "k", l, time.Time{})
		d, err := rs.take(ctx, &ratelimit.Charge{Key: "k", Limits: l}, id)
		if err != nil {
			t.Fatal(err)
		}
		want := 99 - (i + 1)
		if i == idsKept-1 { // forgotten: a 33rd id pushed it out
			want--
		}
		if !d.Allowed || d.Minute.Remaining != want {
			t.Fatalf("repeat after %d other decisions: %+v, want allowed with %d left", i+1, d, want)
		}
	}
}

// TestLostReplyChargesOnce: a proxy on a real socket drops the reply to the
// first decision and closes the connection after Redis ran the script;
// NewFromURL's client retries the command once, on a new connection, and the
// key is charged one token, not two.
func TestLostReplyChargesOnce(t *testing.T) {
	s := redistest.Start(t)
	p := newDropProxy(t, s.Addr)
	rs := exactURLStore(t, "redis://"+p.addr()+"/0", Options{Now: newFakeClock().Now})
	l := ratelimit.Limits{PerMinute: 100, PerDay: 1000}
	mustTake(t, rs, "warm", l, time.Time{}) // loads the script: the next call is one EVALSHA
	p.drop.Store(true)
	d := mustTake(t, rs, "k", l, time.Time{})
	if p.dropped.Load() != 1 {
		t.Fatalf("the proxy dropped %d replies, want 1", p.dropped.Load())
	}
	if !d.Allowed || d.Minute.Remaining != 99 || d.Day.Remaining != 999 {
		t.Errorf("decision whose first reply was lost: %+v, want allowed with 99 and 999 left", d)
	}
	if d := mustTake(t, rs, "k", l, time.Time{}); d.Minute.Remaining != 98 {
		t.Errorf("next decision: %d left, want 98", d.Minute.Remaining)
	}
}

// dropProxy forwards TCP to Redis; armed, it lets the next EVALSHA through to
// Redis, then drops Redis's reply and closes both connections.
type dropProxy struct {
	ln      net.Listener
	target  string
	drop    atomic.Bool
	dropped atomic.Int64
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
}

func newDropProxy(t *testing.T, target string) *dropProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *dropProxy) addr() string { return p.ln.Addr().String() }

func (p *dropProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *dropProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		r, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, r)
		p.mu.Unlock()
		var dropNext atomic.Bool
		p.wg.Add(2)
		go func() { // caller to Redis
			defer p.wg.Done()
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if bytes.Contains(bytes.ToLower(buf[:n]), []byte("evalsha")) && p.drop.CompareAndSwap(true, false) {
						dropNext.Store(true)
					}
					if _, werr := r.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					r.Close()
					return
				}
			}
		}()
		go func() { // Redis to caller
			defer p.wg.Done()
			buf := make([]byte, 64<<10)
			for {
				n, err := r.Read(buf)
				if n > 0 && dropNext.Load() {
					p.dropped.Add(1)
					c.Close()
					r.Close()
					return
				}
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					c.Close()
					return
				}
			}
		}()
	}
}

// TestRedisConcurrentPassesWithinTheRate: 32 goroutines hammer one key on
// Redis's own clock until each has been refused a few times: the passes never
// exceed the bucket's size plus its refill over the time the test ran. The run
// ends on refusals, not after a fixed time, so that a slow machine still drains
// the bucket (it only has to take more than its refill, 10 a second).
func TestRedisConcurrentPassesWithinTheRate(t *testing.T) {
	const (
		perMinute = 600 // 10 a second
		workers   = 32
		refusals  = 20   // a worker stops at its 20th refusal
		maxEach   = 2000 // or at this many requests: the bucket never ran dry
	)
	s := redistest.Start(t)
	rs := New(newClient(t, s), Options{Timeout: 5 * time.Second})
	l := ratelimit.Limits{PerMinute: perMinute, PerDay: ratelimit.MaxLimit}
	var passed, refused atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	first := time.Now()
	for range workers {
		wg.Go(func() {
			<-start
			for i, no := 0, 0; i < maxEach && no < refusals; i++ {
				d, err := rs.Take(context.Background(), ratelimit.Charge{Key: "k", Limits: l}, time.Time{})
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					passed.Add(1)
				} else {
					refused.Add(1)
					no++
				}
			}
		})
	}
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

// randomRates returns up to n rates of distinct periods from a pool of every
// scale (a second to 31 days), minute and day only when pair is false, with
// limits small enough to run dry and now and then of every scale.
func randomRates(r *rand.Rand, n int, pair bool) []ratelimit.Rate {
	pool := []time.Duration{time.Second, 2 * time.Second, 10 * time.Second, 90 * time.Second, time.Hour, 7 * 24 * time.Hour, ratelimit.MaxPeriod}
	if !pair {
		pool = append(pool, time.Minute, 24*time.Hour)
	}
	var rates []ratelimit.Rate
	for _, i := range r.Perm(len(pool))[:r.IntN(n+1)] {
		limit := 1 + r.IntN(30)
		if r.IntN(6) == 0 {
			limit = testrand.Limit(r, ratelimit.MaxLimit)
		}
		rates = append(rates, ratelimit.Rate{Limit: limit, Period: pool[i]})
	}
	return rates
}

// TestRandomHistoriesWithWindowsCostsAndOwnersAgree replays random histories
// of three keys, two of them sharing an owner's bucket, with further windows
// of every period, costs from 1 to MaxCost, and every limit changing (a
// window added, dropped, or its limit moved) on this store (with and without
// local refusals) and on ratelimit.MemoryStore: every decision, and every
// Peek, is the same, to the millisecond. The clock only goes forward here: a
// MemoryStore starts a new bucket at its shard's latest time, which another
// key can have moved on, where Redis starts it at the request's.
// Seeded: replay a failure with -seed=N or GATEHOUSE_SEED=N.
func TestRandomHistoriesWithWindowsCostsAndOwnersAgree(t *testing.T) {
	s := redistest.Start(t)
	r := testrand.New(t)
	clock := newFakeClock()
	stores := []*Store{
		exactStore(exactClient(t, s), Options{Now: clock.Now, Prefix: "spared"}),
		exactStore(exactClient(t, s), Options{Now: clock.Now, Prefix: "plain", NoLocalRefusals: true}),
	}
	histories, steps := 150, 60
	if testing.Short() {
		histories = 30
	}
	ctx := context.Background()
	seen := map[string]int{}
	for h := range histories {
		ms := ratelimit.NewMemoryStore(ratelimit.MemoryConfig{})
		owner := "owner" + strconv.Itoa(h)
		ownerLimits := randomRates(r, 3, false)
		if len(ownerLimits) == 0 {
			ownerLimits = randomRates(r, 1, false)
		}
		charges := make([]ratelimit.Charge, 3)
		for i := range charges {
			charges[i] = ratelimit.Charge{Key: "h" + strconv.Itoa(h) + "k" + strconv.Itoa(i),
				Limits: ratelimit.Limits{PerMinute: 1 + r.IntN(40), PerDay: 1 + r.IntN(400), More: randomRates(r, 3, true)}}
			if i < 2 {
				charges[i].Owner, charges[i].OwnerLimits = owner, ownerLimits
			}
		}
		clock.Set(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(time.Hour)))))
		var last ratelimit.Decision
		for i := range steps {
			switch k := r.IntN(24); {
			case k == 0:
				c := &charges[r.IntN(3)]
				c.Limits.More = randomRates(r, 3, true)
				seen["further windows changed"]++
			case k == 1:
				c := &charges[r.IntN(3)]
				c.Limits.PerMinute = 1 + r.IntN(40)
				seen["limit change"]++
			case k == 2:
				ownerLimits = randomRates(r, 3, false)
				if len(ownerLimits) == 0 {
					ownerLimits = nil // an Owner without limits: no owner's bucket
				}
				charges[0].OwnerLimits, charges[1].OwnerLimits = ownerLimits, ownerLimits
				seen["owner's limits changed"]++
			case k == 3:
				clock.Advance(time.Duration(r.Int64N(int64(10 * 24 * time.Hour))))
			case k < 8 && !last.Allowed && last.RetryAfter > 0:
				clock.Advance(time.Duration(seconds.Ceil(last.RetryAfter)) * time.Second) // exactly at Retry-After
				seen["retry at Retry-After"]++
			case k < 14:
				clock.Advance(time.Duration(r.Int64N(int64(3 * time.Second))))
			}
			c := charges[r.IntN(3)]
			switch k := r.IntN(10); {
			case k < 2:
				c.Cost = 2 + r.IntN(6)
			case k == 2 && h%10 == 0:
				// The largest numbers: 2^20 tokens of windows of 2^52, once
				// at limits that let it pass.
				c.Cost = ratelimit.MaxCost
				top := func(rates []ratelimit.Rate) []ratelimit.Rate {
					out := slices.Clone(rates)
					for j := range out {
						out[j].Limit = ratelimit.MaxLimit - r.IntN(2)
					}
					return out
				}
				c.Limits = ratelimit.Limits{PerMinute: ratelimit.MaxLimit, PerDay: ratelimit.MaxLimit - 1, More: top(c.Limits.More)}
				c.OwnerLimits = top(c.OwnerLimits)
			}
			peek := r.IntN(8) == 0
			var want ratelimit.Decision
			var err error
			if peek {
				want, err = ms.Peek(ctx, c, clock.Now())
			} else {
				want, err = ms.Take(ctx, c, clock.Now())
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, rs := range stores {
				var got ratelimit.Decision
				if peek {
					got, err = rs.Peek(ctx, c, time.Time{})
				} else {
					got, err = rs.Take(ctx, c, time.Time{})
				}
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("history %d step %d at %v, peek %v, store %q, %+v:\n redis  %+v\n memory %+v", h, i, clock.Now(), peek, rs.prefix, c, got, want)
				}
			}
			if peek {
				seen["peek"]++
				continue
			}
			last = want
			switch {
			case !want.Allowed && ownerSpent(want, max(c.Cost, 1)):
				seen["refused by the owner"]++
			case !want.Allowed:
				seen["refusal"]++
			case c.Cost > 1:
				seen["cost above 1 allowed"]++
			}
			if c.Cost == ratelimit.MaxCost && want.Allowed {
				seen["MaxCost allowed"]++
			}
			if len(want.More) > 0 {
				seen["further windows"]++
			}
		}
	}
	for _, kind := range []string{"further windows changed", "owner's limits changed", "retry at Retry-After", "refusal",
		"refused by the owner", "cost above 1 allowed", "MaxCost allowed", "further windows", "peek"} {
		if seen[kind] == 0 {
			t.Errorf("no %s in %d histories: the test did not cover it", kind, histories)
		}
	}
	t.Logf("%d histories of %d steps: %v", histories, steps, seen)
}

// ownerSpent says a window of the owner's in d has less than cost left.
func ownerSpent(d ratelimit.Decision, cost int) bool {
	for _, w := range d.More {
		if w.Owner && w.Remaining < cost {
			return true
		}
	}
	return false
}

// TestRepeatedOwnedDecisionChargesOnce: a decision of a key with further
// windows and an owner's bucket, run twice with one id, takes its cost once
// from every window of both buckets and answers alike both times.
func TestRepeatedOwnedDecisionChargesOnce(t *testing.T) {
	s := redistest.Start(t)
	rs := exactStore(exactClient(t, s), Options{Now: newFakeClock().Now})
	ctx := context.Background()
	c := ratelimit.Charge{Key: "k", Limits: ratelimit.Limits{PerMinute: 100, PerDay: 1000, More: []ratelimit.Rate{{Limit: 50, Period: time.Hour}}},
		Owner: "o", OwnerLimits: []ratelimit.Rate{{Limit: 20, Period: time.Hour}}, Cost: 3}
	id := rs.nextID()
	var first ratelimit.Decision
	for i := range 2 {
		d, err := rs.take(ctx, &c, id)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed || d.Minute.Remaining != 97 || d.Day.Remaining != 997 || d.More[0].Remaining != 47 || d.More[1].Remaining != 17 {
			t.Fatalf("run %d of one decision: %+v, want allowed with 97, 997, 47 and the owner's 17 left", i+1, d)
		}
		if i == 0 {
			first = d
		} else if !reflect.DeepEqual(d, first) {
			t.Fatalf("second run %+v, first %+v", d, first)
		}
	}
	if d := mustCharge(t, rs, c, time.Time{}); d.More[1].Remaining != 14 {
		t.Errorf("next decision: the owner has %d left, want 14", d.More[1].Remaining)
	}
}

// TestBucketNamesNeverMeet: different charges' buckets have different Redis
// keys, even when owners and keys hold the separators of the names, and a
// key's bucket and its owner's have the same hash tag (one Cluster slot).
func TestBucketNamesNeverMeet(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:0"}) // never dialled: names only
	defer client.Close()
	rs := New(client, Options{})
	tag := func(name string) string {
		i := strings.IndexByte(name, '{')
		j := strings.IndexByte(name[i+1:], '}')
		if i < 0 || j <= 0 {
			t.Fatalf("%q has no hash tag", name)
		}
		return name[i+1 : i+1+j]
	}
	parts := []string{"", "a", "c", "o", "o:1:a", "a}", "}:k:b", "a}:k:b", "b}:k:c", "1:a", "/o:1:a", ":k:", "a}:o"}
	seen := map[string]string{}
	for _, owner := range parts {
		for _, key := range parts {
			c := ratelimit.Charge{Key: key, Owner: owner, OwnerLimits: []ratelimit.Rate{{Limit: 1, Period: time.Hour}}}
			k, o := rs.names(&c)
			what := fmt.Sprintf("key %q of owner %q", key, owner)
			if prev, ok := seen[k]; ok {
				t.Errorf("%s and %s share the name %q", what, prev, k)
			}
			seen[k] = what
			if owner == "" {
				continue
			}
			if prev, ok := seen[o]; ok && prev != "owner "+owner {
				t.Errorf("owner %q and %s share the name %q", owner, prev, o)
			}
			seen[o] = "owner " + owner
			if tag(k) != tag(o) {
				t.Errorf("%s: %q and its owner's %q are in different slots", what, k, o)
			}
		}
	}
}
