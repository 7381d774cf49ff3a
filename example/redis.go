package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// redisStore is replaced when the Redis store lands.
func redisStore(ctx context.Context, url string, logger *slog.Logger) (ratelimit.Store, func(), error) {
	return nil, nil, errors.New("-redis: not available yet")
}
