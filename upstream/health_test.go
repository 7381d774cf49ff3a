package upstream

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

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
	h := NewHealth(HealthConfig{Interval: 10 * time.Second, Timeout: time.Second, Now: clock, Logger: slog.New(slog.DiscardHandler)})
	get := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/health", nil))
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
		return rec
	}

	if rec := get(); rec.Code != 200 || rec.Body.String() != `{"status":"ok","upstreams":{}}`+"\n" {
		t.Errorf("no upstreams: %d %q", rec.Code, rec.Body)
	}

	quote := Target{URL: up.URL + "/quote", HealthURL: up.URL + "/healthz", Header: http.Header{"Authorization": {upstreamSecret}}}
	h.Set(map[string]Target{"quote": quote})
	if rec := get(); rec.Code != 200 || rec.Body.String() != `{"status":"ok","upstreams":{"quote":"ok"}}`+"\n" {
		t.Errorf("healthy: %d %q", rec.Code, rec.Body)
	}

	// Many checks within the interval, some at once: still one probe.
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() { defer wg.Done(); get() }()
	}
	wg.Wait()
	if n := probes.Load(); n != 1 {
		t.Errorf("%d probes within one interval, want 1", n)
	}

	// Past the interval, an upstream that refuses the credential is down.
	status.Store(401)
	mu.Lock()
	now = now.Add(11 * time.Second)
	mu.Unlock()
	want := `{"error":"Upstream service temporarily unavailable","status":"unavailable","upstreams":{"quote":"unavailable"}}` + "\n"
	if rec := get(); rec.Code != 503 || rec.Body.String() != want {
		t.Errorf("401 upstream: %d %q, want 503 %q", rec.Code, rec.Body, want)
	}

	// Set keeps an unchanged target's probe and adds an unreachable one.
	status.Store(200)
	h.Set(map[string]Target{"quote": quote, "pdf": {URL: down}})
	want = `{"error":"Upstream service temporarily unavailable","status":"unavailable","upstreams":{"pdf":"unavailable","quote":"unavailable"}}` + "\n"
	if rec := get(); rec.Code != 503 || rec.Body.String() != want {
		t.Errorf("one down: %d %q, want %q", rec.Code, rec.Body, want)
	}
	if n := probes.Load(); n != 2 {
		t.Errorf("%d probes, want 2: Set must keep an unchanged target's last probe", n)
	}
	mu.Lock()
	now = now.Add(11 * time.Second)
	mu.Unlock()
	h.Set(map[string]Target{"quote": quote})
	if rec := get(); rec.Code != 200 {
		t.Errorf("after recovery: %d %q", rec.Code, rec.Body)
	}
}
