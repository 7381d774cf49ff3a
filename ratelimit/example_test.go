package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// A client IP limited to 2 requests a minute: the third is refused for 30 s.
func ExampleMiddleware() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	limit := ratelimit.Middleware(ratelimit.Config{
		Key:    ratelimit.ByClientIP,
		Limits: ratelimit.Limits{PerMinute: 2, PerDay: 100},
		Now:    func() time.Time { return now },
	})
	h := limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for i := 0; i < 3; i++ {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		fmt.Printf("%d remaining=%s daily=%s retry-after=%q\n", rec.Code, rec.Header().Get("X-RateLimit-Remaining"),
			rec.Header().Get("X-RateLimit-Daily-Remaining"), rec.Header().Get("Retry-After"))
	}
	// Output:
	// 200 remaining=1 daily=99 retry-after=""
	// 200 remaining=0 daily=98 retry-after=""
	// 429 remaining=0 daily=98 retry-after="30"
}

// Keys come from the request (here a header an earlier layer checked), each
// with its own limits; requests without one pass untouched.
func ExampleConfig_key() {
	limit := ratelimit.Middleware(ratelimit.Config{
		Key: func(r *http.Request) (ratelimit.Charge, bool) {
			user := r.Header.Get("X-User")
			if user == "" {
				return ratelimit.Charge{}, false
			}
			return ratelimit.Charge{Key: user, Limits: ratelimit.Limits{PerMinute: 10}}, true // PerDay: the default
		},
	})
	h := limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, user := range []string{"ada", ""} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-User", user)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		fmt.Printf("%q: %q %q\n", user, rec.Header().Get("X-RateLimit-Limit"), rec.Header().Get("X-RateLimit-Daily-Limit"))
	}
	// Output:
	// "ada": "10" "10000"
	// "": "" ""
}

func ExampleMemoryStore() {
	s := ratelimit.NewMemoryStore(ratelimit.MemoryConfig{})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d, _ := s.Take(context.Background(), ratelimit.Charge{Key: "key-1", Limits: ratelimit.Limits{PerMinute: 1, PerDay: 5}}, now)
	fmt.Println(d.Allowed, d.Minute.Remaining, d.Day.Remaining)
	d, _ = s.Take(context.Background(), ratelimit.Charge{Key: "key-1", Limits: ratelimit.Limits{PerMinute: 1, PerDay: 5}}, now)
	fmt.Println(d.Allowed, d.RetryAfter)
	fmt.Println(s.Sweep(now.Add(24*time.Hour)), s.Len())
	// Output:
	// true 0 4
	// false 1m0s
	// 1 0
}
