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
// the same port. Every answer is a 200 or the contract's JSON 503, none takes
// longer than the call timeout, and 200s resume once the upstream is back.
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
	wait := func() { time.Sleep(300 * time.Millisecond) }
	wait()
	phase.Store(1)
	srv.Close() // dies: connections refused
	wait()
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("relisten on %s: %v", addr, err)
	}
	hanging.Store(true)
	phase.Store(2)
	srv = serve(ln2) // hangs past the call timeout
	wait()
	hanging.Store(false)
	close(release)
	phase.Store(3) // back
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		back := counts[3][200]
		mu.Unlock()
		if back >= 100 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	srv.Close()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("answers by phase (0 up, 1 dead, 2 hanging, 3 back): %v; slowest %v", counts, time.Duration(slowest.Load()))
	if counts[0][200] == 0 || counts[1][503] == 0 || counts[2][503] == 0 || counts[3][200] < 100 {
		t.Errorf("answers by phase = %v: want 200s up, 503s dead and hanging, 200s again once back", counts)
	}
	if d := time.Duration(slowest.Load()); d > 2*time.Second {
		t.Errorf("slowest answer %v: a dead or hanging upstream must cost at most the 200 ms call timeout", d)
	}
}
