package upstream

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestUpstreamDiesAndReturnsUnderLoad: 16 callers send requests through a
// Proxy while its upstream answers, then dies, then hangs, then comes back on
// the same port. Every answer is a 200 or the contract's JSON 503; while the
// upstream hangs, only the call timeout (and the breaker it opens) can answer,
// so its 503s show that a hanging upstream does not hold callers; and 200s
// resume once the upstream is back.
func TestUpstreamDiesAndReturnsUnderLoad(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var hanging atomic.Bool
	release := make(chan struct{})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if hanging.Load() {
			select {
			case <-release: // back: answer as usual
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, `{"status":200}`)
	})
	serve := func(l net.Listener) *http.Server {
		srv := &http.Server{Handler: handler}
		go srv.Serve(l)
		return srv
	}
	srv := serve(ln)

	p, err := NewProxy(Target{
		URL: "http://" + addr, Timeout: 200 * time.Millisecond, RetryAfter: time.Second,
		Breaker: BreakerConfig{Failures: 5, CoolDown: 50 * time.Millisecond},
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	var phase atomic.Int32 // 0 up, 1 dead, 2 hanging, 3 back
	var mu sync.Mutex
	counts := map[int32]map[int]int{}
	var slowest atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50_000; i++ { // bounded: at most 50,000 requests a caller
				select {
				case <-stop:
					return
				default:
				}
				ph := phase.Load()
				began := time.Now()
				rec := serveRecorder(p, `{"inputs":{}}`)
				if d := time.Since(began); int64(d) > slowest.Load() {
					slowest.Store(int64(d))
				}
				ok := rec.Code == 200 && rec.Body.String() == `{"status":200}` ||
					rec.Code == 503 && strings.HasPrefix(rec.Body.String(), `{"error":"Upstream service temporarily unavailable"`) && rec.Header().Get("Retry-After") != ""
				if !ok {
					t.Errorf("phase %d: %d %q", ph, rec.Code, rec.Body)
					return
				}
				mu.Lock()
				if counts[ph] == nil {
					counts[ph] = map[int]int{}
				}
				counts[ph][rec.Code]++
				mu.Unlock()
			}
		}()
	}
	// Each phase lasts until its answers are seen, not for a set time, so
	// that a slow machine only makes the test longer: a phase that never
	// gets its answers fails at the deadline.
	waitFor := func(ph int32, code, n int) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			got := counts[ph][code]
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("phase %d: %d answers %d within 30s, want %d", ph, got, code, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor(0, 200, 20)
	phase.Store(1)
	srv.Close() // dies: connections refused
	waitFor(1, 503, 20)
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("relisten on %s: %v", addr, err)
	}
	hanging.Store(true)
	phase.Store(2)
	srv = serve(ln2) // hangs until released: only the call timeout answers
	waitFor(2, 503, 20)
	hanging.Store(false)
	close(release)
	phase.Store(3) // back
	waitFor(3, 200, 100)
	close(stop)
	wg.Wait()
	srv.Close()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("answers by phase (0 up, 1 dead, 2 hanging, 3 back): %v; slowest %v", counts, time.Duration(slowest.Load()))
}
