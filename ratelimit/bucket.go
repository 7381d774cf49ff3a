package ratelimit

import (
	"fmt"
	"math/bits"
	"time"
)

// MaxLimit is the largest limit of any window a [Store] accepts: 2^52. Up to
// it every step of a bucket's arithmetic is exact in integers, in Go and in a
// script whose numbers are float64 (Redis's Lua), so that every store decides
// alike. Larger limits are refused with [ErrInvalidLimits].
const MaxLimit = 1 << 52

// MaxPeriod is the longest window a [Rate] may have: 31 days.
const MaxPeriod = 31 * 24 * time.Hour

// MaxCost is the largest [Charge.Cost]: 2^20 tokens. One request adds
// Cost×Period/Limit milliseconds to each window's debt; with Period at most
// [MaxPeriod] (2,678,400,000 ms, under 2^31.4) the product Cost×Period stays
// under 2^51.4, a debt after a charge under Period + Cost×Period < 2^52, and
// a debt's fraction under 2×[MaxLimit] = 2^53: every number a bucket holds or
// computes while charging is an integer below 2^53, exact in a float64, as it
// must be for redisstore's script to decide as [Bucket.Take] does.
const MaxCost = 1 << 20

// The windows' lengths in milliseconds, the unit of a bucket's clock.
const (
	minuteMs = 60_000
	dayMs    = 86_400_000
)

// Validate returns an error wrapping [ErrInvalidLimits] unless r.Limit is
// between 1 and [MaxLimit] and r.Period is a whole number of seconds from
// 1 s to [MaxPeriod].
func (r Rate) Validate() error {
	if r.Limit < 1 || r.Limit > MaxLimit || r.Period < time.Second || r.Period > MaxPeriod || r.Period%time.Second != 0 {
		return fmt.Errorf("%w: %d per %v, want 1 to 2^52 per whole seconds from 1s to 31 days", ErrInvalidLimits, r.Limit, r.Period)
	}
	return nil
}

// Validate returns an error wrapping [ErrInvalidLimits] unless both PerMinute
// and PerDay are between 1 and [MaxLimit] and every rate of More is valid
// ([Rate.Validate]) with a period of its own: no two of More, and none of
// them, share a period or have a minute's or a day's.
func (l Limits) Validate() error {
	if l.PerMinute < 1 || l.PerDay < 1 || l.PerMinute > MaxLimit || l.PerDay > MaxLimit {
		return fmt.Errorf("%w: %d a minute and %d a day, want 1 to 2^52", ErrInvalidLimits, l.PerMinute, l.PerDay)
	}
	if len(l.More) == 0 {
		return nil
	}
	return validateRates(l.More, true)
}

// validateRates checks each rate and that no two share a period (nor, with
// pair, a minute's or a day's).
func validateRates(rates []Rate, pair bool) error {
	for i, r := range rates {
		if err := r.Validate(); err != nil {
			return err
		}
		if pair && (r.Period == time.Minute || r.Period == 24*time.Hour) {
			return fmt.Errorf("%w: a further window of %v: a minute and a day are PerMinute and PerDay", ErrInvalidLimits, r.Period)
		}
		for _, o := range rates[:i] {
			if o.Period == r.Period {
				return fmt.Errorf("%w: two windows of %v", ErrInvalidLimits, r.Period)
			}
		}
	}
	return nil
}

// Validate returns an error wrapping [ErrInvalidLimits] unless c's Limits
// are valid, its Cost is between 0 and [MaxCost], and, with an Owner, its
// OwnerLimits are valid rates of distinct periods. A Cost above a window's
// limit is valid, and always refused (see [Bucket.Take]).
func (c *Charge) Validate() error {
	if err := c.Limits.Validate(); err != nil {
		return err
	}
	if c.Cost < 0 || c.Cost > MaxCost {
		return fmt.Errorf("%w: cost %d, want 0 to 2^20", ErrInvalidLimits, c.Cost)
	}
	if c.Owner != "" && len(c.OwnerLimits) > 0 {
		return validateRates(c.OwnerLimits, false)
	}
	return nil
}

// cost is c's Cost, 0 meaning 1.
func (c *Charge) cost() int { return max(c.Cost, 1) }

// owned says c has an owner's bucket: an Owner with limits.
func (c *Charge) owned() bool { return c.Owner != "" && len(c.OwnerLimits) > 0 }

// Debt is one window of a [Bucket]: how far it is from full. The window is
// full again after Ms milliseconds and Frac/Limit of one more, and a request
// of cost c adds c×Period/Limit to that time (Period the window's length in
// milliseconds). In units of 1/Limit
// millisecond the debt is Ms×Limit + Frac, with 0 <= Frac < Limit; keeping
// the two parts apart bounds every number by the window's Period in
// milliseconds times [MaxCost], or by 2×Limit, which is what makes [MaxLimit]
// 2^52. A window has room for a request while its debt after the request is
// at most Period.
type Debt struct {
	Ms, Frac int64
	// Limit is the limit the debt is counted in: the last one it was
	// charged under. Zero is a window never charged (full), or none.
	Limit int64
}

// MoreDebt is a further window of a [Bucket]: its Debt and its Period in
// milliseconds, by which [Bucket.Peek] matches it to a [Rate] of the limits.
type MoreDebt struct {
	Period int64
	Debt
}

// Bucket is one bucket's windows as every [Store] keeps them: a generic cell
// rate algorithm in integers. Its zero value is a bucket never seen: every
// window full. [Bucket.Take] is the one rule of the package; a store that
// keeps its state elsewhere (redisstore's script) mirrors it step by step, and
// turns what it kept into a [Decision] with [Bucket.Decision], or with
// [Bucket.PeekDecision] for [Peeker].
//
// A key's bucket has the Minute and Day windows of its [Limits] and one Debt
// in More for each of Limits.More, in that order. An owner's bucket
// ([Charge.Owner]) is a Bucket with only More, one for each of
// [Charge.OwnerLimits]: it is taken under Limits{More: OwnerLimits}, whose
// zero PerMinute and PerDay mean no such window.
//
// The state a store keeps per bucket is exactly: At; for the minute and the
// day, Ms, Frac and Limit (Period is implied); and for each further window
// its Period (in milliseconds: what matches it to a rate, see [Bucket.Peek]),
// Ms, Frac and Limit. Every one is an integer from 0 to below 2^53 (At is a
// Unix time in milliseconds). A store that keeps these and applies
// [Bucket.Take]'s steps decides exactly as [MemoryStore] does.
type Bucket struct {
	// At is the time of the last request that changed the bucket, in Unix
	// milliseconds. The bucket's clock never goes back: Take treats an
	// earlier time as At.
	At          int64
	Minute, Day Debt
	// More are the further windows, in the order of the limits they were
	// last taken or peeked under; nil when there are none.
	More []MoreDebt
}

// Take decides one request of cost (0 or less meaning 1) under l at now
// (Unix milliseconds). It returns the bucket as it stands at now, the
// request's tokens taken from every window if it is allowed, and whether it
// is: it is allowed when every window has room for cost tokens. A refused
// request changes nothing: a caller keeps next only when allowed, and next
// is then the refused bucket as it stands at now ([Bucket.Peek]).
//
// A request whose cost is above a window's limit never passes, whatever the
// window holds: it is refused, and its [Decision]'s RetryAfter is that
// window's whole period (the time an empty window takes to refill), so that a
// client that obeys it backs off rather than retrying at once.
//
// Take never writes to b's More: next has its own when b or l has any.
func (b Bucket) Take(l Limits, cost int, now int64) (next Bucket, allowed bool) {
	c := int64(max(cost, 1))
	next = b.Peek(l, now)
	m, okM := next.Minute.charge(c, minuteMs)
	d, okD := next.Day.charge(c, dayMs)
	if !okM || !okD {
		return next, false
	}
	for _, w := range next.More {
		if _, ok := w.charge(c, w.Period); !ok {
			return next, false
		}
	}
	next.Minute, next.Day = m, d
	for i := range next.More {
		next.More[i].Debt, _ = next.More[i].charge(c, next.More[i].Period)
	}
	return next, true
}

// Peek returns b as it stands at now under l, nothing taken: the time since
// At paid back, as [Bucket.Take] does before charging (the one place where a
// bucket moves to now; now never goes back past At). Every window first pays
// back the time since At at the limit it was counted in; a window whose limit
// changed then keeps its time until full, rounded up to the millisecond, at
// the new limit, so that a limit change never gives back more than the time
// passed would have. The further windows are matched to l.More by period: a
// window of b whose period l.More still has keeps its debt, one whose period
// is new starts full, and one whose period l.More no longer has is dropped.
// A zero l.PerMinute or l.PerDay is no such window (an owner's bucket).
func (b Bucket) Peek(l Limits, now int64) Bucket {
	if now < b.At {
		now = b.At
	}
	elapsed := now - b.At
	b.At = now
	b.Minute = b.Minute.advance(elapsed, int64(l.PerMinute))
	b.Day = b.Day.advance(elapsed, int64(l.PerDay))
	if len(l.More) > 0 || b.More != nil {
		b.More = advanceMore(b.More, l.More, elapsed)
	}
	return b
}

// advanceMore returns the windows of rates, each the one of old with its
// period advanced by elapsed, or a full one; nil for no rates.
func advanceMore(old []MoreDebt, rates []Rate, elapsed int64) []MoreDebt {
	if len(rates) == 0 {
		return nil
	}
	out := make([]MoreDebt, len(rates))
	for i, r := range rates {
		p := r.Period.Milliseconds()
		var d Debt
		for _, o := range old {
			if o.Period == p {
				d = o.Debt
				break
			}
		}
		out[i] = MoreDebt{Period: p, Debt: d.advance(elapsed, int64(r.Limit))}
	}
	return out
}

// advance pays back elapsed milliseconds of d at its own limit, then counts
// what is left at limit (0: no window).
func (d Debt) advance(elapsed, limit int64) Debt {
	if limit == 0 {
		return Debt{}
	}
	if d.Ms -= elapsed; d.Ms < 0 || d.Limit == 0 {
		d.Ms, d.Frac = 0, 0
	}
	if d.Limit != limit {
		if d.Frac > 0 {
			d.Ms++
		}
		d.Frac, d.Limit = 0, limit
	}
	return d
}

// charge adds a request of cost c to d, and says whether the window had room
// for it: its debt is then at most its period. A window of no limit has
// room for anything.
func (d Debt) charge(c, period int64) (Debt, bool) {
	if d.Limit == 0 {
		return d, true
	}
	t := c * period
	d.Ms += t / d.Limit
	if d.Frac += t % d.Limit; d.Frac >= d.Limit {
		d.Frac -= d.Limit
		d.Ms++
	}
	return d, d.Ms < period || d.Ms == period && d.Frac == 0
}

// Decision is what b and owner (the owner's bucket, nil for none), as
// [Bucket.Take] returned them for one request of cost at the same time,
// tell the caller: allowed is the request's fate (both Takes allowed it).
// The decision's More are b's further windows, then owner's, marked Owner.
// A refusal's RetryAfter is the latest time at which cost fits in a window,
// over every window of both buckets (see [Bucket.Take] for a cost above a
// limit).
func (b Bucket) Decision(allowed bool, cost int, owner *Bucket) Decision {
	dec := Decision{
		Allowed: allowed,
		Minute:  b.Minute.window(minuteMs),
		Day:     b.Day.window(dayMs),
	}
	n := len(b.More)
	if owner != nil {
		n += len(owner.More)
	}
	if n > 0 {
		dec.More = make([]Window, 0, n)
		for _, d := range b.More {
			dec.More = append(dec.More, d.window(d.Period))
		}
		if owner != nil {
			for _, d := range owner.More {
				w := d.window(d.Period)
				w.Owner = true
				dec.More = append(dec.More, w)
			}
		}
	}
	if !allowed {
		c := int64(max(cost, 1))
		ms := max(b.Minute.untilFits(c, minuteMs), b.Day.untilFits(c, dayMs))
		for _, d := range b.More {
			ms = max(ms, d.untilFits(c, d.Period))
		}
		if owner != nil {
			for _, d := range owner.More {
				ms = max(ms, d.untilFits(c, d.Period))
			}
		}
		dec.RetryAfter = time.Duration(ms) * time.Millisecond
	}
	return dec
}

// PeekDecision is what b and owner (nil for none), as [Bucket.Peek] returned
// them at the same time, tell a reader: Remaining is what is left now,
// Allowed whether one more request of cost passes and, if not, RetryAfter
// when one would.
func (b Bucket) PeekDecision(cost int, owner *Bucket) Decision {
	c := int64(max(cost, 1))
	allowed := b.fits(c) && (owner == nil || owner.fits(c))
	return b.Decision(allowed, cost, owner)
}

// fits says every window of b has room for cost c.
func (b *Bucket) fits(c int64) bool {
	if _, ok := b.Minute.charge(c, minuteMs); !ok {
		return false
	}
	if _, ok := b.Day.charge(c, dayMs); !ok {
		return false
	}
	for _, d := range b.More {
		if _, ok := d.charge(c, d.Period); !ok {
			return false
		}
	}
	return true
}

// fullIn is the time, in whole milliseconds from At, until every window of
// b is full.
func (b *Bucket) fullIn() int64 {
	t := max(b.Minute.untilFull(), b.Day.untilFull())
	for _, d := range b.More {
		t = max(t, d.untilFull())
	}
	return t
}

func (d Debt) window(period int64) Window {
	return Window{Limit: int(d.Limit), Remaining: int(d.Limit - d.used(period)), Reset: time.Duration(d.untilFull()) * time.Millisecond,
		Period: time.Duration(period) * time.Millisecond}
}

// untilFull is the time, in whole milliseconds, until d is zero.
func (d Debt) untilFull() int64 {
	if d.Frac > 0 {
		return d.Ms + 1
	}
	return d.Ms
}

// used is the number of tokens d stands for, rounded up: the debt over the
// period, in 128 bits, as Ms×Limit can pass 2^63.
func (d Debt) used(period int64) int64 {
	if d.Limit == 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(d.Ms), uint64(d.Limit))
	lo, carry := bits.Add64(lo, uint64(d.Frac), 0)
	if hi+carry >= uint64(period) { // more than Limit tokens: not a state Take makes
		return d.Limit
	}
	q, r := bits.Div64(hi+carry, lo, uint64(period))
	if r > 0 {
		q++
	}
	return min(int64(q), d.Limit)
}

// untilFits is the time, in whole milliseconds, until d has room for a
// request of cost c: until Ms×Limit + Frac + c×Period <= Period×Limit, that
// is until Ms has fallen to Period - ceil((Frac + c×Period)/Limit). Every
// intermediate stays below 2^53. A cost above Limit never fits: the answer is
// then the whole Period.
func (d Debt) untilFits(c, period int64) int64 {
	if d.Limit == 0 {
		return 0
	}
	if c > d.Limit {
		return period
	}
	t := c * period
	q, rem := t/d.Limit, d.Frac+t%d.Limit // rem < 2×Limit
	if rem > 0 {
		q++
	}
	if rem > d.Limit {
		q++
	}
	return max(d.Ms-period+q, 0)
}

// millis is t in Unix milliseconds, the clock of a Bucket.
func millis(t time.Time) int64 { return t.UnixMilli() }
