package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSoakFlat runs the demo gateway in this process and drives it in rounds
// with a mix of requests (success, 401, 404, 400, upstream 502, 503), sampling
// goroutines and the heap after a GC between rounds: after a warm-up round both
// must stay flat. GATEHOUSE_SOAK=5m runs it for that long (at most 30m) and
// prints every round; by default it runs 4 short rounds.
func TestSoakFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("soak")
	}
	duration := time.Duration(0)
	if v := os.Getenv("GATEHOUSE_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("GATEHOUSE_SOAK=%q: %v", v, err)
		}
		duration = min(d, 30*time.Minute)
	}
	g := start(t)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	calls := []struct{ path, key, body string }{
		{"/api/premium-calculator", key("full"), `{"inputs":{"Premium":1200,"Age":42}}`},
		{"/api/premium-calculator", key("disabled"), `{"inputs":{}}`},
		{"/api/premium-calculator", "ila_invented", `{"inputs":{}}`},
		{"/api/no-such-calculator", key("full"), `{"inputs":{}}`},
		{"/api/premium-calculator", key("full"), `{"inputs":{"Age":1}}`},
		{"/api/misconfigured-calculator", key("full"), `{"inputs":{}}`},
		{"/api/overloaded-calculator", key("full"), `{"inputs":{}}`},
	}
	round := func() int {
		var wg sync.WaitGroup
		var mu sync.Mutex
		n := 0
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 250 { // 8 × 250 = 2,000 requests a round
					c := calls[(w+i)%len(calls)]
					req, _ := http.NewRequest("POST", g.base+c.path, strings.NewReader(c.body))
					req.Header.Set("X-API-Key", c.key)
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mu.Lock()
					n++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return n
	}
	sample := func() (int, uint64) {
		client.CloseIdleConnections()
		time.Sleep(50 * time.Millisecond) // let closed connections' goroutines end
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return runtime.NumGoroutine(), m.HeapAlloc
	}

	// The full key's 60/min runs out in the first round: later rounds see its
	// 429s too, which is part of the mix.
	round() // warm-up
	baseG, baseH := sample()
	began := time.Now()
	rounds, requests := 0, 0
	var lastG int
	var lastH uint64
	for rounds < 3 || time.Since(began) < duration {
		requests += round()
		rounds++
		lastG, lastH = sample()
		if duration > 0 {
			fmt.Printf("round %d: %d requests, goroutines %d, heap %d KiB\n", rounds, requests, lastG, lastH>>10)
		}
	}
	t.Logf("%d rounds, %d requests: goroutines %d → %d, heap %d → %d KiB", rounds, requests, baseG, lastG, baseH>>10, lastH>>10)
	if lastG > baseG+5 {
		t.Errorf("goroutines grew from %d to %d", baseG, lastG)
	}
	if lastH > baseH*3/2+4<<20 {
		t.Errorf("heap grew from %d to %d bytes", baseH, lastH)
	}
}
