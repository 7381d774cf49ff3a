package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/redis/go-redis/v9"
)

// Peek implements ratelimit.Peeker: it reads key's bucket, and Redis's clock
// (or Options.Now), and returns what a request would see if it took nothing,
// by ratelimit.Bucket.Peek, the rule take.lua mirrors. It writes nothing. now
// is ignored, as by Take. A failure is not counted in Failures: no request
// waits on a peek.
func (s *Store) Peek(ctx context.Context, key string, limits ratelimit.Limits, _ time.Time) (ratelimit.Decision, error) {
	if err := limits.Validate(); err != nil {
		return ratelimit.Decision{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var fields *redis.SliceCmd
	var clock *redis.TimeCmd
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		fields = p.HMGet(ctx, "{"+s.prefix+":"+key+"}", "at", "mms", "mfr", "ml", "dms", "dfr", "dl")
		if s.now == nil {
			clock = p.Time(ctx)
		}
		return nil
	})
	if err != nil {
		return ratelimit.Decision{}, fmt.Errorf("redisstore: peek: %w", err)
	}
	var now time.Time
	if s.now != nil {
		now = s.now()
	} else {
		now = clock.Val()
	}
	var n [7]int64
	for i, v := range fields.Val() {
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
	b := ratelimit.Bucket{
		At:     n[0],
		Minute: ratelimit.Debt{Ms: n[1], Frac: n[2], Limit: n[3]},
		Day:    ratelimit.Debt{Ms: n[4], Frac: n[5], Limit: n[6]},
	}
	return b.Peek(limits, now.UnixMilli()).PeekDecision(), nil
}

var _ ratelimit.Peeker = (*Store)(nil)
