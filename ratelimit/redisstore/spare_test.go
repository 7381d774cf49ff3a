package redisstore

import (
	"context"
	"net"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/redistest"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/redis/go-redis/v9"
)

// commandCounter is a go-redis hook that counts the commands a client sends,
// one by one or in pipelines, but for the handshake of a new connection
// (HELLO, CLIENT SETINFO), which depends on how many the pool opens; and,
// apart, the client's dials, each attempt of each.
type commandCounter struct{ n, dials atomic.Int64 }

func (c *commandCounter) count(cmd redis.Cmder) {
	if name := cmd.Name(); name != "hello" && name != "client" {
		c.n.Add(1)
	}
}

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c.dials.Add(1)
		return next(ctx, network, addr)
	}
}

func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.count(cmd)
		return next(ctx, cmd)
	}
}

func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.count(cmd)
		}
		return next(ctx, cmds)
	}
}

var _ redis.Hook = (*commandCounter)(nil)

// countedClient is a client of s whose commands are counted.
func countedClient(t *testing.T, s *redistest.Server) (*redis.Client, *commandCounter) {
	c := exactClient(t, s)
	n := &commandCounter{}
	c.AddHook(n)
	return c, n
}

// TestRefusedKeyIsAnsweredLocally: once Redis refused a key, the store
// refuses it itself until Retry-After, sending no command, and every answer
// equals, field for field, what a store that asks Redis every time says of a
// second key with the same history: RetryAfter and Reset shrinking, the spent
// window at Remaining 0, the other one refilling. At Retry-After the request
// goes to Redis and passes; other limits go to Redis at once.
func TestRefusedKeyIsAnsweredLocally(t *testing.T) {
	s := redistest.Start(t)
	for i, tc := range []struct {
		name   string
		limits ratelimit.Limits
		step   time.Duration
	}{
		{"minute spent", ratelimit.Limits{PerMinute: 2, PerDay: 1000}, 1700 * time.Millisecond},
		{"day spent, minute refilling", ratelimit.Limits{PerMinute: 60, PerDay: 3}, 7 * time.Minute},
	} {
		key := "k" + strconv.Itoa(i)
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			c, count := countedClient(t, s)
			spared := exactStore(c, Options{Now: clock.Now, Prefix: "spared"})
			plain := exactStore(exactClient(t, s), Options{Now: clock.Now, Prefix: "plain", NoLocalRefusals: true})
			take := func() (got, want ratelimit.Decision) {
				t.Helper()
				return mustTake(t, spared, key, tc.limits, time.Time{}), mustTake(t, plain, key, tc.limits, time.Time{})
			}
			var got, want ratelimit.Decision
			var refusedAt time.Time
			for got.RetryAfter == 0 {
				clock.Advance(time.Millisecond)
				refusedAt = clock.Now()
				if got, want = take(); !reflect.DeepEqual(got, want) {
					t.Fatalf("before the refusal: spared %+v, plain %+v", got, want)
				}
			}
			refusal := got
			sent := count.n.Load()
			locals := 0
			for waited := tc.step; waited < refusal.RetryAfter; waited += tc.step {
				clock.Set(refusedAt.Add(waited))
				for range 10 {
					if got, want = take(); !reflect.DeepEqual(got, want) {
						t.Fatalf("%v after the refusal: spared %+v, plain %+v", waited, got, want)
					}
					locals++
				}
			}
			// A millisecond before Retry-After: still local, Retry-After 1 ms.
			clock.Set(refusedAt.Add(refusal.RetryAfter - time.Millisecond))
			if got, want = take(); !reflect.DeepEqual(got, want) || got.RetryAfter != time.Millisecond {
				t.Errorf("1 ms before Retry-After: spared %+v, plain %+v; want Retry-After 1ms", got, want)
			}
			locals++
			if locals < 10 {
				t.Fatalf("only %d local answers: the step is too long for the test to mean anything", locals)
			}
			if n := count.n.Load() - sent; n != 0 {
				t.Errorf("%d refused requests within Retry-After sent %d commands; want 0", locals, n)
			}

			// At Retry-After exactly: to Redis, and through.
			clock.Set(refusedAt.Add(refusal.RetryAfter))
			if got, want = take(); !reflect.DeepEqual(got, want) || !got.Allowed {
				t.Errorf("at Retry-After: spared %+v, plain %+v; want the same, allowed", got, want)
			}
			if n := count.n.Load() - sent; n != 1 {
				t.Errorf("at Retry-After: %d commands; want 1", n)
			}

			// Refused again, then asked with other limits: to Redis at once.
			for got.RetryAfter == 0 {
				if got, want = take(); !reflect.DeepEqual(got, want) {
					t.Fatalf("after Retry-After: spared %+v, plain %+v", got, want)
				}
			}
			sent = count.n.Load()
			other := ratelimit.Limits{PerMinute: tc.limits.PerMinute + 1, PerDay: tc.limits.PerDay + 1}
			got, want = mustTake(t, spared, key, other, time.Time{}), mustTake(t, plain, key, other, time.Time{})
			if !reflect.DeepEqual(got, want) {
				t.Errorf("other limits: spared %+v, plain %+v", got, want)
			}
			if n := count.n.Load() - sent; n != 1 {
				t.Errorf("other limits: %d commands; want 1", n)
			}
		})
	}
}

// TestLocalRefusalOnRedisTime: on Redis's own clock (no Options.Now), a
// refused key costs no command until its Retry-After has passed on this
// process's clock, and the first request after it goes to Redis and passes.
// It waits for real time: the refusal's Retry-After, at most a second on a
// machine fast enough for 60 a minute.
//
// Nothing here depends on how fast the machine runs. The key is drained
// however long that takes (the bucket refills one token a period meanwhile);
// a local answer is held to the refusal's only while its Retry-After cannot
// have passed since the refused request was sent; and a run in which it passed
// before 100 local answers were seen (the key then went to Redis, which may
// have given it a token) is done again on a fresh key of a slower rate, whose
// Retry-After is longer, down to 2 a minute (up to 30 s).
func TestLocalRefusalOnRedisTime(t *testing.T) {
	s := redistest.Start(t)
	c, count := countedClient(t, s)
	store := exactStore(c, Options{})
	const locals = 100
	for _, perMinute := range []int{60, 20, 6, 2} {
		key := "k" + strconv.Itoa(perMinute)
		limits := ratelimit.Limits{PerMinute: perMinute, PerDay: 10_000}
		period := time.Minute / time.Duration(perMinute) // one token a period
		var refusal ratelimit.Decision
		var asked time.Time // before the refused request was sent
		began := time.Now()
		for i := 0; refusal.RetryAfter == 0; i++ {
			if i > perMinute+int(time.Since(began)/period) {
				t.Fatalf("no refusal after %d requests of a %d/min key in %v", i, perMinute, time.Since(began))
			}
			asked = time.Now()
			refusal = mustTake(t, store, key, limits, time.Time{})
		}
		refusedAt := time.Now()
		if refusal.RetryAfter > period {
			t.Fatalf("%d/min: Retry-After %v; want at most %v", perMinute, refusal.RetryAfter, period)
		}
		sent := count.n.Load()
		n := 0
		for ; n < locals; n++ {
			d := mustTake(t, store, key, limits, time.Time{})
			// The store's clock counts whole milliseconds: a millisecond less.
			if time.Since(asked) >= refusal.RetryAfter-time.Millisecond {
				break // the store may have asked Redis
			}
			if d.Allowed || d.RetryAfter > refusal.RetryAfter || d.Minute.Remaining != 0 {
				t.Fatalf("%d/min: local answer %+v after the refusal %+v", perMinute, d, refusal)
			}
		}
		if n < locals {
			t.Logf("%d/min: Retry-After %v passed after %d local answers; again at a slower rate", perMinute, refusal.RetryAfter, n)
			continue
		}
		if n := count.n.Load() - sent; n != 0 {
			t.Errorf("%d/min: %d refused requests within Retry-After sent %d commands; want 0", perMinute, locals, n)
		}
		time.Sleep(time.Until(refusedAt.Add(refusal.RetryAfter)))
		if d := mustTake(t, store, key, limits, time.Time{}); !d.Allowed {
			t.Errorf("%d/min: at Retry-After: %+v; want allowed", perMinute, d)
		}
		if n := count.n.Load() - sent; n != 1 {
			t.Errorf("%d/min: at Retry-After: %d commands in all; want 1", perMinute, n)
		}
		return
	}
	t.Fatalf("Retry-After passed before %d local answers at every rate down to 2 a minute", locals)
}

// TestLocalRefusalsConcurrently: goroutines asking for a refused key and for
// fresh ones at once (run with -race) get refusals without a command, and
// their fresh keys' first two answers (allowed, then refused and remembered)
// from Redis.
func TestLocalRefusalsConcurrently(t *testing.T) {
	s := redistest.Start(t)
	c, count := countedClient(t, s)
	clock := newFakeClock()
	store := exactStore(c, Options{Now: clock.Now})
	limits := ratelimit.Limits{PerMinute: 1, PerDay: 100}
	mustTake(t, store, "spent", limits, time.Time{})
	if d := mustTake(t, store, "spent", limits, time.Time{}); d.Allowed {
		t.Fatalf("second request of a 1/min key: %+v; want refused", d)
	}
	sent := count.n.Load()
	var wg sync.WaitGroup
	var allowed, refused atomic.Int64
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				key := "spent"
				if i%10 < 2 { // allowed, then refused and remembered
					key = "fresh-" + strconv.Itoa(g) + "-" + strconv.Itoa(i/10)
				}
				d, err := store.Take(context.Background(), ratelimit.Charge{Key: key, Limits: limits}, time.Time{})
				switch {
				case err != nil:
					t.Error(err)
				case d.Allowed:
					allowed.Add(1)
				default:
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if allowed.Load() != 40 || refused.Load() != 360 {
		t.Errorf("allowed %d, refused %d; want 40 (the fresh keys), 360", allowed.Load(), refused.Load())
	}
	if n := count.n.Load() - sent; n != 80 {
		t.Errorf("%d commands; want 80, two per fresh key", n)
	}
}

// TestRefusalsAreBounded: the refusals a store remembers never pass
// maxRefused, whatever keys come; passed ones go first.
func TestRefusalsAreBounded(t *testing.T) {
	clock := newFakeClock()
	c := redis.NewClient(&redis.Options{Addr: redistest.RefusedAddr(t)})
	t.Cleanup(func() { c.Close() })
	s := New(c, Options{Now: clock.Now})
	now := clock.Now().UnixMilli()
	passed := refusal{until: now}
	for i := range maxRefused {
		s.remember("passed"+strconv.Itoa(i), passed)
	}
	s.remember("new", refusal{until: now + 1000})
	if n := len(s.refused); n > maxRefused-2 {
		t.Errorf("full of passed refusals, one more: %d kept; want some passed ones forgotten", n)
	}
	live := refusal{until: now + 1000}
	for i := range 3 * maxRefused {
		s.remember("live"+strconv.Itoa(i), live)
		if n := len(s.refused); n > maxRefused {
			t.Fatalf("%d refusals kept; want at most %d", n, maxRefused)
		}
	}
	if _, ok := s.refused[bucketName{key: "live" + strconv.Itoa(3*maxRefused-1)}]; !ok {
		t.Error("the newest refusal was not kept")
	}
}

// BenchmarkRefusedKey is one decision of a spent key on a local Redis:
// answered locally (the default) and by Redis (NoLocalRefusals).
func BenchmarkRefusedKey(b *testing.B) {
	s := redistest.Start(b)
	c := redis.NewClient(&redis.Options{Addr: s.Addr, ContextTimeoutEnabled: true})
	defer c.Close()
	limits := ratelimit.Limits{PerMinute: 1, PerDay: 1} // spent for a day after one request
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"Local", Options{Prefix: "local", Timeout: time.Second}},
		{"Redis", Options{Prefix: "redis", Timeout: time.Second, NoLocalRefusals: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			store := New(c, tc.opts)
			store.Take(context.Background(), ratelimit.Charge{Key: "k", Limits: limits}, time.Time{})
			b.ReportAllocs()
			for b.Loop() {
				if d, err := store.Take(context.Background(), ratelimit.Charge{Key: "k", Limits: limits}, time.Time{}); err != nil || d.Allowed {
					b.Fatal(d, err)
				}
			}
		})
	}
}

// remember keeps r for key, as Take does for a key without an owner.
func (s *Store) remember(key string, r refusal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rememberLocked(bucketName{key: key}, r)
}

// TestRefusedOwnedKeyIsAnsweredLocally: a key refused by its owner's bucket
// is then refused by the store itself, sending no command, with the answers
// of a store that asks Redis every time; another key of the owner goes to
// Redis once, then is answered locally too; and once a request of a smaller
// cost fits, it goes to Redis and passes.
func TestRefusedOwnedKeyIsAnsweredLocally(t *testing.T) {
	s := redistest.Start(t)
	clock := newFakeClock()
	c, count := countedClient(t, s)
	spared := exactStore(c, Options{Now: clock.Now, Prefix: "spared"})
	plain := exactStore(exactClient(t, s), Options{Now: clock.Now, Prefix: "plain", NoLocalRefusals: true})
	charge := func(key string, cost int) ratelimit.Charge {
		return ratelimit.Charge{Key: key, Limits: ratelimit.Limits{PerMinute: 100, PerDay: 1000},
			Owner: "o", OwnerLimits: []ratelimit.Rate{{Limit: 4, Period: time.Hour}}, Cost: cost}
	}
	take := func(key string, cost int) ratelimit.Decision {
		t.Helper()
		got, want := mustCharge(t, spared, charge(key, cost), time.Time{}), mustCharge(t, plain, charge(key, cost), time.Time{})
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s, cost %d: spared %+v, plain %+v", key, cost, got, want)
		}
		return got
	}
	if d := take("a", 3); !d.Allowed {
		t.Fatalf("first request refused: %+v", d)
	}
	if d := take("a", 3); d.Allowed || d.RetryAfter != 30*time.Minute {
		t.Fatalf("second request of cost 3 with 1 left of 4 an hour: %+v, want refused, Retry-After 30m", d)
	}
	sent := count.n.Load()
	for range 10 {
		clock.Advance(time.Minute)
		take("a", 3)
	}
	if n := count.n.Load() - sent; n != 0 {
		t.Errorf("10 refused requests of the owner's key sent %d commands; want 0", n)
	}
	take("b", 3) // b's first: to Redis
	sent = count.n.Load()
	take("b", 3)
	if n := count.n.Load() - sent; n != 0 {
		t.Errorf("b refused again: %d commands; want 0", n)
	}
	if d := take("a", 1); !d.Allowed { // cost 1 fits: to Redis
		t.Fatalf("a request of cost 1 with 1 left: %+v", d)
	}
	sent = count.n.Load()
	if d := take("b", 1); d.Allowed { // refused locally: the owner's bucket as a's decision left it
		t.Fatalf("b after a took the last token: %+v", d)
	}
	if n := count.n.Load() - sent; n != 0 {
		t.Errorf("b refused after a's decision: %d commands; want 0", n)
	}
}
