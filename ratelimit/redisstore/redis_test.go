package redisstore

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/redistest"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/redis/go-redis/v9"
)

// newClient is a client of s that never retries, gives up dialling soon, and
// has no read or write timeout of its own: a store's timeout alone ends a
// command that Redis does not answer. Closed when the test ends.
func newClient(t *testing.T, s *redistest.Server) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond, ReadTimeout: -1, WriteTimeout: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// exactWait bounds every wait of a test of arithmetic (a decision, a dial, a
// read or write, a wait for a pooled connection): far longer than any of them
// takes on the busiest machine, so that such a test fails on what Redis
// answered and never on a timeout, yet a Redis that never answers fails it
// well before go test's -timeout.
const exactWait = time.Minute

// exactClient is a client of s for tests of arithmetic: none of its waits
// ends before exactWait, it never retries (a decision is one script run), and
// it has 50 connections (tests send up to 1,000 requests at once). Closed
// when the test ends.
func exactClient(t *testing.T, s *redistest.Server) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, PoolSize: 50, ContextTimeoutEnabled: true,
		DialTimeout: exactWait, ReadTimeout: exactWait, WriteTimeout: exactWait, PoolTimeout: exactWait})
	t.Cleanup(func() { c.Close() })
	return c
}

// exactStore is New(c, o) with o.Timeout exactWait: the store of a test of
// arithmetic, on an exactClient (or a client as patient: clusterStore's).
func exactStore(c redis.UniversalClient, o Options) *Store {
	o.Timeout = exactWait
	return New(c, o)
}

// exactURLStore is urlStore(t, url, o) (url without a query) as patient as
// an exactStore: NewFromURL's client, with its one retry and one dial an
// attempt, none of whose waits ends before exactWait.
func exactURLStore(t *testing.T, url string, o Options) *Store {
	w := exactWait.String()
	o.Timeout = exactWait
	return urlStore(t, url+"?dial_timeout="+w+"&read_timeout="+w+"&write_timeout="+w+"&pool_timeout="+w, o)
}

// TestReplicasShareLimits: three stacks, each with its own client, share one
// Redis; 1,000 concurrent requests of a 100/min key let exactly 100 through
// (replicasShareLimits says what else is checked).
func TestReplicasShareLimits(t *testing.T) {
	s := redistest.Start(t)
	replicasShareLimits(t, func(o Options) *Store { return exactStore(exactClient(t, s), o) })
}

// TestRedisDiesAndReturns: with Redis gone, the policy decides (fail open:
// through without headers; fail closed: 503 JSON), a hung Redis costs a
// decision no more than the store's timeout (it ends on it, not on Redis),
// and the store recovers by itself when Redis is back.
func TestRedisDiesAndReturns(t *testing.T) {
	s := redistest.Start(t)
	c := newClient(t, s)
	store := New(c, Options{Timeout: 100 * time.Millisecond})
	key := func(r *http.Request) (ratelimit.Charge, bool) {
		return ratelimit.Charge{Key: "k", Limits: ratelimit.Limits{PerMinute: 1000, PerDay: 100000}}, true
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	open := ratelimit.Middleware(ratelimit.Config{Store: store, Key: key, OnStoreError: ratelimit.FailOpen, Logger: quiet()})(next)
	closed := ratelimit.Middleware(ratelimit.Config{Store: store, Key: key, Logger: quiet()})(next)
	call := func(h http.Handler) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
		return rec
	}
	if rec := call(closed); rec.Code != 200 || rec.Header().Get("X-RateLimit-Limit") != "1000" {
		t.Fatalf("Redis up: %d %v", rec.Code, rec.Header())
	}

	// Hung: SIGSTOP the server. It answers nothing until it is resumed, and
	// the client has no timeout of its own: a decision that ends before then,
	// on a timeout, ended on the store's, however slow the machine.
	s.Pause()
	hung := make(chan *httptest.ResponseRecorder, 1)
	go func() { hung <- call(closed) }()
	select {
	case rec := <-hung:
		if rec.Code != 503 || rec.Body.String() != `{"error":"Upstream service temporarily unavailable"}`+"\n" || rec.Header().Get("Retry-After") != "1" {
			t.Errorf("fail closed, hung Redis: %d %q", rec.Code, rec.Body)
		}
	case <-time.After(answerWait):
		t.Fatalf("a hung Redis held the request %v; the store's timeout is 100ms", answerWait)
	}
	_, err := store.Take(context.Background(), ratelimit.Charge{Key: "k", Limits: ratelimit.Limits{PerMinute: 1000, PerDay: 100000}}, time.Time{})
	if ne := net.Error(nil); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("a decision on a hung Redis: %v; want the store's timeout", err)
	}
	s.Resume()

	// Dead.
	s.Stop()
	if rec := call(open); rec.Code != 200 || rec.Header().Get("X-RateLimit-Limit") != "" {
		t.Errorf("fail open, Redis dead: %d %v; want 200 without rate-limit headers", rec.Code, rec.Header())
	}
	if rec := call(closed); rec.Code != 503 {
		t.Errorf("fail closed, Redis dead: %d, want 503", rec.Code)
	}
	if store.Failures() < 4 {
		t.Errorf("Failures() = %d, want at least 4", store.Failures())
	}

	// Back on the same port: the client reconnects by itself (go-redis
	// redials every second; the bound is only for a client that never does).
	s.Restart()
	deadline := time.Now().Add(answerWait)
	for {
		rec := call(closed)
		if rec.Code == 200 && rec.Header().Get("X-RateLimit-Limit") == "1000" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after Redis came back: %d", rec.Code)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKeysExpire: every key the store writes expires when its bucket would be
// full again, so Redis holds only recent keys.
func TestKeysExpire(t *testing.T) {
	s := redistest.Start(t)
	c := exactClient(t, s)
	store := exactStore(c, Options{Prefix: "exp"})
	ctx := context.Background()
	began := time.Now()
	if _, err := store.Take(ctx, ratelimit.Charge{Key: "k", Limits: ratelimit.Limits{PerMinute: 60, PerDay: 10000}}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// A key of an owner, with a further window of 1 an hour, and its owner's
	// bucket of 2 in 10 minutes: each hash expires when its own windows are
	// full, the key's in an hour, the owner's in 5 minutes.
	owned := ratelimit.Charge{Key: "k2", Limits: ratelimit.Limits{PerMinute: 60, PerDay: 10000, More: []ratelimit.Rate{{Limit: 1, Period: time.Hour}}},
		Owner: "acme", OwnerLimits: []ratelimit.Rate{{Limit: 2, Period: 10 * time.Minute}}}
	if _, err := store.Take(ctx, owned, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// One token of 60/min is back in 1 s, of 10,000/day in 8.64 s: the later,
	// plus a millisecond's rounding and 1 s; less, by the time PTTL asks, the
	// time since the first Take was sent (and 500 ms for the clocks).
	for key, want := range map[string]time.Duration{"{exp:k}": 9641 * time.Millisecond,
		"{exp/o:4:acme}:k:k2": 3601001 * time.Millisecond, "{exp/o:4:acme}": 301001 * time.Millisecond} {
		ttl, err := c.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if least := want - time.Since(began) - 500*time.Millisecond; ttl <= 0 || ttl > want || ttl < least {
			t.Errorf("PTTL %s = %v, want from %v to %v", key, ttl, least, want)
		}
	}
	// A fast bucket really goes: 6000/min refills one token in 10 ms.
	if _, err := store.Take(ctx, ratelimit.Charge{Key: "fast", Limits: ratelimit.Limits{PerMinute: 6000, PerDay: 8640000}}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := c.Exists(ctx, "{exp:fast}").Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a refilled bucket's keys did not expire")
		}
		time.Sleep(50 * time.Millisecond)
	}
	keys, _ := c.Keys(ctx, "*").Result()
	for _, k := range keys {
		if ttl, _ := c.PTTL(ctx, k).Result(); ttl < 0 {
			t.Errorf("key %s has no expiry", k)
		}
	}
}

func TestInvalidLimitsAndURL(t *testing.T) {
	store := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), Options{})
	if _, err := store.Take(context.Background(), ratelimit.Charge{Key: "k", Limits: ratelimit.Limits{PerMinute: 0, PerDay: 1}}, time.Time{}); !errors.Is(err, ratelimit.ErrInvalidLimits) {
		t.Errorf("zero limit: %v, want ErrInvalidLimits", err)
	}
	if _, err := NewFromURL("http://nope", Options{}); err == nil {
		t.Error("NewFromURL accepted a non-Redis URL")
	}
	s, err := NewFromURL("redis://127.0.0.1:1/0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
}

// TestRefusedFailsFast: with nothing listening, a NewFromURL store's decision
// fails on the refused connection, not on its timeout (a minute, which no
// decision here waits for), and dials at most twice, once for the command
// and once for its one retry: no dial retries. Counted, not timed.
func TestRefusedFailsFast(t *testing.T) {
	s := urlStore(t, "redis://"+redistest.RefusedAddr(t)+"/0", Options{Timeout: exactWait})
	count := &commandCounter{}
	s.client.(*redis.Client).AddHook(count)
	for i := range 3 {
		before := count.dials.Load()
		_, err := s.Take(context.Background(), ratelimit.Charge{Key: "k", Limits: ratelimit.Limits{PerMinute: 1, PerDay: 1}}, time.Time{})
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("decision %d against a refused port: %v; want the refusal", i+1, err)
		}
		if n := count.dials.Load() - before; n > 2 {
			t.Errorf("decision %d against a refused port dialled %d times; want at most 2", i+1, n)
		}
	}
}
