package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// DefaultRetryEvery is how often, while its primary store fails, a
// [FallbackStore] lets one request try the primary again, when
// [FallbackConfig.RetryEvery] is zero.
const DefaultRetryEvery = time.Second

// FallbackConfig configures [Fallback].
type FallbackConfig struct {
	// Share is the part of each limit this replica enforces on its own while
	// the primary store fails, above 0 and at most 1: 1/N for N replicas
	// behind one balancer, so that together they let through about the
	// limit. Each limit is scaled to Share × limit rounded up, and at least 1.
	// Required: how many replicas share a limit is the user's to say.
	Share float64
	// RetryEvery is how often, while the primary fails, one request tries
	// it again instead of the local store (zero: [DefaultRetryEvery]). It is
	// counted on the times given to Take: no goroutine runs, and with no
	// requests there are no retries.
	RetryEvery time.Duration
	// Local configures the in-memory store that decides while the primary
	// fails; a new one is made at the start of each outage.
	Local MemoryConfig
	// Observe, if set, is told each change of state: the primary failed and
	// local decisions began, or the primary answered again. It is called by
	// the request that made the change, once per change; it must be quick.
	Observe func(FallbackEvent)
}

// FallbackEvent is a change of a [FallbackStore]'s state, given to
// [FallbackConfig.Observe].
type FallbackEvent struct {
	// Degraded is true when the primary has just failed and the store
	// decides locally from now on, false when the primary has answered again.
	Degraded bool
	// Err is the primary's error that began local decisions; nil when
	// Degraded is false. It may name the primary's address: keep it out of
	// what callers see.
	Err error
}

// errShare refuses a FallbackConfig whose Share is not in (0, 1].
var errShare = errors.New("ratelimit: FallbackConfig.Share must be above 0 and at most 1 (1/N for N replicas)")

// Validate returns an error if c's Share is not above 0 and at most 1, or its
// RetryEvery is negative.
func (c FallbackConfig) Validate() error {
	if !(c.Share > 0 && c.Share <= 1) { // NaN fails both
		return errShare
	}
	if c.RetryEvery < 0 {
		return fmt.Errorf("ratelimit: FallbackConfig.RetryEvery is negative (%v)", c.RetryEvery)
	}
	return nil
}

// FallbackStore is a [Store] that survives the failure of another, its
// primary (Redis, say): while the primary fails, each request is decided by a
// [MemoryStore] of this process with each limit scaled by
// [FallbackConfig.Share], and every RetryEvery one request tries the primary
// again; the first answer from it ends the outage, and the local buckets are
// dropped.
//
// A failure is an error from the primary's Take, except one wrapping
// [ErrInvalidLimits] (the limits are wrong, not the store) or one that comes
// after the caller's context was done (the caller left): those are returned
// as they are, and change nothing. A primary that hangs is found out only when
// its Take returns: the primary bounds its own time (redisstore's Timeout),
// and each try costs its caller up to that time.
//
// A local decision carries the scaled limits, so the rate-limit headers show
// what this replica enforces. The first decision of a key in an outage starts
// from full buckets: the local store knows nothing of what the primary had
// counted.
//
// A FallbackStore is safe for concurrent use. [FallbackStore.Degraded] and
// [FallbackStore.LocalDecisions] are for a metric (promgatehouse's
// RegisterFallback).
type FallbackStore struct {
	primary Store
	cfg     FallbackConfig
	outage  atomic.Pointer[outage] // nil while the primary answers
	local   atomic.Uint64          // decisions made by an outage's local store
}

// outage is the state of one run of primary failures.
type outage struct {
	local *MemoryStore
	// nextTry is when (Unix nanoseconds, on Take's clock) a request may try
	// the primary again; the request that moves it on is the one that tries.
	nextTry atomic.Int64
}

// errNoPrimary refuses Fallback without a primary store.
var errNoPrimary = errors.New("ratelimit: Fallback: primary store is nil")

// Fallback returns a [FallbackStore] in front of primary. It panics if
// primary is nil or cfg.Validate fails, as [Middleware] does with its Config:
// a configuration that cannot work is found when the store is built.
func Fallback(primary Store, cfg FallbackConfig) *FallbackStore {
	if primary == nil {
		panic(errNoPrimary)
	}
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if cfg.RetryEvery == 0 {
		cfg.RetryEvery = DefaultRetryEvery
	}
	return &FallbackStore{primary: primary, cfg: cfg}
}

// Take implements [Store]: the primary's decision while it answers, else the
// local store's under the scaled limits. Its errors are the primary's that are
// not a failure (see [FallbackStore]), and the local store's
// [ErrInvalidLimits].
func (s *FallbackStore) Take(ctx context.Context, c Charge, now time.Time) (Decision, error) {
	o := s.outage.Load()
	if o == nil || o.try(now, s.cfg.RetryEvery) {
		d, err := s.primary.Take(ctx, c, now)
		if err == nil {
			if o != nil {
				s.recovered(o)
			}
			return d, nil
		}
		if errors.Is(err, ErrInvalidLimits) || ctx.Err() != nil {
			return d, err
		}
		o = s.failed(err, now)
	}
	if err := c.Validate(); err != nil {
		return Decision{}, err // as the primary would: scaled, they could pass
	}
	d, err := o.local.Take(ctx, s.scale(c), now)
	if err == nil {
		s.local.Add(1)
	}
	return d, err
}

// errNoPeek is Peek's error when the primary is not a [Peeker].
var errNoPeek = errors.New("ratelimit: the fallback's primary store cannot peek")

// Peek implements [Peeker]: while the primary answers, its Peek (an error if
// it is not a Peeker); in an outage, the local store's under the scaled
// limits. It never tries the primary, nor starts or ends an outage.
func (s *FallbackStore) Peek(ctx context.Context, c Charge, now time.Time) (Decision, error) {
	if o := s.outage.Load(); o != nil {
		if err := c.Validate(); err != nil {
			return Decision{}, err
		}
		return o.local.Peek(ctx, s.scale(c), now)
	}
	if p, ok := s.primary.(Peeker); ok {
		return p.Peek(ctx, c, now)
	}
	return Decision{}, errNoPeek
}

// try reports whether the request at now is the one that tries the primary:
// the first at or after nextTry, which moves nextTry on by every.
func (o *outage) try(now time.Time, every time.Duration) bool {
	t, next := o.nextTry.Load(), now.UnixNano()
	return next >= t && o.nextTry.CompareAndSwap(t, next+int64(every))
}

// failed returns the outage in force after the primary failed with err at
// now: the current one, or a new one (told to Observe) if there was none.
func (s *FallbackStore) failed(err error, now time.Time) *outage {
	for {
		if o := s.outage.Load(); o != nil {
			return o
		}
		o := &outage{local: NewMemoryStore(s.cfg.Local)}
		o.nextTry.Store(now.UnixNano() + int64(s.cfg.RetryEvery))
		if s.outage.CompareAndSwap(nil, o) {
			if s.cfg.Observe != nil {
				s.cfg.Observe(FallbackEvent{Degraded: true, Err: err})
			}
			return o
		}
	}
}

// recovered ends outage o, the primary having answered a try: its local
// buckets go with it.
func (s *FallbackStore) recovered(o *outage) {
	if s.outage.CompareAndSwap(o, nil) && s.cfg.Observe != nil {
		s.cfg.Observe(FallbackEvent{})
	}
}

// Degraded reports whether the primary failed and has not answered since:
// requests are decided locally. It changes only on a request: with no
// traffic, it stays true after the primary is back until the next try.
func (s *FallbackStore) Degraded() bool { return s.outage.Load() != nil }

// LocalDecisions returns how many requests were decided by the local store
// since s was made.
func (s *FallbackStore) LocalDecisions() uint64 { return s.local.Load() }

// scale returns the charge this replica decides while the primary fails: c
// with every window scaled by the share (see [scaleLimit]), the key's
// (PerMinute, PerDay and More) and the owner's, in slices of its own. The
// cost is not scaled: a request that costs more than a scaled window holds
// is refused locally, as the primary refuses one above the window's limit.
func (s *FallbackStore) scale(c Charge) Charge {
	share := s.cfg.Share
	c.Limits.PerMinute = scaleLimit(c.Limits.PerMinute, share)
	c.Limits.PerDay = scaleLimit(c.Limits.PerDay, share)
	c.Limits.More = scaleRates(c.Limits.More, share)
	c.OwnerLimits = scaleRates(c.OwnerLimits, share)
	return c
}

// scaleRates returns a copy of rates with each limit scaled by share (nil for
// none), so that the caller's slice is never written.
func scaleRates(rates []Rate, share float64) []Rate {
	if len(rates) == 0 {
		return rates
	}
	scaled := make([]Rate, len(rates))
	for i, r := range rates {
		scaled[i] = Rate{Limit: scaleLimit(r.Limit, share), Period: r.Period}
	}
	return scaled
}

// scaleLimit returns share × n rounded up, for n ≥ 1 and share in (0, 1]: at
// least 1 (the product is above 0) and at most n (a float64 product is
// monotonic, and n × 1 is n). n below 1 (a limit the store will refuse) is
// returned as it is. A product that is a whole number in decimal can be a hair
// above it in float64 (300 × 0.1 is 30.000000000000004): the share's own
// rounding and the product's are each at most a relative 2^-53, so a product
// within a relative 2^-52 above a whole number is taken as that number. Only
// limits above 2^45 or so can lose a token to it, where a float64 holds
// little of the fraction anyway.
func scaleLimit(n int, share float64) int {
	if n < 1 {
		return n
	}
	v := float64(n) * share
	c := math.Ceil(v)
	if c > v && v-(c-1) <= v*0x1p-52 {
		c--
	}
	return int(c)
}
