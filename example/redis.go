package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/ratelimit/redisstore"
)

// redisStore connects the rate limiter to the Redis at rawURL, shared with every
// other replica given the same URL. It checks that Redis answers at start-up;
// later failures fail closed (503) through the ratelimit default.
func redisStore(ctx context.Context, rawURL string, logger *slog.Logger) (ratelimit.Store, func(), error) {
	s, err := redisstore.NewFromURL(rawURL, redisstore.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("-redis: %w", err)
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("-redis: Redis at %s does not answer: %w", redactURL(rawURL), err)
	}
	logger.Info("rate limits kept in Redis", "url", redactURL(rawURL))
	return s, func() { s.Close() }, nil
}

// redactURL drops a password from a Redis URL before it is logged.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}
