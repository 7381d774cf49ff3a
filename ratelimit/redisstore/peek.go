package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// Peek implements ratelimit.Peeker: it reads key's bucket, and the clock of
// the Redis node that holds it (the clock Take runs on; or Options.Now), in
// one script (peek.lua), and returns what a request would see if it took
// nothing, by ratelimit.Bucket.Peek, the rule take.lua mirrors. It writes
// nothing. now is ignored, as by Take. A failure is not counted in Failures: no request
// waits on a peek.
func (s *Store) Peek(ctx context.Context, key string, limits ratelimit.Limits, _ time.Time) (ratelimit.Decision, error) {
	if err := limits.Validate(); err != nil {
		return ratelimit.Decision{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	res, err := s.peek.Run(ctx, s.client, []string{"{" + s.prefix + ":" + key + "}"}).Slice()
	if err != nil {
		return ratelimit.Decision{}, fmt.Errorf("redisstore: peek: %w", err)
	}
	if len(res) != 9 {
		return ratelimit.Decision{}, errors.New("redisstore: peek: unexpected reply")
	}
	var n [9]int64 // TIME's seconds and microseconds, then the bucket's fields
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
	b := ratelimit.Bucket{
		At:     f[0],
		Minute: ratelimit.Debt{Ms: f[1], Frac: f[2], Limit: f[3]},
		Day:    ratelimit.Debt{Ms: f[4], Frac: f[5], Limit: f[6]},
	}
	return b.Peek(limits, now.UnixMilli()).PeekDecision(), nil
}

var _ ratelimit.Peeker = (*Store)(nil)
