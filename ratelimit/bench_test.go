package ratelimit

import (
	"context"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// nopWriter is a ResponseWriter that keeps one header map and writes nowhere,
// so that a benchmark measures the middleware, not the recorder.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

var nopHandler = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})

// requests returns n prebuilt requests, one per client address.
func requests(n int) []*http.Request {
	rs := make([]*http.Request, n)
	for i := range rs {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255) + ":1234"
		rs[i] = r
	}
	return rs
}

// The limits of the benchmarks, so that each measures the pass path: one key
// takes millions of requests; each of 100,000 keys takes a few dozen, and at an
// API's rates, so that its bucket is not full again (and reclaimed) between two.
var (
	high = Limits{PerMinute: 1 << 40, PerDay: 1 << 50}
	many = Limits{PerMinute: 1000, PerDay: 1_000_000}
)

func limitsFor(keys int) Limits {
	if keys == 1 {
		return high
	}
	return many
}

func benchSerial(b *testing.B, keys int) {
	h := Middleware(Config{Key: ByClientIP, Limits: limitsFor(keys)})(nopHandler)
	rs := requests(keys)
	w := &nopWriter{h: make(http.Header)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		h.ServeHTTP(w, rs[i%keys])
	}
}

func benchParallel(b *testing.B, keys int) {
	h := Middleware(Config{Key: ByClientIP, Limits: limitsFor(keys)})(nopHandler)
	rs := requests(keys)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &nopWriter{h: make(http.Header)}
		i := int(next.Add(7919)) // each goroutine starts elsewhere among the keys
		for pb.Next() {
			h.ServeHTTP(w, rs[i%keys])
			i++
		}
	})
}

func BenchmarkMiddleware(b *testing.B) {
	b.Run("OneKeySerial", func(b *testing.B) { benchSerial(b, 1) })
	b.Run("OneKeyParallel", func(b *testing.B) { benchParallel(b, 1) })
	b.Run("100kKeysSerial", func(b *testing.B) { benchSerial(b, 100_000) })
	b.Run("100kKeysParallel", func(b *testing.B) { benchParallel(b, 100_000) })
	b.Run("DraftHeaders", func(b *testing.B) {
		h := Middleware(Config{Key: ByClientIP, Limits: high, DraftHeaders: true})(nopHandler)
		r := requests(1)[0]
		w := &nopWriter{h: make(http.Header)}
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, r)
		}
	})
}

// BenchmarkMemoryStoreKeys reports the heap each new key costs a MemoryStore.
func BenchmarkMemoryStoreKeys(b *testing.B) {
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
	}
	now := time.Now()
	ctx := context.Background()
	var perKey float64
	b.ReportAllocs()
	for b.Loop() {
		s := NewMemoryStore(MemoryConfig{})
		before := heap()
		for _, k := range keys {
			s.Take(ctx, Charge{Key: k, Limits: Limits{PerMinute: 60, PerDay: 10000}}, now)
		}
		perKey = float64(heap()-before) / float64(len(keys))
		runtime.KeepAlive(s)
	}
	b.ReportMetric(perKey, "bytes/key")
}
