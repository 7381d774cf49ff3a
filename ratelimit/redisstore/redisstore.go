// Package redisstore is a [ratelimit.Store] kept in Redis, so that every
// replica of a service shares each key's per-minute and per-day limits.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"}) // or a Sentinel or Cluster client
//	limit := ratelimit.Middleware(ratelimit.Config{
//		Key:          ratelimit.ByClientIP, // or the caller's key
//		Store:        redisstore.New(rdb, redisstore.Options{}),
//		OnStoreError: ratelimit.FailOpen, // or the default, ratelimit.FailClosed: 503
//	})
//
// One decision is one round trip: a Lua script reads the key's bucket,
// decides, and writes it back atomically, with [ratelimit.Bucket]'s integer
// arithmetic step for step, and returns the bucket, which Go turns into a
// Decision with the same function as [ratelimit.MemoryStore]: the same history
// gives the same headers and Retry-After, to the millisecond. The script reads
// Redis's own clock (TIME), so replicas whose clocks disagree still agree on
// every key; the now that Take is given is ignored. A key's bucket is one hash,
// {prefix:key}, which expires when the bucket would be full again (at most a
// day), so Redis holds only the keys used in the last day.
//
// A key that Redis refused is then answered by the Store itself, without a
// round trip, until its Retry-After has passed (see [Options.NoLocalRefusals]),
// so that a caller hammering a spent key costs Redis nothing.
//
// It lives in a module of its own so that the core gatehouse module does not
// depend on a Redis client.
package redisstore

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/redis/go-redis/v9"
)

//go:embed take.lua
var takeSource string

//go:embed peek.lua
var peekSource string

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
	// Now, if set, replaces Redis's TIME in the script (to the millisecond).
	// It is for tests that compare the store with MemoryStore on one history;
	// never set it in production, where replicas' clocks would then have to
	// agree.
	Now func() time.Time
	// NoLocalRefusals turns off the local answer to refused keys: every
	// decision is then a round trip. By default, a key that Redis refused is
	// refused by the Store itself, without asking Redis, until the refusal's
	// RetryAfter has passed, with the headers Redis would have given (see
	// [Store.Take]).
	NoLocalRefusals bool
}

// maxRefused bounds the refusals a Store remembers: with 32-byte keys each
// takes about 210 bytes (measured, map included), so about 2 MB at most
// however many keys callers send.
const maxRefused = 10_000

// refusal is a refused key's bucket as the script returned it, at the time
// the script decided (its At), and its limits.
type refusal struct {
	limits ratelimit.Limits
	bucket ratelimit.Bucket
	offset int64 // the bucket's clock minus the store's
	until  int64 // bucket.At + the refusal's RetryAfter, on the bucket's clock
}

// Store is a ratelimit.Store in Redis. It is safe for concurrent use.
type Store struct {
	client   redis.UniversalClient
	owned    bool // Close closes client
	prefix   string
	timeout  time.Duration
	now      func() time.Time
	script   *redis.Script
	peek     *redis.Script
	failures atomic.Int64
	idPrefix [6]byte // random: tells this store's decision ids from others'
	ids      atomic.Uint64

	spare   bool
	epoch   time.Time // the origin of clock when now is nil; monotonic
	mu      sync.Mutex
	refused map[string]refusal // at most maxRefused
}

// New returns a Store on client: a single node, Sentinel or Cluster client.
func New(client redis.UniversalClient, opts Options) *Store {
	s := &Store{client: client, prefix: opts.Prefix, timeout: opts.Timeout, now: opts.Now,
		script: redis.NewScript(takeSource), peek: redis.NewScript(peekSource),
		spare: !opts.NoLocalRefusals, epoch: time.Now(), refused: make(map[string]refusal)}
	rand.Read(s.idPrefix[:])
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
// gets its one retry (a retried decision is charged once: see [Store.Take]).
// A client you build for [New] should do the same (DialerRetries: 1,
// MaxRetries: 1).
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
//
// A decision is idempotent: it carries an id of its own, and a script run
// again with that id (go-redis retrying after a lost reply) answers as the
// first run did without taking another token, for as long as fewer than 8
// other requests of the key were allowed in between. An error still may cost
// the key a token: a reply that comes after the timeout was a decision taken
// (docs/limits.md says what can be lost and when).
//
// A refusal is remembered (unless Options.NoLocalRefusals), and the key is
// refused locally, under the same limits, until the refusal's RetryAfter has
// passed. The script returns the time its bucket stands at; on Redis's clock
// (no Options.Now) the store takes that time to be the moment it sent the
// request, on its own monotonic clock, which is no later. So:
//
//   - It never lets through a request Redis would refuse: it lets none
//     through, and asks Redis again once RetryAfter has passed since the send,
//     which is no later than RetryAfter after Redis decided.
//   - It refuses nothing Redis would let through: a refused request takes
//     nothing, and until RetryAfter has passed on Redis's clock every other
//     request of the key is refused too, so the bucket only refills. The
//     exceptions: another replica raising the key's limits meanwhile (a
//     request here with other limits than the refusal's goes to Redis at
//     once), and a millisecond of clock rounding.
//   - Its answer is Redis's: the refused bucket paid back by the time passed,
//     by [ratelimit.Bucket.Peek], the rule the script follows. RetryAfter
//     and each window's Reset shrink with time, the spent window stays at
//     Remaining 0, and the other window shows the refills since the refusal
//     (not the Remaining last seen: nothing else can have changed it). As the
//     time is counted from the send, not from Redis's reading of its clock,
//     RetryAfter and Reset may be short by up to the round trip (well under
//     a millisecond on a local network); with Options.Now they are exact. If
//     Redis's clock steps back, Redis holds the bucket still until its clock
//     catches up, and the store, which does not, asks it again sooner.
func (s *Store) Take(ctx context.Context, key string, limits ratelimit.Limits, _ time.Time) (ratelimit.Decision, error) {
	return s.take(ctx, key, limits, s.nextID())
}

func (s *Store) take(ctx context.Context, key string, limits ratelimit.Limits, id string) (ratelimit.Decision, error) {
	if err := limits.Validate(); err != nil {
		return ratelimit.Decision{}, err
	}
	var sent int64
	if s.spare {
		sent = s.clock()
		if dec, ok := s.localRefusal(key, limits, sent); ok {
			return dec, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	override := "0"
	if s.now != nil {
		override = strconv.FormatInt(s.now().UnixMilli(), 10)
	}
	res, err := s.script.Run(ctx, s.client, []string{"{" + s.prefix + ":" + key + "}"},
		limits.PerMinute, limits.PerDay, override, id).Int64Slice()
	if err != nil {
		s.failures.Add(1)
		return ratelimit.Decision{}, fmt.Errorf("redisstore: take: %w", err)
	}
	b, allowed, ok := bucketOf(res, limits)
	if !ok {
		s.failures.Add(1)
		return ratelimit.Decision{}, errors.New("redisstore: take: unexpected reply")
	}
	dec := b.Decision(allowed)
	if s.spare && !allowed {
		r := refusal{limits: limits, bucket: b, until: b.At + dec.RetryAfter.Milliseconds()}
		if s.now == nil {
			r.offset = b.At - sent // Redis's TIME when it decided is our sent
		}
		s.remember(key, r)
	}
	return dec, nil
}

// clock is the store's time in milliseconds: Options.Now's Unix milliseconds,
// as the script reads them, or else the monotonic time since the store was
// made, which no change of the wall clock moves.
func (s *Store) clock() int64 {
	if s.now != nil {
		return s.now().UnixMilli()
	}
	return time.Since(s.epoch).Milliseconds()
}

// localRefusal answers key at now (the store's clock) if it was refused under
// limits and the refusal's RetryAfter has not passed. It forgets a refusal
// that has passed or whose limits are not limits. A time before the refusal
// (Options.Now stepped back) goes to Redis: the answer then depends on when
// the bucket last changed, which the store does not know.
func (s *Store) localRefusal(key string, limits ratelimit.Limits, now int64) (ratelimit.Decision, bool) {
	s.mu.Lock()
	r, ok := s.refused[key]
	at := now + r.offset // the bucket's clock
	if ok && (at >= r.until || r.limits != limits) {
		delete(s.refused, key)
		ok = false
	}
	s.mu.Unlock()
	if !ok || at < r.bucket.At {
		return ratelimit.Decision{}, false
	}
	return r.bucket.Peek(limits, at).Decision(false), true
}

// remember keeps r for key. With maxRefused keys kept, it first forgets the
// passed refusals among up to 64 of them (in the map's random order, so that
// the work per call is bounded), or, if none has passed, one of them: a
// forgotten refusal costs a round trip, never a wrong answer.
func (s *Store) remember(key string, r refusal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.refused[key]; !ok && len(s.refused) >= maxRefused {
		now, seen, freed := s.clock(), 0, false
		var any string
		for k, v := range s.refused {
			if seen == 0 {
				any = k
			}
			if now+v.offset >= v.until {
				delete(s.refused, k)
				freed = true
			}
			if seen++; seen == 64 {
				break
			}
		}
		if !freed {
			delete(s.refused, any)
		}
	}
	s.refused[key] = r
}

// bucketOf reads the script's reply: allowed, then each window's ms and
// frac, then the time they stand at.
func bucketOf(res []int64, l ratelimit.Limits) (b ratelimit.Bucket, allowed, ok bool) {
	if len(res) != 6 || res[0] < 0 || res[0] > 1 || res[5] < 0 {
		return b, false, false
	}
	b.At = res[5]
	b.Minute = ratelimit.Debt{Ms: res[1], Frac: res[2], Limit: int64(l.PerMinute)}
	b.Day = ratelimit.Debt{Ms: res[3], Frac: res[4], Limit: int64(l.PerDay)}
	for _, d := range []ratelimit.Debt{b.Minute, b.Day} {
		if d.Ms < 0 || d.Frac < 0 || d.Frac >= d.Limit || d.Ms > 2*86_400_000 {
			return b, false, false
		}
	}
	return b, res[0] == 1, true
}

// nextID returns a decision id no other decision of any store shares: this
// store's random prefix and a count, 24 hexadecimal digits.
func (s *Store) nextID() string {
	var b [24]byte
	hex.Encode(b[:12], s.idPrefix[:])
	n := s.ids.Add(1)
	for i := 23; i >= 12; i-- {
		b[i] = "0123456789abcdef"[n&15]
		n >>= 4
	}
	return string(b[:])
}
