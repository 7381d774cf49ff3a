// Package testclock is the settable clock of the tests: a Config's Now that
// a test moves by hand instead of sleeping.
//
//	clk := testclock.New(t0)
//	h := ratelimit.Middleware(ratelimit.Config{Key: ratelimit.ByClientIP, Now: clk.Now})
//	clk.Advance(time.Minute) // the minute bucket has refilled
package testclock

import (
	"sync/atomic"
	"time"
)

// Clock is a settable time. Its zero value reads the Unix epoch. Clock is
// safe for concurrent use.
type Clock struct{ ns atomic.Int64 }

// New returns a Clock that reads t.
func New(t time.Time) *Clock {
	c := new(Clock)
	c.Set(t)
	return c
}

// Now returns the clock's time, in UTC; pass the method value as a Config's
// Now.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// Advance moves the clock d forward (backward if d is negative).
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
