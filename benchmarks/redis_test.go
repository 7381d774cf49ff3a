package benchmarks

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/redistest"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/ratelimit/redisstore"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// BenchmarkRedisDecision compares one decision of redisstore (two windows,
// one script call) with go-redis/redis_rate (one GCRA window, one script call)
// on the same local Redis, serially and in parallel, over 1,000 keys. It lives
// here, not in redisstore's module, so that redis_rate is no dependency of
// redisstore's users. Without redis-server on PATH it skips.
func BenchmarkRedisDecision(b *testing.B) {
	s := redistest.Start(b)
	c := redis.NewClient(&redis.Options{Addr: s.Addr, PoolSize: 64, ContextTimeoutEnabled: true})
	defer c.Close()
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = "user-" + strconv.Itoa(i)
	}
	store := redisstore.New(c, redisstore.Options{Timeout: time.Second})
	limits := ratelimit.Limits{PerMinute: 1_000_000_000, PerDay: 1_000_000_000}
	rr := redis_rate.NewLimiter(c)
	limit := redis_rate.PerMinute(1_000_000_000)
	ctx := context.Background()

	decide := map[string]func(key string) error{
		"gatehouse-redisstore": func(key string) error {
			_, err := store.Take(ctx, ratelimit.Charge{Key: key, Limits: limits}, time.Time{})
			return err
		},
		"redis_rate": func(key string) error {
			_, err := rr.Allow(ctx, key, limit)
			return err
		},
	}
	for _, name := range []string{"gatehouse-redisstore", "redis_rate"} {
		f := decide[name]
		b.Run("Serial/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := f(keys[i%len(keys)]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Parallel/"+name, func(b *testing.B) {
			b.ReportAllocs()
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := f(keys[n.Add(1)%int64(len(keys))]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
