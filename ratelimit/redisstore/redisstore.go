// Package redisstore is a [ratelimit.Store] kept in Redis, so that every
// replica of a service shares each key's per-minute and per-day limits.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"}) // or a Sentinel or Cluster client
//	limit := ratelimit.Middleware(ratelimit.Config{
//		Store:        redisstore.New(rdb, redisstore.Options{}),
//		OnStoreError: ratelimit.FailOpen, // or the default, ratelimit.FailClosed: 503
//	})
//
// One decision is one round trip: a Lua script reads both buckets of the key,
// decides, and writes them back atomically, with the same token-bucket
// arithmetic as [ratelimit.MemoryStore], so the same history gives the same
// headers and Retry-After. The script reads Redis's own clock (TIME), so
// replicas whose clocks disagree still agree on every key; the now that Take is
// given is ignored. Both buckets of a key live under one hash tag
// ({prefix:key}), so they share a Cluster slot, and every key the store writes
// expires when its bucket would be full again (at most a day), so Redis holds
// only the keys used in the last day.
//
// It lives in a module of its own so that the core gatehouse module does not
// depend on a Redis client.
package redisstore

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/redis/go-redis/v9"
)

//go:embed take.lua
var takeSource string

// Options configures a [Store]. The zero value is usable.
type Options struct {
	// Prefix starts every Redis key the store writes (default "gatehouse:rl").
	Prefix string
	// Timeout bounds one decision, so that a hung Redis never hangs a request
	// (default 50 ms). A decision that runs out gets an error, which the
	// middleware's OnStoreError policy turns into a 503 or lets through.
	// go-redis honours it only on a client made with ContextTimeoutEnabled:
	// true (NewFromURL sets it); otherwise its own ReadTimeout (3 s) applies.
	Timeout time.Duration
	// Now, if set, replaces Redis's TIME in the script. It is for tests that
	// compare the store with MemoryStore on one history; never set it in
	// production, where replicas' clocks would then have to agree.
	Now func() time.Time
}

// Store is a ratelimit.Store in Redis. It is safe for concurrent use.
type Store struct {
	client   redis.UniversalClient
	owned    bool // Close closes client
	prefix   string
	timeout  time.Duration
	now      func() time.Time
	script   *redis.Script
	failures atomic.Int64
}

// New returns a Store on client: a single node, Sentinel or Cluster client.
func New(client redis.UniversalClient, opts Options) *Store {
	s := &Store{client: client, prefix: opts.Prefix, timeout: opts.Timeout, now: opts.Now, script: redis.NewScript(takeSource)}
	if s.prefix == "" {
		s.prefix = "gatehouse:rl"
	}
	if s.timeout <= 0 {
		s.timeout = 50 * time.Millisecond
	}
	return s
}

// NewFromURL returns a Store on a client for url (redis://user:pass@host:6379/0,
// rediss:// for TLS), with a connection pool of its own that Close closes.
//
// The client honours each decision's timeout (ContextTimeoutEnabled), dials
// once per attempt rather than go-redis's default of five attempts 100 ms
// apart, and retries a command once rather than three times: a decision has
// less time than one such wait, so while Redis refuses connections a request
// gets its answer (fail open or closed) within tens of milliseconds instead of
// after its timeout, and a connection that a restarted Redis closed still
// gets its one retry. A client you build for [New] should do the same
// (DialerRetries: 1, MaxRetries: 1).
func NewFromURL(url string, opts Options) (*Store, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	o.ContextTimeoutEnabled = true
	o.DialerRetries = 1
	o.MaxRetries = 1
	s := New(redis.NewClient(o), opts)
	s.owned = true
	return s, nil
}

// Close closes the client if the Store made it (NewFromURL).
func (s *Store) Close() error {
	if s.owned {
		return s.client.Close()
	}
	return nil
}

// Failures returns how many decisions have failed (Redis unreachable, slow or
// erroring) since the Store was made: with a fail-open policy, the count of
// requests let through unlimited.
func (s *Store) Failures() int64 { return s.failures.Load() }

// Ping reports whether Redis answers within the store's timeout.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.client.Ping(ctx).Err()
}

// Take implements ratelimit.Store. now is ignored: Redis's clock decides.
func (s *Store) Take(ctx context.Context, key string, limits ratelimit.Limits, _ time.Time) (ratelimit.Decision, error) {
	if limits.PerMinute <= 0 || limits.PerDay <= 0 {
		return ratelimit.Decision{}, ratelimit.ErrInvalidLimits
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	override := "0"
	if s.now != nil {
		override = strconv.FormatInt(s.now().UnixMicro(), 10)
	}
	tag := "{" + s.prefix + ":" + key + "}"
	res, err := s.script.Run(ctx, s.client, []string{tag + ":m", tag + ":d"},
		limits.PerMinute, limits.PerDay, override).StringSlice()
	if err != nil {
		s.failures.Add(1)
		return ratelimit.Decision{}, fmt.Errorf("redisstore: take: %w", err)
	}
	if len(res) != 3 {
		s.failures.Add(1)
		return ratelimit.Decision{}, errors.New("redisstore: take: unexpected reply")
	}
	m, err1 := strconv.ParseFloat(res[1], 64)
	d, err2 := strconv.ParseFloat(res[2], 64)
	if err1 != nil || err2 != nil {
		s.failures.Add(1)
		return ratelimit.Decision{}, errors.New("redisstore: take: unexpected reply")
	}
	return decide(res[0] == "1", m, d, limits), nil
}

// decide turns the script's answer, the tokens of each bucket after the
// request, into a Decision with MemoryStore's arithmetic.
func decide(allowed bool, m, d float64, l ratelimit.Limits) ratelimit.Decision {
	mr, dr := float64(l.PerMinute)/60, float64(l.PerDay)/86400
	dec := ratelimit.Decision{
		Allowed: allowed,
		Minute:  window(mr, m, l.PerMinute),
		Day:     window(dr, d, l.PerDay),
	}
	if !allowed {
		dec.RetryAfter = max(untilOne(mr, m), untilOne(dr, d))
	}
	return dec
}

func window(rate, tokens float64, size int) ratelimit.Window {
	w := ratelimit.Window{Limit: size, Remaining: int(math.Floor(tokens))}
	if w.Remaining < 0 {
		w.Remaining = 0
	}
	if missing := float64(size) - tokens; missing > 0 {
		w.Reset = time.Duration(math.Ceil(missing / rate * float64(time.Second)))
	}
	return w
}

// untilOne is the time until a bucket holding tokens holds one, counted as
// the bucket counts it (tokens + elapsed seconds × rate), shortened to a whole
// millisecond where that is already enough, as MemoryStore does.
func untilOne(rate, tokens float64) time.Duration {
	if tokens >= 1 {
		return 0
	}
	at := func(d time.Duration) float64 { return tokens + d.Seconds()*rate }
	d := time.Duration(math.Ceil((1 - tokens) / rate * float64(time.Second)))
	if ms := d.Truncate(time.Millisecond); ms < d && at(ms) >= 1 {
		return ms
	}
	for step := time.Nanosecond; at(d) < 1; step *= 2 {
		d += step
	}
	return d
}
