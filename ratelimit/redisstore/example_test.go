package redisstore_test

import (
	"net/http"

	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/ratelimit/redisstore"
	"github.com/redis/go-redis/v9"
)

// Every replica builds the same middleware on the same Redis; a key's limits
// then hold across all of them.
func Example() {
	rdb := redis.NewClient(&redis.Options{
		Addr:                  "127.0.0.1:6379",
		ContextTimeoutEnabled: true,
		// What a reply can make the client allocate is bounded.
		Dialer: redisstore.BoundReplies(nil, nil),
	})
	defer rdb.Close()

	limit := ratelimit.Middleware(ratelimit.Config{
		Key:          ratelimit.ByClientIP,
		Limits:       ratelimit.Limits{PerMinute: 60, PerDay: 10000},
		Store:        redisstore.New(rdb, redisstore.Options{}),
		OnStoreError: ratelimit.FailOpen, // availability first; the default fails closed with 503
	})
	http.Handle("/", limit(http.NotFoundHandler()))
}
