package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-go/gatehouse/promgatehouse"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/ratelimit/redisstore"
)

// redisStore connects the rate limiter to the Redis at rawURL, shared with every
// other replica given the same URL; timeout bounds each decision (zero:
// redisstore's default). It checks that Redis answers at start-up, waiting up
// to redisStartTimeout (or timeout, if longer): a decision's budget is sized
// for a connection already open, and a first connection on a busy host, or
// over TLS, can take longer without Redis being down. What later failures do
// is the -redis-down policy's (see redisLimits). NewFromURL's client bounds
// what a reply can make it allocate (redisstore.BoundReplies): an endpoint on
// the address that is not Redis costs failed decisions, not the process.
// rediss:// is TLS, checked against the system's roots (SSL_CERT_FILE names a
// private CA's file).
func redisStore(ctx context.Context, rawURL string, timeout time.Duration, logger *slog.Logger) (*redisstore.Store, func(), error) {
	s, err := redisstore.NewFromURL(rawURL, redisstore.Options{Timeout: timeout})
	if err != nil {
		return nil, nil, fmt.Errorf("-redis: %w", redactError(err, rawURL))
	}
	check, err := redisstore.NewFromURL(rawURL, redisstore.Options{Timeout: max(timeout, redisStartTimeout)})
	if err == nil {
		err = check.Ping(ctx)
		check.Close()
	}
	if err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("-redis: Redis at %s does not answer: %w", redactURL(rawURL), err)
	}
	logger.Info("rate limits kept in Redis", "url", redactURL(rawURL))
	return s, func() { s.Close() }, nil
}

// redisDefaultTimeout is -redis-timeout's default, redisstore's own: enough
// for a Redis on the same network. redisStartTimeout bounds the start-up check
// that Redis answers.
const (
	redisDefaultTimeout = 50 * time.Millisecond
	redisStartTimeout   = 5 * time.Second
)

// redisDown is the -redis-down flag: what the rate limiter does while Redis
// fails. The zero value fails closed.
type redisDown struct {
	open  bool    // "open": let requests through without limits
	share float64 // "local:SHARE": above 0, decide locally at SHARE of each limit
}

// errRedisDown is the flag's usage, for a value it cannot read.
var errRedisDown = errors.New("want closed, open or local:SHARE with SHARE above 0 and at most 1, a decimal (0.34) or a fraction (1/3)")

// String returns the flag's value as Set reads it.
func (p *redisDown) String() string {
	switch {
	case p.share > 0:
		return "local:" + strconv.FormatFloat(p.share, 'g', -1, 64)
	case p.open:
		return "open"
	}
	return "closed"
}

// Set reads closed, open or local:SHARE.
func (p *redisDown) Set(s string) error {
	switch s {
	case "closed":
		*p = redisDown{}
		return nil
	case "open":
		*p = redisDown{open: true}
		return nil
	}
	v, ok := strings.CutPrefix(s, "local:")
	if !ok {
		return errRedisDown
	}
	share, err := parseShare(v)
	if err != nil || (ratelimit.FallbackConfig{Share: share}).Validate() != nil {
		return errRedisDown
	}
	*p = redisDown{share: share}
	return nil
}

// parseShare reads a decimal (0.34) or a fraction of two whole numbers (1/3).
func parseShare(s string) (float64, error) {
	num, den, ok := strings.Cut(s, "/")
	if !ok {
		return strconv.ParseFloat(s, 64)
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return 0, err
	}
	d, err := strconv.Atoi(den)
	if err != nil {
		return 0, err
	}
	return float64(n) / float64(d), nil // x/0 is ±Inf or NaN, which Set refuses
}

// redisLimits returns the rate-limit store of the Redis at o.redisURL under
// o.redisDown's policy, and the rate limiter's OnStoreError for it. Fail
// closed, /health pings Redis (every keyed call would get 503 without it);
// fail open or local, a replica without Redis still serves, so it does not.
// Local decisions are counted in the admin page's metrics, and the changes
// of state logged without the error, whose text names Redis's address.
func (g *gateway) redisLimits(ctx context.Context, o *options, logger *slog.Logger) (ratelimit.Store, func(http.ResponseWriter, *http.Request, error) bool, error) {
	s, closeStore, err := redisStore(ctx, o.redisURL, o.redisTimeout, logger)
	if err != nil {
		return nil, nil, err
	}
	g.closers = append(g.closers, closeStore)
	switch p := o.redisDown; {
	case p.share > 0:
		fb := ratelimit.Fallback(s, ratelimit.FallbackConfig{Share: p.share, Observe: func(e ratelimit.FallbackEvent) {
			if e.Degraded {
				logger.Warn("rate limits: Redis fails; each limit is enforced here at the local share until it answers", "share", p.share)
			} else {
				logger.Info("rate limits: Redis answers again; local decisions end")
			}
		}})
		if g.admin != nil {
			if err := promgatehouse.RegisterFallback(g.admin.reg, fb); err != nil {
				return nil, nil, err
			}
		}
		return fb, nil, nil
	case p.open:
		return s, ratelimit.FailOpen, nil
	}
	g.ping = s.Ping
	return s, nil, nil
}
