package ratelimit

import (
	"fmt"
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
// must be for redisstore's script to decide as [MemoryStore] does.
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
// limit is valid, and always refused (see [Decision].RetryAfter).
func (c *Charge) Validate() error {
	l := &c.Limits
	if l.PerMinute >= 1 && l.PerDay >= 1 && l.PerMinute <= MaxLimit && l.PerDay <= MaxLimit &&
		len(l.More) == 0 && c.Cost >= 0 && c.Cost <= MaxCost && c.Owner == "" {
		return nil // the pair's hot path, inlined
	}
	return c.validate()
}

// validate is [Charge.Validate] in full.
func (c *Charge) validate() error {
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

// millis is t in Unix milliseconds, the clock of a bucket.
func millis(t time.Time) int64 { return t.UnixMilli() }
