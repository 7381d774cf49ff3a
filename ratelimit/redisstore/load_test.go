package redisstore

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/ratelimit/redisstore/redistest"
)

// TestRedisDiesUnderLoad: 16 clients keep a real HTTP server busy while its
// Redis runs, hangs (SIGSTOP), dies and comes back on the same port. Fail
// closed, every request gets an answer, quickly: 200 with the rate-limit
// headers, or the contract's 503 with Retry-After: 1, never anything else;
// and the 200s come back by themselves once Redis is back.
func TestRedisDiesUnderLoad(t *testing.T) {
	const (
		clients     = 16
		maxRequests = 200_000
		maxLatency  = time.Second // the store's timeout is 100 ms
		unavailable = `{"error":"Upstream service temporarily unavailable"}` + "\n"
	)
	limits := ratelimit.Limits{PerMinute: 1_000_000, PerDay: 10_000_000}
	wantLimit := "1000000"

	s := redistest.Start(t)
	store, err := NewFromURL("redis://"+s.Addr+"/0", Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	url, hc := limitedServer(t, store, "load", limits, clients)

	// Phases, by the phase in force when a request was sent.
	const (
		up = iota
		hung
		dead
		back
		phases
	)
	names := [phases]string{"up", "hung", "dead", "back"}
	var phase atomic.Int32
	type tally struct {
		ok, unavailable, other, transport atomic.Int64
		maxLatency, sumLatency            atomic.Int64 // nanoseconds
	}
	var byPhase [phases]tally
	var reserved, sent, answered atomic.Int64
	var recoveredAt atomic.Int64 // UnixNano of the first 200 with headers sent after the restart
	var (
		mu       sync.Mutex
		problems []string
	)
	problem := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}

	hardDeadline := time.Now().Add(15 * time.Second)
	stop := make(chan struct{})
	var stopOnce sync.Once
	var wg sync.WaitGroup
	halt := func() {
		stopOnce.Do(func() { close(stop) })
		wg.Wait()
	}
	t.Cleanup(halt) // runs before the server's close and the Redis cleanup, even after a Fatal
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(hardDeadline) {
				select {
				case <-stop:
					return
				default:
				}
				if reserved.Add(1) > maxRequests {
					return
				}
				ph := phase.Load()
				tl := &byPhase[ph]
				sent.Add(1)
				began := time.Now()
				resp, err := hc.Post(url, "application/json", nil)
				if err != nil {
					tl.transport.Add(1)
					problem("%s: transport error: %v", names[ph], err)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				took := time.Since(began)
				if err != nil {
					tl.transport.Add(1)
					problem("%s: reading the body: %v", names[ph], err)
					continue
				}
				answered.Add(1)
				tl.sumLatency.Add(int64(took))
				for {
					m := tl.maxLatency.Load()
					if int64(took) <= m || tl.maxLatency.CompareAndSwap(m, int64(took)) {
						break
					}
				}
				if took > maxLatency {
					problem("%s: a request took %v", names[ph], took)
				}
				h := resp.Header
				switch {
				case resp.StatusCode == 200 && string(body) == limitedOKBody && h.Get("X-RateLimit-Limit") == wantLimit:
					tl.ok.Add(1)
					if ph == back {
						recoveredAt.CompareAndSwap(0, time.Now().UnixNano())
					}
				case resp.StatusCode == 503 && string(body) == unavailable &&
					h.Get("Content-Type") == "application/json" && h.Get("Retry-After") == "1":
					tl.unavailable.Add(1)
				default:
					tl.other.Add(1)
					problem("%s: %d %q Retry-After %q X-RateLimit-Limit %q Content-Type %q",
						names[ph], resp.StatusCode, body, h.Get("Retry-After"), h.Get("X-RateLimit-Limit"), h.Get("Content-Type"))
				}
			}
		}()
	}

	time.Sleep(300 * time.Millisecond)

	s.Pause()
	phase.Store(hung)
	time.Sleep(500 * time.Millisecond)
	s.Resume()

	s.Stop()
	phase.Store(dead)
	time.Sleep(500 * time.Millisecond)

	s.Restart()
	restarted := time.Now()
	phase.Store(back)
	recovered := false
	for time.Since(restarted) < 5*time.Second && time.Now().Before(hardDeadline) {
		if recoveredAt.Load() != 0 {
			recovered = true
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if recovered {
		time.Sleep(300 * time.Millisecond)
	}
	halt()

	for ph := range phases {
		tl := &byPhase[ph]
		n := max(1, tl.ok.Load()+tl.unavailable.Load()+tl.other.Load())
		t.Logf("%-4s: %6d×200 %5d×503 %d other %d transport errors, latency mean %v max %v",
			names[ph], tl.ok.Load(), tl.unavailable.Load(), tl.other.Load(), tl.transport.Load(),
			time.Duration(tl.sumLatency.Load()/n).Round(time.Microsecond),
			time.Duration(tl.maxLatency.Load()).Round(time.Millisecond))
	}
	if recovered {
		t.Logf("recovery %v after the restart", time.Duration(recoveredAt.Load()-restarted.UnixNano()).Round(time.Millisecond))
	}
	t.Logf("sent %d, answered %d, store failures %d", sent.Load(), answered.Load(), store.Failures())

	for _, p := range problems {
		t.Error(p)
	}
	if sent.Load() != answered.Load() {
		t.Errorf("sent %d requests, %d answered", sent.Load(), answered.Load())
	}
	var ok, unav int64
	for ph := range phases {
		ok += byPhase[ph].ok.Load()
		unav += byPhase[ph].unavailable.Load()
	}
	if ok+unav != answered.Load() {
		t.Errorf("%d×200 + %d×503 != %d answers", ok, unav, answered.Load())
	}
	// Fail closed: each failed decision is one 503, and each 503 one failure.
	if f := store.Failures(); f != unav {
		t.Errorf("store failures %d, 503s %d; want them equal", f, unav)
	}
	if byPhase[up].ok.Load() == 0 {
		t.Error("no 200 while Redis was up")
	}
	if byPhase[hung].unavailable.Load() == 0 {
		t.Error("no 503 while Redis was hung")
	}
	if byPhase[dead].unavailable.Load() == 0 {
		t.Error("no 503 while Redis was dead")
	}
	if !recovered {
		t.Error("no 200 with rate-limit headers within 5 s of Redis coming back")
	}

	// The figures docs/reliability.md quotes, held to bounds with room for a
	// loaded CI machine: a hung Redis costs a decision about its timeout (100 ms),
	// a dead one fails fast (no redial loop eating the timeout), and recovery comes
	// with go-redis's once-a-second background redial.
	mean := func(ph int) time.Duration {
		return time.Duration(byPhase[ph].sumLatency.Load() / max(1, byPhase[ph].ok.Load()+byPhase[ph].unavailable.Load()+byPhase[ph].other.Load()))
	}
	if m := mean(hung); m > 250*time.Millisecond {
		t.Errorf("hung Redis: mean latency %v, want at most 250 ms (timeout 100 ms)", m)
	}
	if m := mean(dead); m > 100*time.Millisecond {
		t.Errorf("dead Redis: mean latency %v, want under the 100 ms timeout (a refused connection fails fast)", m)
	}
	if recovered {
		if d := time.Duration(recoveredAt.Load() - restarted.UnixNano()); d > 2*time.Second {
			t.Errorf("200s came back %v after the restart, want within 2 s", d)
		}
	}
}
