package main

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/redistest"
)

// TestRedisDownFlag: -redis-down reads closed, open and local:SHARE (a
// decimal or a fraction) and refuses anything else, and a policy without
// -redis; -redis-timeout refuses a duration that is not above 0.
func TestRedisDownFlag(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want redisDown
	}{
		{"closed", redisDown{}},
		{"open", redisDown{open: true}},
		{"local:0.34", redisDown{share: 0.34}},
		{"local:1/3", redisDown{share: 1.0 / 3}},
		{"local:1", redisDown{share: 1}},
	} {
		var p redisDown
		if err := p.Set(tt.in); err != nil || p != tt.want {
			t.Errorf("Set(%q) = %+v, %v; want %+v", tt.in, p, err, tt.want)
		}
		if p.String() != tt.in && tt.in != "local:1/3" {
			t.Errorf("String() of %q = %q", tt.in, p.String())
		}
	}
	for _, in := range []string{"", "local", "local:", "local:0", "local:-0.5", "local:1.5", "local:NaN", "local:Inf",
		"local:1/0", "local:3/2", "local:x/3", "local:1/x", "Local:0.5", "fail-open", "open "} {
		var p redisDown
		if err := p.Set(in); err == nil {
			t.Errorf("Set(%q) accepted: %+v", in, p)
		}
	}
	for _, d := range []string{"0s", "-1ms"} {
		want := "-redis-timeout " + d + ": must be above 0"
		if _, err := parseFlags([]string{"-redis-timeout", d}, io.Discard); err == nil || err.Error() != want {
			t.Errorf("-redis-timeout %s: %v, want %q", d, err, want)
		}
	}
	if _, err := parseFlags([]string{"-redis-down", "local:0.5"}, io.Discard); err == nil || !strings.Contains(err.Error(), "-redis") {
		t.Errorf("-redis-down without -redis: %v, want an error", err)
	}
}

// TestRedisDown: a gateway on a Redis that is killed, under each -redis-down
// policy, over real sockets: the tiny key (2 a minute) gets the 503, passes
// without headers, or its limit at half (1 a minute) with the headers saying
// so; /health goes 503 only when failing closed; and with local decisions the
// admin page's metrics show them, and Redis's limits come back by themselves
// once Redis is restarted.
func TestRedisDown(t *testing.T) {
	tiny := map[string]string{"X-API-Key": key("tiny"), "Content-Type": "application/json"}
	const body = `{"inputs":{"Premium":1200,"Age":42}}`
	unavailable := `{"error":"Upstream service temporarily unavailable","request_id":"rd"}` + "\n"
	tiny["X-Request-ID"] = "rd"
	type answer struct {
		status                  int
		limit, remaining, retry string
	}
	for _, tt := range []struct {
		policy string
		down   []answer // two calls of the tiny key with Redis killed
		health int
	}{
		{"closed", []answer{{503, "", "", "1"}, {503, "", "", "1"}}, 503},
		{"open", []answer{{200, "", "", ""}, {200, "", "", ""}}, 200},
		{"local:1/2", []answer{{200, "1", "0", ""}, {429, "1", "0", "60"}}, 200},
	} {
		t.Run(tt.policy, func(t *testing.T) {
			rs := redistest.Start(t)
			// Each decision may wait a minute for Redis: far more than a
			// busy machine takes, so that only Redis's being killed, which
			// refuses connections at once, is what fails.
			g := start(t, "-redis", rs.URL, "-redis-down", tt.policy, "-redis-timeout", "1m", "-admin-addr", "127.0.0.1:0")
			metrics := g.adminURL(t) + "metrics"
			call := func() (answer, string) {
				r := g.call(t, "POST", "/api/premium-calculator", tiny, body)
				return answer{r.status, r.header.Get("X-RateLimit-Limit"), r.header.Get("X-RateLimit-Remaining"), r.header.Get("Retry-After")}, r.body
			}
			if got, _ := call(); got != (answer{200, "2", "1", ""}) {
				t.Fatalf("Redis up: %+v, want 200 at 1 of 2", got)
			}
			rs.Stop()
			for i, want := range tt.down {
				got, b := call()
				if got != want {
					t.Errorf("Redis down, call %d: %+v, want %+v", i+1, got, want)
				}
				if got.status == 503 && b != unavailable {
					t.Errorf("Redis down, call %d: body %q, want %q", i+1, b, unavailable)
				}
			}
			// /health: 503 as a keyed call, failing closed; else its answer with Redis up.
			wantHealth, wantRetry := demoDegraded, ""
			if tt.health == 503 {
				wantHealth, wantRetry = unavailable, "1"
			}
			got := g.call(t, "GET", "/health", map[string]string{"X-Request-ID": "rd"}, "")
			if got.status != tt.health || got.body != wantHealth || got.header.Get("Retry-After") != wantRetry ||
				got.header.Get("Content-Type") != "application/json" || got.header.Get("Cache-Control") != "no-store" {
				t.Errorf("/health with Redis down: %d %q %v, want %d %q with Retry-After %q", got.status, got.body, got.header, tt.health, wantHealth, wantRetry)
			}
			_, m := get(t, metrics)
			local := strings.HasPrefix(tt.policy, "local:")
			if has := strings.Contains(m, "gatehouse_ratelimit_fallback_active 1\n") &&
				strings.Contains(m, "gatehouse_ratelimit_fallback_decisions_total 2\n"); has != local {
				t.Errorf("metrics show 2 local decisions in force: %v, want %v", has, local)
			}
			if !local {
				return
			}
			rs.Restart()
			// Fallback tries Redis again once a second of requests; the
			// minute bounds the wait should it never.
			deadline := time.Now().Add(time.Minute)
			for {
				got, _ := call()
				if got.limit == "2" {
					if got != (answer{200, "2", "1", ""}) {
						t.Errorf("Redis back (and empty): %+v, want 200 at 1 of 2", got)
					}
					break
				}
				if got != (answer{429, "1", "0", got.retry}) || time.Now().After(deadline) {
					t.Fatalf("waiting for Redis's limits: %+v", got)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if _, m := get(t, metrics); !strings.Contains(m, "gatehouse_ratelimit_fallback_active 0\n") {
				t.Errorf("metrics after Redis came back: fallback still active")
			}
		})
	}
}

// TestRedisSlowAtStart: the start-up check gives Redis more than a decision's
// budget (-redis-timeout, 50 ms) to answer: a gateway whose Redis holds back
// its first answers for 200 ms after the first command arrives, as a first
// connection on a busy host or over TLS can, starts, and so does its /health.
// The 200 ms are counted from the command's arrival at Redis, so that a slow
// machine only makes the wait longer.
func TestRedisSlowAtStart(t *testing.T) {
	rs := redistest.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var first sync.Once
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(wg.Wait)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r, err := net.Dial("tcp", rs.Addr)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, r)
			mu.Unlock()
			wg.Go(func() {
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						first.Do(func() { time.AfterFunc(200*time.Millisecond, func() { close(release) }) })
						r.Write(buf[:n])
					}
					if err != nil {
						return
					}
				}
			})
			wg.Go(func() {
				<-release
				io.Copy(c, r)
			})
		}
	})
	g := start(t, "-redis", "redis://"+ln.Addr().String()+"/0")
	if got := g.call(t, "GET", "/health", nil, ""); got.status != 200 || got.body != demoDegraded {
		t.Errorf("/health: %d %q, want 200 %q", got.status, got.body, demoDegraded)
	}
}
