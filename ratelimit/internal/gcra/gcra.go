// Package gcra is the arithmetic of a rate-limit bucket that every store of
// package ratelimit shares: a generic cell rate algorithm in integers, exact
// for limits up to ratelimit.MaxLimit. ratelimit's MemoryStore keeps its
// buckets in memory with it, and ratelimit/redisstore's script mirrors it step
// for step and turns what Redis kept into a decision with it. It is internal
// so that the stores can change it together; users see only the decisions.
//
// Its functions are generic in ratelimit's Limits, Rate, Window and Decision
// (this package cannot import ratelimit, which imports it): each constraint
// below is the shape of one of those types, so that a store passes its own
// values and gets its own Decision, with nothing converted or copied.
package gcra

import (
	"math/bits"
	"time"
)

// The windows' lengths in milliseconds, the unit of a bucket's clock.
const (
	minuteMs = 60_000
	dayMs    = 86_400_000
)

// rate is the shape of ratelimit.Rate.
type rate = struct {
	Limit  int
	Period time.Duration
}

// Rate is ratelimit.Rate: a window's limit and its period.
type Rate interface{ ~rate }

// limits is the shape of ratelimit.Limits.
type limits[R Rate] struct {
	PerMinute, PerDay int
	More              []R
}

// Limits is ratelimit.Limits: a bucket's minute and day limits (zero for no
// such window) and its further windows.
type Limits[R Rate] interface {
	~struct {
		PerMinute, PerDay int
		More              []R
	}
}

// window is the shape of ratelimit.Window.
type window = struct {
	Limit     int
	Remaining int
	Reset     time.Duration
	Period    time.Duration
	Owner     bool
}

// Window is ratelimit.Window: where one window stands after a request.
type Window interface{ ~window }

// decision is the shape of ratelimit.Decision.
type decision[W Window] struct {
	Allowed     bool
	Minute, Day W
	More        []W
	RetryAfter  time.Duration
}

// Decision is ratelimit.Decision: a store's answer to one request.
type Decision[W Window] interface {
	~struct {
		Allowed     bool
		Minute, Day W
		More        []W
		RetryAfter  time.Duration
	}
}

// Debt is one window of a [Bucket]: how far it is from full. The window is
// full again after Ms milliseconds and Frac/Limit of one more, and a request
// of cost c adds c×Period/Limit to that time (Period the window's length in
// milliseconds). In units of 1/Limit millisecond the debt is Ms×Limit +
// Frac, with 0 <= Frac < Limit; keeping the two parts apart bounds every
// number by the window's Period in milliseconds times ratelimit.MaxCost, or
// by 2×Limit, which is what makes ratelimit.MaxLimit 2^52. A window has room
// for a request while its debt after the request is at most Period.
type Debt struct {
	Ms, Frac int64
	// Limit is the limit the debt is counted in: the last one it was
	// charged under. Zero is a window never charged (full), or none.
	Limit int64
}

// MoreDebt is a further window of a [Bucket]: its Debt and its Period in
// milliseconds, by which [Peek] matches it to a [Rate] of the limits.
type MoreDebt struct {
	Period int64
	Debt
}

// Bucket is one bucket's windows as every store keeps them. Its zero value
// is a bucket never seen: every window full. [Take] is the one rule; a store
// that keeps its state elsewhere (redisstore's script) mirrors it step by
// step, and turns what it kept into a decision with [Decide], or with
// [PeekDecide] for ratelimit.Peeker.
//
// A key's bucket has the Minute and Day windows of its Limits and one Debt
// in More for each of Limits.More, in that order. An owner's bucket
// (ratelimit.Charge.Owner) is a Bucket with only More, one for each of the
// Charge's OwnerLimits: it is taken under Limits{More: OwnerLimits}, whose
// zero PerMinute and PerDay mean no such window.
//
// The state a store keeps per bucket is exactly: At; for the minute and the
// day, Ms, Frac and Limit (Period is implied); and for each further window
// its Period (in milliseconds: what matches it to a rate, see [Peek]), Ms,
// Frac and Limit. Every one is an integer from 0 to below 2^53 (At is a
// Unix time in milliseconds). A store that keeps these and applies [Take]'s
// steps decides exactly as ratelimit.MemoryStore does.
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
// (Unix milliseconds), in place: b becomes the bucket as it stands at now,
// the request's tokens taken from every window if it is allowed, and Take
// says whether it is: it is allowed when every window has room for cost
// tokens. A refused request changes nothing: a caller keeps the new b only
// when allowed; when refused, b is the old one as it stands at now ([Peek]),
// for the decision.
//
// A request whose cost is above a window's limit never passes, whatever the
// window holds: it is refused, and its decision's RetryAfter is that
// window's whole period (the time an empty window takes to refill), so that
// a client that obeys it backs off rather than retrying at once.
//
// Take never writes to the More b had: b gets its own when it or l has any.
// (l is a pointer, as Limits are too large to pass in registers: the pair's
// hot path.)
func Take[L Limits[R], R Rate](b *Bucket, l *L, cost int, now int64) bool {
	c := int64(max(cost, 1))
	Peek(b, l, now)
	m, okM := b.Minute.charge(c, minuteMs)
	d, okD := b.Day.charge(c, dayMs)
	if !okM || !okD {
		return false
	}
	for _, w := range b.More {
		if _, ok := w.charge(c, w.Period); !ok {
			return false
		}
	}
	b.Minute, b.Day = m, d
	for i := range b.More {
		b.More[i].Debt, _ = b.More[i].charge(c, b.More[i].Period)
	}
	return true
}

// Peek moves b to now under l, in place, nothing taken: the time since At
// paid back, as [Take] does before charging (the one place where a bucket
// moves to now; now never goes back past At). Every window first pays back
// the time since At at the limit it was counted in; a window whose limit
// changed then keeps its time until full, rounded up to the millisecond, at
// the new limit, so that a limit change never gives back more than the time
// passed would have. The further windows are matched to l.More by period: a
// window of b whose period l.More still has keeps its debt, one whose period
// is new starts full, and one whose period l.More no longer has is dropped.
// A zero l.PerMinute or l.PerDay is no such window (an owner's bucket).
// Peek never writes to the More b had: b gets its own.
func Peek[L Limits[R], R Rate](b *Bucket, lp *L, now int64) {
	l := limits[R](*lp)
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
}

// advanceMore returns the windows of rates, each the one of old with its
// period advanced by elapsed, or a full one; nil for no rates.
func advanceMore[R Rate](old []MoreDebt, rates []R, elapsed int64) []MoreDebt {
	if len(rates) == 0 {
		return nil
	}
	out := make([]MoreDebt, len(rates))
	for i, rr := range rates {
		r := rate(rr)
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

// Decide sets *dec to what b and owner (the owner's bucket, nil for none),
// as [Take] left them for one request of cost at the same time, tell the
// caller: allowed is the request's fate (both Takes allowed it). The
// decision's More are b's further windows, then owner's, marked Owner. A
// refusal's RetryAfter is the latest time at which cost fits in a window,
// over every window of both buckets (see [Take] for a cost above a limit).
func Decide[D Decision[W], W Window](dec *D, b *Bucket, allowed bool, cost int, owner *Bucket) {
	d := decision[W]{
		Allowed: allowed,
		Minute:  W(b.Minute.window(minuteMs)),
		Day:     W(b.Day.window(dayMs)),
	}
	n := len(b.More)
	if owner != nil {
		n += len(owner.More)
	}
	if n > 0 {
		d.More = make([]W, 0, n)
		for _, m := range b.More {
			d.More = append(d.More, W(m.window(m.Period)))
		}
		if owner != nil {
			for _, m := range owner.More {
				w := m.window(m.Period)
				w.Owner = true
				d.More = append(d.More, W(w))
			}
		}
	}
	if !allowed {
		c := int64(max(cost, 1))
		ms := max(b.Minute.untilFits(c, minuteMs), b.Day.untilFits(c, dayMs))
		for _, m := range b.More {
			ms = max(ms, m.untilFits(c, m.Period))
		}
		if owner != nil {
			for _, m := range owner.More {
				ms = max(ms, m.untilFits(c, m.Period))
			}
		}
		d.RetryAfter = time.Duration(ms) * time.Millisecond
	}
	*dec = D(d)
}

// PeekDecide sets *dec to what b and owner (nil for none), as [Peek] left
// them at the same time, tell a reader: Remaining is what is left now,
// Allowed whether one more request of cost passes and, if not, RetryAfter
// when one would.
func PeekDecide[D Decision[W], W Window](dec *D, b *Bucket, cost int, owner *Bucket) {
	c := int64(max(cost, 1))
	allowed := b.fits(c) && (owner == nil || owner.fits(c))
	Decide(dec, b, allowed, cost, owner)
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

// FullIn is the time, in whole milliseconds from At, until every window of
// b is full: from then on the bucket is the same as one never seen.
func (b *Bucket) FullIn() int64 {
	t := max(b.Minute.untilFull(), b.Day.untilFull())
	for _, d := range b.More {
		t = max(t, d.untilFull())
	}
	return t
}

// Step is the time, in whole milliseconds, a request of cost 1 takes to
// refill in the slowest of b's windows, at the limits each was last counted
// in: how long a key that comes back at its rate leaves its full bucket idle.
func (b *Bucket) Step() int64 {
	t := max(b.Minute.step(minuteMs), b.Day.step(dayMs))
	for _, d := range b.More {
		t = max(t, d.step(d.Period))
	}
	return t
}

// step is the time, in whole milliseconds rounded up, a request of cost 1
// takes to refill in d, of the given period: 0 for no window.
func (d Debt) step(period int64) int64 {
	if d.Limit == 0 {
		return 0
	}
	return (period + d.Limit - 1) / d.Limit
}

func (d Debt) window(period int64) window {
	return window{Limit: int(d.Limit), Remaining: int(d.Limit - d.used(period)), Reset: time.Duration(d.untilFull()) * time.Millisecond,
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
