package redisstore_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/redistest"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/ratelimit/redisstore"
	"github.com/redis/go-redis/v9"
)

// examples is the redis-server of this package's examples, started by the
// first example that runs: an example has no testing.T to start one with.
var examples redistest.Examples

// TestMain skips the examples without redis-server on PATH, as the tests
// skip (with GATEHOUSE_REQUIRE_REDIS=1 it fails instead), and stops their
// server once every test and example has run.
func TestMain(m *testing.M) {
	flag.Parse()
	if err := examples.SkipIfMissing(); err != nil {
		fmt.Fprintln(os.Stderr, "redisstore examples:", err)
		os.Exit(1)
	}
	code := m.Run()
	examples.Stop()
	os.Exit(code)
}

// Every replica builds the same middleware on the same Redis; a key's limits
// then hold across all of them. Here two replicas, each with its own client,
// share a client's 2 requests a minute.
func Example() {
	replica := func() (http.Handler, func() error) {
		rdb := redis.NewClient(&redis.Options{
			Addr:                  examples.Server().Addr, // "127.0.0.1:6379", say
			ContextTimeoutEnabled: true,
			// What a reply can make the client allocate is bounded.
			Dialer: redisstore.BoundReplies(nil, nil),
		})
		limit := ratelimit.Middleware(ratelimit.Config{
			Key:    ratelimit.ByClientIP,
			Limits: ratelimit.Limits{PerMinute: 2, PerDay: 10000},
			// The 50 ms default Timeout suits a Redis nearby; a first decision
			// on a loaded test machine dials and loads the script, so 5 s here.
			Store:        redisstore.New(rdb, redisstore.Options{Timeout: 5 * time.Second}),
			OnStoreError: ratelimit.FailOpen, // availability first; the default fails closed with 503
		})
		ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
		return limit(ok), rdb.Close
	}
	a, closeA := replica()
	defer closeA()
	b, closeB := replica()
	defer closeB()

	for _, h := range []http.Handler{a, b, a} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil)) // from 192.0.2.1
		fmt.Println(w.Code, w.Header().Get("X-RateLimit-Remaining"))
	}
	// Output:
	// 200 1
	// 200 0
	// 429 0
}

// A Store is a ratelimit.Store: Take decides one request of a key, in one
// script run on Redis, and Peek reads where its windows stand without
// spending anything.
func ExampleStore_Take() {
	// A 5 s Timeout for a loaded test machine; the 50 ms default suits a Redis nearby.
	store, err := redisstore.NewFromURL(examples.Server().URL, redisstore.Options{Timeout: 5 * time.Second}) // "redis://127.0.0.1:6379/0", say
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	ctx := context.Background()
	c := ratelimit.Charge{Key: "key-1", Limits: ratelimit.Limits{PerMinute: 3, PerDay: 100}, Cost: 2}
	for range 2 {
		d, err := store.Take(ctx, c, time.Now())
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("allowed %v, %d of %d left this minute\n", d.Allowed, d.Minute.Remaining, d.Minute.Limit)
	}
	d, err := store.Peek(ctx, ratelimit.Charge{Key: "key-1", Limits: c.Limits}, time.Now())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("peek: %d left today\n", d.Day.Remaining)
	// Output:
	// allowed true, 1 of 3 left this minute
	// allowed false, 1 of 3 left this minute
	// peek: 98 left today
}
