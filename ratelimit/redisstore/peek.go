package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/ratelimit/internal/gcra"
)

// Peek implements ratelimit.Peeker: it reads the key's bucket (and the
// owner's), and the clock of the Redis node that holds them (the clock Take
// runs on; or Options.Now), in one script (peek.lua), and returns what a
// request of c would see if it took nothing, by gcra.Peek, the
// rule take.lua mirrors. It writes nothing. now is ignored, as by Take. A
// failure is not counted in Failures: no request waits on a peek.
func (s *Store) Peek(ctx context.Context, c ratelimit.Charge, _ time.Time) (ratelimit.Decision, error) {
	if err := c.Validate(); err != nil {
		return ratelimit.Decision{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	kname, oname := s.names(&c)
	keys := []string{kname}
	args := []any{len(c.Limits.More)}
	for _, r := range c.Limits.More {
		args = append(args, r.Period.Milliseconds())
	}
	want := 2 + 7 + 3*len(c.Limits.More)
	if oname != "" {
		keys = append(keys, oname)
		for _, r := range c.OwnerLimits {
			args = append(args, r.Period.Milliseconds())
		}
		want += 1 + 3*len(c.OwnerLimits)
	}
	res, err := s.peek.Run(ctx, s.client, keys, args...).Slice()
	if err != nil {
		return ratelimit.Decision{}, fmt.Errorf("redisstore: peek: %w", err)
	}
	if len(res) != want {
		return ratelimit.Decision{}, errors.New("redisstore: peek: unexpected reply")
	}
	n := make([]int64, len(res)) // TIME's seconds and microseconds, then the buckets' fields
	for i, v := range res {
		if v == nil {
			continue // a field never written: the full bucket's zero
		}
		str, ok := v.(string)
		if !ok {
			return ratelimit.Decision{}, errors.New("redisstore: peek: unexpected reply")
		}
		if n[i], err = strconv.ParseInt(str, 10, 64); err != nil || n[i] < 0 {
			return ratelimit.Decision{}, errors.New("redisstore: peek: unexpected reply")
		}
	}
	now := time.Unix(n[0], n[1]*1000)
	if s.now != nil {
		now = s.now()
	}
	f := n[2:]
	b := gcra.Bucket{
		At:     f[0],
		Minute: gcra.Debt{Ms: f[1], Frac: f[2], Limit: f[3]},
		Day:    gcra.Debt{Ms: f[4], Frac: f[5], Limit: f[6]},
		More:   peekMore(f[7:], c.Limits.More),
	}
	var dec ratelimit.Decision
	gcra.Peek(&b, &c.Limits, now.UnixMilli())
	if oname == "" {
		gcra.PeekDecide(&dec, &b, c.Cost, nil)
		return dec, nil
	}
	f = f[7+3*len(c.Limits.More):]
	ob := gcra.Bucket{At: f[0], More: peekMore(f[1:], c.OwnerLimits)}
	ownerLimits := ratelimit.Limits{More: c.OwnerLimits}
	gcra.Peek(&ob, &ownerLimits, now.UnixMilli())
	gcra.PeekDecide(&dec, &b, c.Cost, &ob)
	return dec, nil
}

// peekMore is the further windows of rates as peek.lua read them from f:
// ms, frac and limit each (all zero: never written, full).
func peekMore(f []int64, rates []ratelimit.Rate) []gcra.MoreDebt {
	if len(rates) == 0 {
		return nil
	}
	more := make([]gcra.MoreDebt, len(rates))
	for i, r := range rates {
		more[i] = gcra.MoreDebt{Period: r.Period.Milliseconds(), Debt: gcra.Debt{Ms: f[3*i], Frac: f[3*i+1], Limit: f[3*i+2]}}
	}
	return more
}

var _ ratelimit.Peeker = (*Store)(nil)
