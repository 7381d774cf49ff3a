package ratelimit

import (
	"fmt"
	"math/bits"
	"time"
)

// MaxLimit is the largest PerMinute or PerDay a [Store] accepts: 2^52. Up to it
// every step of a bucket's arithmetic is exact in integers, in Go and in a
// script whose numbers are float64 (Redis's Lua), so that every store decides
// alike. Larger limits are refused with [ErrInvalidLimits].
const MaxLimit = 1 << 52

// The windows' lengths in milliseconds, the unit of a bucket's clock.
const (
	minuteMs = 60_000
	dayMs    = 86_400_000
)

// Validate returns an error wrapping [ErrInvalidLimits] unless both limits
// are between 1 and [MaxLimit].
func (l Limits) Validate() error {
	if l.PerMinute < 1 || l.PerDay < 1 || l.PerMinute > MaxLimit || l.PerDay > MaxLimit {
		return fmt.Errorf("%w: %d a minute and %d a day, want 1 to 2^52", ErrInvalidLimits, l.PerMinute, l.PerDay)
	}
	return nil
}

// Debt is one window of a [Bucket]: how far it is from full. The window is
// full again after Ms milliseconds and Frac/Limit of one more, and one request
// adds the window's length to that time, divided by Limit. In units of
// 1/Limit millisecond the debt is Ms×Limit + Frac, with 0 <= Frac < Limit;
// keeping the two parts apart bounds every number by the window's length in
// milliseconds or by 2×Limit, which is what makes [MaxLimit] 2^52.
type Debt struct {
	Ms, Frac int64
	// Limit is the limit the debt is counted in: the last one it was
	// charged under.
	Limit int64
}

// Bucket is one key's two windows as every [Store] keeps them: a generic cell
// rate algorithm in integers. Its zero value is a key never seen: both windows
// full. [Bucket.Take] is the one rule of the package; a store that keeps its
// state elsewhere (redisstore's script) mirrors it step by step, and turns what
// it kept into a [Decision] with [Bucket.Decision].
type Bucket struct {
	// At is the time of the last request that changed the bucket, in Unix
	// milliseconds. The bucket's clock never goes back: Take treats an
	// earlier time as At.
	At          int64
	Minute, Day Debt
}

// Take decides one request under l at now (Unix milliseconds). It returns
// the bucket as it stands at now, the request's token taken if it is allowed,
// and whether it is. A refused request changes nothing: a caller keeps next
// only when allowed. Both windows first pay back the time since At at the
// limits they were counted in; a window whose limit changed then keeps its
// time until full, rounded up to the millisecond, at the new limit, so that a
// limit change never gives back more than the time passed would have.
func (b Bucket) Take(l Limits, now int64) (next Bucket, allowed bool) {
	next = b.Peek(l, now)
	m, okM := next.Minute.charge(minuteMs)
	d, okD := next.Day.charge(dayMs)
	if !okM || !okD {
		return next, false
	}
	next.Minute, next.Day = m, d
	return next, true
}

// Peek returns b as it stands at now under l, nothing taken: the time since
// At paid back, as [Bucket.Take] does before charging
// (the one place where a bucket moves to now; now never goes back past At).
func (b Bucket) Peek(l Limits, now int64) Bucket {
	if now < b.At {
		now = b.At
	}
	elapsed := now - b.At
	b.At = now
	b.Minute = b.Minute.advance(elapsed, int64(l.PerMinute))
	b.Day = b.Day.advance(elapsed, int64(l.PerDay))
	return b
}

// advance pays back elapsed milliseconds of d at its own limit, then counts
// what is left at limit.
func (d Debt) advance(elapsed, limit int64) Debt {
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

// charge adds one request to d, and says whether the window had room for it:
// its debt is then at most the window's length.
func (d Debt) charge(window int64) (Debt, bool) {
	d.Ms += window / d.Limit
	if d.Frac += window % d.Limit; d.Frac >= d.Limit {
		d.Frac -= d.Limit
		d.Ms++
	}
	return d, d.Ms < window || d.Ms == window && d.Frac == 0
}

// Decision is what b, as [Bucket.Take] returned it, tells the caller.
func (b Bucket) Decision(allowed bool) Decision {
	dec := Decision{
		Allowed: allowed,
		Minute:  b.Minute.window(minuteMs),
		Day:     b.Day.window(dayMs),
	}
	if !allowed {
		dec.RetryAfter = time.Duration(max(b.Minute.untilOne(minuteMs), b.Day.untilOne(dayMs))) * time.Millisecond
	}
	return dec
}

func (d Debt) window(length int64) Window {
	return Window{Limit: int(d.Limit), Remaining: int(d.Limit - d.used(length)), Reset: time.Duration(d.untilFull()) * time.Millisecond}
}

// untilFull is the time, in whole milliseconds, until d is zero.
func (d Debt) untilFull() int64 {
	if d.Frac > 0 {
		return d.Ms + 1
	}
	return d.Ms
}

// used is the number of requests d stands for, rounded up: the debt over the
// window's length, in 128 bits, as Ms×Limit can pass 2^63.
func (d Debt) used(length int64) int64 {
	hi, lo := bits.Mul64(uint64(d.Ms), uint64(d.Limit))
	lo, carry := bits.Add64(lo, uint64(d.Frac), 0)
	if hi+carry >= uint64(length) { // more than Limit requests: not a state Take makes
		return d.Limit
	}
	q, r := bits.Div64(hi+carry, lo, uint64(length))
	if r > 0 {
		q++
	}
	return min(int64(q), d.Limit)
}

// untilOne is the time, in whole milliseconds, until d has room for one more
// request: until Ms×Limit + Frac + length <= length×Limit, that is until Ms
// has fallen to length - (length+Frac)/Limit, rounded down.
func (d Debt) untilOne(length int64) int64 {
	need := d.Ms - length + (length+d.Frac+d.Limit-1)/d.Limit
	return max(need, 0)
}

// millis is t in Unix milliseconds, the clock of a Bucket.
func millis(t time.Time) int64 { return t.UnixMilli() }
