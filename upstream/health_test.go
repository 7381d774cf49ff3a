package upstream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/errorsjson"
)

// healthGet sends GET /health through errorsjson.RequestID (as the stack does)
// over a real socket and returns status, body and headers.
func healthGet(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/health", nil)
	req.Header.Set("X-Request-ID", "hc-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func serveHealth(t *testing.T, h *Health) string {
	t.Helper()
	srv := httptest.NewServer(errorsjson.RequestID(h))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestHealth(t *testing.T) {
	var probes atomic.Int64
	var status atomic.Int64
	status.Store(200)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probes.Add(1)
		if r.Header.Get("Authorization") != upstreamSecret || r.URL.Path != "/healthz" || r.Method != "GET" {
			t.Errorf("probe: %s %s Authorization %q", r.Method, r.URL.Path, r.Header.Get("Authorization"))
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer up.Close()
	down := "http://" + closedAddr(t)

	now := time.Unix(1_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func() { mu.Lock(); now = now.Add(11 * time.Second); mu.Unlock() }
	for _, detail := range []bool{false, true} {
		probes.Store(0)
		status.Store(200)
		h := NewHealth(HealthConfig{Interval: 10 * time.Second, Timeout: time.Second, Now: clock, Logger: slog.New(slog.DiscardHandler), Detail: detail})
		url := serveHealth(t, h)
		check := func(name string, want string) {
			t.Helper()
			code, body, hdr := healthGet(t, url)
			if code != 200 || body != want+"\n" || hdr.Get("Content-Type") != "application/json" || hdr.Get("Cache-Control") != "no-store" {
				t.Errorf("detail=%v %s: %d %q %v, want 200 %q", detail, name, code, body, hdr, want)
			}
		}
		pick := func(plain, detailed string) string {
			if detail {
				return detailed
			}
			return plain
		}

		check("no upstreams", `{"status":"ok"}`)
		quote := Target{URL: up.URL + "/quote", HealthURL: up.URL + "/healthz", Header: http.Header{"Authorization": {upstreamSecret}}}
		h.Set(map[string]Target{"quote": quote})
		check("healthy", pick(`{"status":"ok"}`, `{"status":"ok","upstreams":{"quote":"ok"}}`))

		// Many checks within the interval, some at once: still one probe.
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() { healthGet(t, url) })
		}
		wg.Wait()
		if n := probes.Load(); n != 1 {
			t.Errorf("%d probes within one interval, want 1", n)
		}

		// Past the interval, an upstream that refuses the credential is down:
		// degraded, named, still 200.
		status.Store(401)
		advance()
		check("401 upstream", `{"status":"degraded","upstreams":{"quote":"down"}}`)

		// Set keeps an unchanged target's probe and adds an unreachable one.
		status.Store(200)
		h.Set(map[string]Target{"quote": quote, "pdf": {URL: down}})
		check("two down", `{"status":"degraded","upstreams":{"pdf":"down","quote":"down"}}`)
		if n := probes.Load(); n != 2 {
			t.Errorf("%d probes, want 2: Set must keep an unchanged target's last probe", n)
		}
		advance()
		check("one of two down", pick(`{"status":"degraded","upstreams":{"pdf":"down"}}`, `{"status":"degraded","upstreams":{"pdf":"down","quote":"ok"}}`))
		h.Set(map[string]Target{"quote": quote})
		check("after recovery", pick(`{"status":"ok"}`, `{"status":"ok","upstreams":{"quote":"ok"}}`))
	}
}

// TestHealthUpstreamGoesDown runs real proxies in front of real upstreams and
// takes one down: /health stays 200, names it (first as breaker_open once its
// proxy's breaker opens, even while its last probe still says ok), and
// never names the healthy one without Detail.
func TestHealthUpstreamGoesDown(t *testing.T) {
	ok := func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"outputs":{}}`)) }
	quoteUp := httptest.NewServer(http.HandlerFunc(ok))
	defer quoteUp.Close()
	pdfUp := httptest.NewServer(http.HandlerFunc(ok))
	pdfURL := pdfUp.URL

	now := time.Unix(1_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	quiet := slog.New(slog.DiscardHandler)
	targets := map[string]Target{
		"quote": {Name: "quote", URL: quoteUp.URL, Logger: quiet, Now: clock},
		"pdf":   {Name: "pdf", URL: pdfURL, Logger: quiet, Now: clock, Breaker: BreakerConfig{Failures: 3, CoolDown: time.Minute}},
	}
	proxies := map[string]*Proxy{}
	for name, tg := range targets {
		p, err := NewProxy(tg)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		proxies[name] = p
	}
	h := NewHealth(HealthConfig{Interval: 10 * time.Second, Timeout: time.Second, Now: clock, Logger: quiet,
		Open: func(name string) bool { return proxies[name].Open() }})
	h.Set(targets)
	url := serveHealth(t, h)

	if code, body, _ := healthGet(t, url); code != 200 || body != `{"status":"ok"}`+"\n" {
		t.Fatalf("all up: %d %q", code, body)
	}
	pdfUp.Close() // the upstream dies; the last probe (fresh for 10 s) said ok
	for range 3 {
		if rec := serveRecorder(proxies["pdf"], `{}`); rec.Code != 503 {
			t.Fatalf("call to a dead upstream: %d", rec.Code)
		}
	}
	if code, body, _ := healthGet(t, url); code != 200 || body != `{"status":"degraded","upstreams":{"pdf":"breaker_open"}}`+"\n" {
		t.Errorf("breaker open, probe fresh: %d %q, want 200 degraded breaker_open", code, body)
	}
	advance(11 * time.Second) // the next probe finds it down
	if code, body, _ := healthGet(t, url); code != 200 || body != `{"status":"degraded","upstreams":{"pdf":"down"}}`+"\n" {
		t.Errorf("upstream down: %d %q, want 200 degraded down", code, body)
	}
	// The healthy product still serves while /health says degraded.
	if rec := serveRecorder(proxies["quote"], `{}`); rec.Code != 200 {
		t.Errorf("healthy product: %d", rec.Code)
	}
	if code, body, _ := healthGet(t, url); strings.Contains(body, "127.0.0.1") || strings.Contains(body, "quote") || code != 200 {
		t.Errorf("body names an address or a healthy upstream: %d %q", code, body)
	}
}

// TestHealthNotReady: only Ready's error gives 503, in the errorsjson shape
// with the request's id and Retry-After, and without the reason.
func TestHealthNotReady(t *testing.T) {
	var reason atomic.Pointer[error]
	var sawDeadline atomic.Bool
	h := NewHealth(HealthConfig{Logger: slog.New(slog.DiscardHandler), Timeout: time.Second,
		Ready: func(ctx context.Context) error {
			_, ok := ctx.Deadline()
			sawDeadline.Store(ok)
			if e := reason.Load(); e != nil {
				return *e
			}
			return nil
		}})
	h.Set(map[string]Target{"pdf": {URL: "http://" + closedAddr(t)}})
	url := serveHealth(t, h)
	if code, body, _ := healthGet(t, url); code != 200 || body != `{"status":"degraded","upstreams":{"pdf":"down"}}`+"\n" {
		t.Errorf("ready, one upstream down: %d %q", code, body)
	}
	if !sawDeadline.Load() {
		t.Error("Ready called without a deadline")
	}
	err := errors.New("shutting down: secret-internal-reason")
	reason.Store(&err)
	code, body, hdr := healthGet(t, url)
	want := `{"error":"Upstream service temporarily unavailable","request_id":"hc-1"}` + "\n"
	if code != 503 || body != want || hdr.Get("Retry-After") != "1" || hdr.Get("Content-Type") != "application/json" || hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("not ready: %d %q %v, want 503 %q with Retry-After: 1", code, body, hdr, want)
	}
	reason.Store(nil)
	if code, _, _ := healthGet(t, url); code != 200 {
		t.Errorf("ready again: %d", code)
	}
}

// TestHealthProbeLogsNoAddress: a probe that cannot reach its upstream logs
// the upstream's name and the kind of failure, never the upstream's address.
func TestHealthProbeLogsNoAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	var logs bytes.Buffer
	h := NewHealth(HealthConfig{Timeout: time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	h.Set(map[string]Target{"quote": {URL: "http://" + addr + "/v1"}})
	if code, body, _ := healthGet(t, serveHealth(t, h)); code != 200 || body != `{"status":"degraded","upstreams":{"quote":"down"}}`+"\n" {
		t.Fatalf("got %d %q, want 200 degraded quote down", code, body)
	}
	line := logs.String()
	if _, port, _ := net.SplitHostPort(addr); strings.Contains(line, addr) || strings.Contains(line, ":"+port) {
		t.Errorf("log line names the upstream's address %s: %q", addr, line)
	}
	for _, want := range []string{`msg="health probe failed"`, "upstream=quote", `reason="connection refused"`} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %s", line, want)
		}
	}
}
