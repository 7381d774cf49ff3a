// Package redisstore is a [ratelimit.Store] kept in Redis, so that every
// replica of a service shares each key's limits, and each owner's.
//
//	o := &redis.Options{Addr: "127.0.0.1:6379"} // or a Sentinel or Cluster client's
//	o.Dialer = redisstore.BoundReplies(o.Dialer, o.TLSConfig) // see BoundReplies
//	rdb := redis.NewClient(o)
//	limit := ratelimit.Middleware(ratelimit.Config{
//		Key:          ratelimit.ByClientIP, // or the caller's key
//		Store:        redisstore.New(rdb, redisstore.Options{}),
//		OnStoreError: ratelimit.FailOpen, // or the default, ratelimit.FailClosed: 503
//	})
//
// A decision is made by a Lua script, which reads every window of the
// key's bucket and, with an owner's bucket ([ratelimit.Charge]), of the
// owner's, decides, and writes them back atomically (all or nothing: a
// refusal writes nothing), with ratelimit's integer arithmetic (its MemoryStore's) step
// for step, and returns the buckets, which Go turns into a Decision with the
// same function as [ratelimit.MemoryStore]: the same history gives the same
// headers and Retry-After, to the millisecond. The script reads Redis's own
// clock (TIME), so replicas whose clocks disagree still agree on every key;
// the now that Take is given is ignored. Each bucket is one hash: a key's
// {prefix:key} or, with an Owner, {prefix/o:N:owner}:k:key beside its
// owner's {prefix/o:N:owner} in the same Cluster slot (N the owner's length;
// see docs/redis.md), which expires when its windows would be full again, so
// Redis holds only what was used within its longest window.
//
// A key that Redis refused is then answered by the Store itself, without a
// round trip, until its Retry-After has passed (see [Options.NoLocalRefusals]),
// so that a caller hammering a spent key costs Redis nothing.
//
// Decisions that wait for Redis at the same moment share a round trip: a
// decision asked of an idle Store is sent at once, and those asked while a
// round trip is in flight go together in the next pipeline, those of one key
// in one script call (see [Store.Take]).
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
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/ratelimit/internal/gcra"
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

// maxRefused bounds the refusals a Store remembers (a key's and, with an
// owner, the owner's bucket each count one): with 32-byte keys each takes
// about 210 bytes (measured, map included), so about 2 MB at most however
// many keys callers send; further windows add theirs.
const maxRefused = 10_000

// bucketName names a bucket among a store's remembered refusals: a key's
// (under its owner's name, "" for none) or, with isOwner, an owner's.
type bucketName struct {
	owner, key string
	isOwner    bool
}

// refusal is a bucket as the script returned it, at the time the script
// decided (its At): a key's refused, with its limits, or an owner's, with its
// own, as of the last decision this store saw of any of the owner's keys.
type refusal struct {
	limits ratelimit.Limits // a key's; an owner's are in More
	cost   int              // a key's refused request's, at least 1
	owned  bool             // a key's refused with an owner's bucket: until counts the owner's too
	bucket gcra.Bucket
	offset int64 // the bucket's clock minus the store's
	until  int64 // bucket.At + the refusal's RetryAfter (an owner's: until full), on the bucket's clock
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
	trips    atomic.Int64 // round trips of decisions: pipelines sent
	batch    batcher
	idPrefix [6]byte // random: tells this store's decision ids from others'
	ids      atomic.Uint64

	spare   bool
	epoch   time.Time // the origin of clock when now is nil; monotonic
	mu      sync.Mutex
	refused map[bucketName]refusal // at most maxRefused
}

// errNoClient refuses New without a client.
var errNoClient = errors.New("redisstore: New: client is nil")

// New returns a Store on client: a single node, Sentinel or Cluster client.
// It panics if client is nil, as ratelimit.Middleware does with a Config that
// cannot work: when the store is built, not at the first request.
func New(client redis.UniversalClient, opts Options) *Store {
	if client == nil {
		panic(errNoClient)
	}
	s := &Store{client: client, prefix: opts.Prefix, timeout: opts.Timeout, now: opts.Now,
		script: redis.NewScript(takeSource), peek: redis.NewScript(peekSource),
		spare: !opts.NoLocalRefusals, epoch: time.Now(), refused: make(map[bucketName]refusal),
		batch: batcher{max: maxQueued}}
	rand.Read(s.idPrefix[:])
	if s.prefix == "" {
		s.prefix = "gatehouse:rl"
	}
	if s.timeout <= 0 {
		s.timeout = 50 * time.Millisecond
	}
	s.batch.timeout = s.timeout
	return s
}

// NewFromURL returns a Store on a client for url (redis://user:pass@host:6379/0,
// rediss:// for TLS), with a connection pool of its own that Close closes. It
// does not dial: its error is the URL's, and [Store.Ping] tells whether Redis
// answers.
//
// The client honours each decision's timeout (ContextTimeoutEnabled), dials
// once per attempt rather than go-redis's default of five attempts 100 ms
// apart, and retries a command once rather than three times: a decision has
// less time than one such wait, so while Redis refuses connections a request
// gets its answer (fail open or closed) within tens of milliseconds instead of
// after its timeout, and a connection that a restarted Redis closed still
// gets its one retry (a retried decision is charged once: see [Store.Take]).
// A client you build for [New] should do the same (DialerRetries: 1,
// MaxRetries: 1). Its pipelines, which carry the decisions, run on its one
// connection pool (PipelinePoolSize: -1), so that a refused connection is
// dialled once an attempt, not once in go-redis's pipeline pool and again
// in the main one. Its connections bound what a reply can make it allocate
// ([BoundReplies]), which a client you build should do too.
func NewFromURL(url string, opts Options) (*Store, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	o.Dialer = BoundReplies(nil, o.TLSConfig)
	o.ContextTimeoutEnabled = true
	o.DialerRetries = 1
	o.MaxRetries = 1
	o.PipelinePoolSize = -1
	s := New(redis.NewClient(o), opts)
	s.owned = true
	return s, nil
}

// Close ends the Store: the decisions waiting for a pipeline, and every
// later one, fail with ErrClosed; it closes the client if the Store made it
// (NewFromURL), and returns once the pipeline in flight, if any, has ended
// (by its deadline at the latest), so that no goroutine of the Store
// outlives it.
func (s *Store) Close() error {
	idle := s.batch.close()
	var err error
	if s.owned {
		err = s.client.Close()
	}
	if idle != nil {
		<-idle
	}
	s.batch.stopWatch()
	return err
}

// RoundTrips returns how many round trips to Redis the Store's decisions
// have made since it was made: pipelines sent, each carrying every decision
// that waited for it (see Take). Decisions answered locally make none.
func (s *Store) RoundTrips() int64 { return s.trips.Load() }

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
// A decision is idempotent: it carries an id, and a script run again with it
// (go-redis retrying after a lost reply) answers as the first run did without
// taking another token. An error may still have cost the key a token, since a
// reply that comes after the timeout was a decision taken; docs/limits.md says
// what can be lost and when. A refusal is remembered (unless
// Options.NoLocalRefusals), and the key is refused here, with the answer
// Redis would give, until its RetryAfter has passed, without a round trip:
// it never lets through a request Redis would refuse, and refuses nothing
// Redis would let through but in the cases docs/redis.md names.
//
// A decision that finds no round trip in flight is sent at once; those
// asked while one is in flight queue, and the next pipeline carries them
// all (up to 256, and at most 32 of one key, as many as the script keeps ids
// of, so that go-redis sending a pipeline again after a lost reply charges
// each once), with no timer: natural batching. A pipeline's decisions of one
// key under the same limits are one script call, which makes them in the
// order they were queued. At most 4,096 decisions
// queue; beyond, one fails at once with ErrQueueFull. A caller whose context
// ends while its decision is queued gets the context's error and its
// decision is not sent; once sent, it may still be made, as above.
func (s *Store) Take(ctx context.Context, c ratelimit.Charge, _ time.Time) (ratelimit.Decision, error) {
	return s.take(ctx, &c, "")
}

// names returns the Redis keys of c's buckets: the key's and, when c has an
// owner's bucket, the owner's ("" for none). Without an Owner the key's is
// {prefix:KEY}. With one, both are in the slot of the hash tag
// {prefix/o:N:OWNER} (N the owner's length in bytes): the owner's bucket is
// that tag, the key's is the tag, ":k:" and the key. No two charges' names
// meet: a name without an owner ends in "}" and has ":" after the prefix,
// the others "/"; N fixes where the owner ends, whatever it holds.
func (s *Store) names(c *ratelimit.Charge) (key, owner string) {
	if c.Owner == "" {
		return "{" + s.prefix + ":" + c.Key + "}", ""
	}
	tag := "{" + s.prefix + "/o:" + strconv.Itoa(len(c.Owner)) + ":" + c.Owner + "}"
	key = tag + ":k:" + c.Key
	if owned(c) {
		owner = tag
	}
	return key, owner
}

// owned says c has an owner's bucket: an Owner with limits.
func owned(c *ratelimit.Charge) bool { return c.Owner != "" && len(c.OwnerLimits) > 0 }

// take is Take with the decision's id (""; a new one, made only when the
// decision goes to Redis). Its steps: a refusal the store remembers answers
// without a round trip; otherwise Redis decides (ask), Go turns the buckets
// it returns into the Decision, and the store remembers what a later local
// refusal needs (rememberDecision).
func (s *Store) take(ctx context.Context, c *ratelimit.Charge, id string) (ratelimit.Decision, error) {
	if err := c.Validate(); err != nil {
		return ratelimit.Decision{}, err
	}
	var sent int64
	if s.spare {
		sent = s.clock()
		if dec, ok := s.localRefusal(c, sent); ok {
			return dec, nil
		}
	}
	if id == "" {
		id = s.nextID()
	}
	b, ob, allowed, err := s.ask(ctx, c, id)
	if err != nil {
		s.failures.Add(1)
		return ratelimit.Decision{}, err
	}
	var obp *gcra.Bucket
	if owned(c) {
		obp = &ob
	}
	var dec ratelimit.Decision
	gcra.Decide(&dec, &b, allowed, c.Cost, obp)
	if s.spare && (!allowed || obp != nil) {
		s.rememberDecision(c, &dec, &b, obp, allowed, sent)
	}
	return dec, nil
}

// ask has Redis decide c under the decision id, in one script call within
// the store's timeout, and returns the key's bucket and (with an owner's
// bucket) the owner's as the script left them, and whether it let the
// request through. Its error is Redis's, or one for a reply that is not the
// script's: the caller counts either as a failure.
func (s *Store) ask(ctx context.Context, c *ratelimit.Charge, id string) (b, owner gcra.Bucket, allowed bool, err error) {
	res, err := s.run(s.newCall(ctx, c, id)) // within the store's timeout: see batcher
	if err != nil {
		return b, owner, false, fmt.Errorf("redisstore: take: %w", err)
	}
	b, owner, allowed, ok := bucketsOf(res, c)
	if !ok {
		return b, owner, false, errors.New("redisstore: take: unexpected reply")
	}
	return b, owner, allowed, nil
}

// rememberDecision keeps what Redis's decision dec of c tells the store's
// local refusals (see Take), given the buckets b and owner (nil without an
// owner's bucket) as the script returned them, whether it allowed c, and
// sent, the store's clock when c was sent: a refusal of c's key, until its
// RetryAfter, and the owner's bucket (rememberOwnerLocked).
func (s *Store) rememberDecision(c *ratelimit.Charge, dec *ratelimit.Decision, b, owner *gcra.Bucket, allowed bool, sent int64) {
	offset := s.offset(b.At, sent)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !allowed {
		s.rememberLocked(bucketName{owner: c.Owner, key: c.Key},
			refusal{limits: cloneLimits(c.Limits), cost: max(c.Cost, 1), owned: owner != nil, bucket: *b, offset: offset, until: b.At + dec.RetryAfter.Milliseconds()})
	}
	if owner != nil {
		s.rememberOwnerLocked(c, dec, *owner, allowed, offset)
	}
}

// rememberOwnerLocked keeps the owner's bucket as decision dec of c left it,
// for the local refusals of any of the owner's keys: when dec refused c (its
// refusal may rest on it) or the store already keeps it (so that another
// key's spending here keeps those refusals exact), until the owner's windows
// are full again. When neither, no refusal needs it, and it is not kept.
// s.mu is held.
func (s *Store) rememberOwnerLocked(c *ratelimit.Charge, dec *ratelimit.Decision, owner gcra.Bucket, allowed bool, offset int64) {
	n := bucketName{owner: c.Owner, isOwner: true}
	if _, known := s.refused[n]; !known && allowed {
		return
	}
	full := int64(0)
	for _, w := range dec.More {
		if w.Owner {
			full = max(full, w.Reset.Milliseconds())
		}
	}
	s.rememberLocked(n, refusal{limits: ratelimit.Limits{More: slices.Clone(c.OwnerLimits)}, bucket: owner, offset: offset, until: owner.At + full})
}

// offset is a remembered bucket's clock minus the store's, for a bucket that
// the script returned standing at at, for a request sent at sent on the
// store's clock. Under Options.Now both clocks are it: 0. On Redis's TIME,
// the store takes Redis's reading to be the moment it sent the request,
// which is no later, so that a refusal it remembers ends no later than
// Redis's.
func (s *Store) offset(at, sent int64) int64 {
	if s.now != nil {
		return 0
	}
	return at - sent
}

// appendRates appends each rate's period in milliseconds and its limit, as
// take.lua and peek.lua read them.
func appendRates(args []any, rates []ratelimit.Rate) []any {
	for _, r := range rates {
		args = append(args, r.Period.Milliseconds(), r.Limit)
	}
	return args
}

// cloneLimits returns l with a More of its own, so that a caller's later
// change to its slice changes no remembered refusal.
func cloneLimits(l ratelimit.Limits) ratelimit.Limits {
	l.More = slices.Clone(l.More)
	return l
}

// sameLimits says a and b are the same windows (a nil and an empty More
// alike: no further windows).
func sameLimits(a, b ratelimit.Limits) bool {
	return a.PerMinute == b.PerMinute && a.PerDay == b.PerDay && slices.Equal(a.More, b.More)
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

// localRefusal answers c at now (the store's clock) if its key was refused
// under c's limits (and, with an owner's bucket, the store knows the owner's
// under c's OwnerLimits) and a request of c's cost would still be refused:
// the remembered buckets paid back by the time passed (gcra.Peek)
// are what Redis holds, as nothing can have been taken from the key since,
// and the owner's bucket is as the last decision of any of its keys left it.
// Otherwise the key's refusal is forgotten, and c goes to Redis: a refusal
// whose limits are not c's, one that a request of c's cost would pass, and
// one at a time before the refusal (Options.Now stepped back: the answer then
// depends on when the bucket last changed, which the store does not know).
func (s *Store) localRefusal(c *ratelimit.Charge, now int64) (ratelimit.Decision, bool) {
	kn := bucketName{owner: c.Owner, key: c.Key}
	s.mu.Lock()
	r, ok := s.refused[kn]
	if !ok {
		s.mu.Unlock()
		return ratelimit.Decision{}, false
	}
	at := now + r.offset // the bucket's clock
	var o refusal
	hit := sameLimits(r.limits, c.Limits) && at >= r.bucket.At
	if hit && owned(c) {
		o, ok = s.refused[bucketName{owner: c.Owner, isOwner: true}]
		hit = ok && slices.Equal(o.limits.More, c.OwnerLimits) && at >= o.bucket.At
	}
	if !hit {
		delete(s.refused, kn)
		s.mu.Unlock()
		return ratelimit.Decision{}, false
	}
	s.mu.Unlock()
	b := r.bucket
	gcra.Peek(&b, &c.Limits, at)
	var dec ratelimit.Decision
	if !owned(c) && !r.owned && max(c.Cost, 1) == r.cost && at < r.until {
		// The refused request again, before its RetryAfter (of the key's
		// windows alone): refused still.
		gcra.Decide(&dec, &b, false, c.Cost, nil)
		return dec, true
	}
	var obp *gcra.Bucket
	if owned(c) {
		ob := o.bucket
		gcra.Peek(&ob, &o.limits, at)
		obp = &ob
	}
	gcra.PeekDecide(&dec, &b, c.Cost, obp)
	if dec.Allowed {
		s.mu.Lock()
		delete(s.refused, kn)
		s.mu.Unlock()
		return ratelimit.Decision{}, false
	}
	return dec, true
}

// rememberLocked keeps r for n; s.mu is held. With maxRefused buckets kept,
// it first forgets the passed refusals among up to 64 of them (in the map's
// random order, so that the work per call is bounded), or, if none has
// passed, one of them: a forgotten refusal costs a round trip, never a wrong
// answer.
func (s *Store) rememberLocked(n bucketName, r refusal) {
	if _, ok := s.refused[n]; !ok && len(s.refused) >= maxRefused {
		now, seen, freed := s.clock(), 0, false
		var any bucketName
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
	s.refused[n] = r
}

// maxDebtMs bounds a window's Ms in a reply: a debt is at most its period,
// and a limit's change rounds it up by a millisecond.
const maxDebtMs = 2 * int64(ratelimit.MaxPeriod/time.Millisecond)

// bucketsOf reads the script's reply to c: allowed, each window's ms and
// frac of the key's minute and day, the time they stand at, those of the
// key's further windows, then with an owner's bucket its time and windows.
func bucketsOf(res []int64, c *ratelimit.Charge) (b, owner gcra.Bucket, allowed, ok bool) {
	n, m := len(c.Limits.More), 0
	if owned(c) {
		m = 1 + 2*len(c.OwnerLimits)
	}
	if len(res) != 6+2*n+m || res[0] < 0 || res[0] > 1 || res[5] < 0 {
		return b, owner, false, false
	}
	debt := func(i int, limit int) (gcra.Debt, bool) {
		d := gcra.Debt{Ms: res[i], Frac: res[i+1], Limit: int64(limit)}
		return d, d.Ms >= 0 && d.Frac >= 0 && d.Frac < d.Limit && d.Ms <= maxDebtMs
	}
	var okM, okD bool
	b.At = res[5]
	b.Minute, okM = debt(1, c.Limits.PerMinute)
	b.Day, okD = debt(3, c.Limits.PerDay)
	if !okM || !okD {
		return b, owner, false, false
	}
	var okMore bool
	if b.More, okMore = moreOf(c.Limits.More, debt, 6); !okMore {
		return b, owner, false, false
	}
	if m > 0 {
		i := 6 + 2*n
		if owner.At = res[i]; owner.At < 0 {
			return b, owner, false, false
		}
		if owner.More, okMore = moreOf(c.OwnerLimits, debt, i+1); !okMore {
			return b, owner, false, false
		}
	}
	return b, owner, res[0] == 1, true
}

// moreOf reads the ms and frac of each of rates' windows with debt, from
// the reply's index from on.
func moreOf(rates []ratelimit.Rate, debt func(int, int) (gcra.Debt, bool), from int) ([]gcra.MoreDebt, bool) {
	if len(rates) == 0 {
		return nil, true
	}
	more := make([]gcra.MoreDebt, len(rates))
	for j, r := range rates {
		d, ok := debt(from+2*j, r.Limit)
		if !ok {
			return nil, false
		}
		more[j] = gcra.MoreDebt{Period: r.Period.Milliseconds(), Debt: d}
	}
	return more, true
}

// nextID returns a decision id no other decision of any store shares: this
// store's random prefix and a count, 24 hexadecimal digits.
func (s *Store) nextID() string {
	var b [idLen]byte
	p := hex.Encode(b[:], s.idPrefix[:])
	n := s.ids.Add(1)
	for i := idLen - 1; i >= p; i-- {
		b[i] = "0123456789abcdef"[n&15]
		n >>= 4
	}
	return string(b[:])
}
