package main

import (
	"context"
	"errors"
	"fmt"
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

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/internal/redistest"
)

// busyRedisTimeout is the Redis timeout (-redis-timeout) of the health tests'
// gateways: far more than a busy machine takes, so that only a Redis that is
// down, which refuses connections at once, fails a decision or a PING (which
// the health timeout, 2 s, also bounds).
const busyRedisTimeout = time.Minute

// healthGateway is a gateway built from a configuration of products, served
// on a real socket; with a Redis URL, its decisions and PINGs wait up to
// busyRedisTimeout.
type healthGateway struct {
	gw   *gateway
	base string
	key  string
}

func startHealthGateway(t *testing.T, products string, redisURL string) *healthGateway {
	t.Helper()
	plain, k := auth.NewKey()
	cfg, err := parseConfig(fmt.Appendf(nil, `{"keys": [{"id": "key_test", "hash": %q, "products": ["*"]}], "products": %s}`, k.HashHex(), products))
	if err != nil {
		t.Fatal(err)
	}
	gw, err := newGateway(context.Background(), cfg, &options{redisURL: redisURL, redisTimeout: busyRedisTimeout}, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	return &healthGateway{gw: gw, base: srv.URL, key: plain}
}

func (h *healthGateway) get(t *testing.T, path string, headers map[string]string, body string) reply {
	t.Helper()
	method := "GET"
	if body != "" {
		method = "POST"
	}
	req, _ := http.NewRequest(method, h.base+path, strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

func downURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String()
}

// TestHealthDegraded: over real sockets with real upstreams, one of them
// dying makes /health 200 "degraded" naming it (its breaker open), while the
// healthy product still serves; an inactive product, down from the start, is
// never named; shutting down gives 503 with the request id.
func TestHealthDegraded(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"status":200}`) })
	calcUp := httptest.NewServer(ok)
	defer calcUp.Close()
	pdfUp := httptest.NewServer(ok)
	defer pdfUp.Close()
	down := downURL(t)
	g := startHealthGateway(t, fmt.Sprintf(`[
		{"slug": "calc", "active": true, "required": [], "upstream": {"url": %q}},
		{"slug": "pdf", "active": true, "required": [], "upstream": {"url": %q, "dial_timeout": "200ms"}},
		{"slug": "retired", "active": false, "required": [], "upstream": {"url": %q, "dial_timeout": "200ms"}}]`,
		calcUp.URL, pdfUp.URL, down), "")
	call := map[string]string{"X-API-Key": g.key, "Content-Type": "application/json"}

	if got := g.get(t, "/health", nil, ""); got.status != 200 || got.body != `{"status":"ok"}`+"\n" {
		t.Errorf("every active upstream up, the inactive one down: %d %q, want 200 ok", got.status, got.body)
	}
	if got := g.get(t, "/api/retired", call, `{"inputs":{}}`); got.status != 404 {
		t.Errorf("inactive product: %d, want 404", got.status)
	}

	pdfUp.Close()
	for i := range 5 { // the breaker's threshold
		if got := g.get(t, "/api/pdf", call, `{"inputs":{}}`); got.status != 503 {
			t.Fatalf("call %d to a dead upstream: %d %q", i, got.status, got.body)
		}
	}
	// Its last probe (fresh for 10 s) said ok; its open breaker says otherwise.
	if got := g.get(t, "/health", nil, ""); got.status != 200 || got.body != `{"status":"degraded","upstreams":{"pdf":"breaker_open"}}`+"\n" {
		t.Errorf("one upstream down: %d %q, want 200 degraded naming pdf", got.status, got.body)
	}
	if got := g.get(t, "/api/calc", call, `{"inputs":{}}`); got.status != 200 {
		t.Errorf("the healthy product while degraded: %d %q", got.status, got.body)
	}
	for _, leak := range []string{"retired", "127.0.0.1", "calc"} {
		if got := g.get(t, "/health", nil, ""); strings.Contains(got.body, leak) {
			t.Errorf("/health names %q: %q", leak, got.body)
		}
	}

	g.gw.drain()
	got := g.get(t, "/health", map[string]string{"X-Request-ID": "hc-drain"}, "")
	want := `{"error":"Upstream service temporarily unavailable","request_id":"hc-drain"}` + "\n"
	if got.status != 503 || got.body != want || got.header.Get("Retry-After") != "1" || got.header.Get("Content-Type") != "application/json" {
		t.Errorf("shutting down: %d %q %v, want 503 %q", got.status, got.body, got.header, want)
	}
}

// TestHealthCannotServe: no active product, or a rate-limit store that fails
// closed and does not answer, is 503; the store back is 200 again.
func TestHealthCannotServe(t *testing.T) {
	want := `{"error":"Upstream service temporarily unavailable","request_id":"hc"}` + "\n"
	id := map[string]string{"X-Request-ID": "hc"}
	none := startHealthGateway(t, `[{"slug": "retired", "active": false, "required": [], "upstream": {"url": "inprocess:calculate"}}]`, "")
	if got := none.get(t, "/health", id, ""); got.status != 503 || got.body != want {
		t.Errorf("no active product: %d %q, want 503 %q", got.status, got.body, want)
	}

	rs := redistest.Start(t)
	g := startHealthGateway(t, `[{"slug": "local", "active": true, "required": [], "upstream": {"url": "inprocess:calculate"}}]`, rs.URL)
	var pings atomic.Int64
	ping := g.gw.ping
	g.gw.ping = func(ctx context.Context) error { pings.Add(1); return ping(ctx) } // before any /health request
	g.gw.pingEvery = time.Minute
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if got := g.get(t, "/health", id, ""); got.status != 200 || got.body != `{"status":"ok"}`+"\n" {
				t.Errorf("Redis up: %d %q, want 200 ok", got.status, got.body)
			}
		})
	}
	wg.Wait()
	if n := pings.Load(); n != 1 {
		t.Errorf("20 /health requests pinged Redis %d times, want 1 (one per pingEvery)", n)
	}
	rs.Stop()
	g.gw.storeCheck.Lock()
	g.gw.pingEvery = 0 // the next /health asks Redis again
	g.gw.storeCheck.Unlock()
	if got := g.get(t, "/health", id, ""); got.status != 503 || got.body != want {
		t.Errorf("Redis down (fail closed): %d %q, want 503 %q", got.status, got.body, want)
	}
	// What /health logs is Ready's error: it says what failed, not where.
	if err := g.gw.ready(context.Background()); !errors.Is(err, errStoreDown) || strings.Contains(err.Error(), rs.Addr) {
		t.Errorf("Ready with Redis down = %v, want errStoreDown without Redis's address %s", err, rs.Addr)
	}
}

// TestHealthCallerGoneKeepsNothing: a /health caller that gives up while
// Redis is pinged (its request's context cancelled) gets an error, but the
// answer is not kept for the others: with Redis up, the next /health is 200,
// not a 503 any anonymous caller could have left behind for pingEvery.
func TestHealthCallerGoneKeepsNothing(t *testing.T) {
	rs := redistest.Start(t)
	g := startHealthGateway(t, `[{"slug": "local", "active": true, "required": [], "upstream": {"url": "inprocess:calculate"}}]`, rs.URL)
	g.gw.pingEvery = time.Minute
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.gw.ready(gone); !errors.Is(err, errStoreDown) {
		t.Errorf("Ready of a caller gone = %v, want errStoreDown", err)
	}
	if got := g.get(t, "/health", nil, ""); got.status != 200 || got.body != `{"status":"ok"}`+"\n" {
		t.Errorf("Redis up, after a caller gave up: %d %q, want 200 ok", got.status, got.body)
	}
}
