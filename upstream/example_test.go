package upstream_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gatehouse-go/gatehouse/upstream"
)

// A Proxy in front of an upstream whose credentials were rotated: the caller
// gets the contract's 502, never the upstream's body.
func ExampleProxy() {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "token expired for account 4411", http.StatusUnauthorized)
	}))
	defer up.Close()

	p, err := upstream.NewProxy(upstream.Target{
		Name:   "quote",
		URL:    up.URL,
		Header: http.Header{"Authorization": {"Bearer old-secret"}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	defer p.Close()

	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("POST", "/api/quote", strings.NewReader(`{"inputs":{}}`)))
	fmt.Println(rec.Code)
	fmt.Print(rec.Body.String())
	// Output:
	// 502
	// {"error":"Upstream service authentication failed"}
}

// A Go caller of a keyed API sets Transport on its client and gets the
// contract's retries: here a 503, then a success.
func ExampleTransport() {
	calls := 0
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls == 1 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, `{"error":"Upstream service temporarily unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, `{"status":200,"response_data":{"outputs":{"AnnualPremium":1200}}}`)
	}))
	defer api.Close()

	client := &http.Client{Transport: &upstream.Transport{
		Jitter: func() float64 { return 0 }, // no wait, for the example
	}}
	req, _ := http.NewRequest("POST", api.URL+"/api/premium-calculator", strings.NewReader(`{"inputs":{"Premium":1200,"Age":42}}`))
	req.Header.Set("Authorization", "Bearer ila_...")
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, calls)
	fmt.Println(string(body))
	// Output:
	// 200 2
	// {"status":200,"response_data":{"outputs":{"AnnualPremium":1200}}}
}

// Health probes each upstream at most once per interval and answers /health.
func ExampleHealth() {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	gone.Close() // an upstream that is down

	h := upstream.NewHealth(upstream.HealthConfig{Logger: slog.New(slog.DiscardHandler)})
	h.Set(map[string]upstream.Target{"quote": {URL: up.URL}, "pdf": {URL: gone.URL}})

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/health", nil))
	fmt.Println(rec.Code)
	fmt.Print(rec.Body.String())
	// Output:
	// 200
	// {"status":"degraded","upstreams":{"pdf":"down"}}
}
