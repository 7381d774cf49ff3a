package gatehouse

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/internal/testclock"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/upstream"
)

// statusLog is a RoundTripper that records the status of every attempt the
// transport makes, the retried ones included.
type statusLog struct {
	mu       sync.Mutex
	statuses []int
}

func (l *statusLog) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		l.mu.Lock()
		l.statuses = append(l.statuses, resp.StatusCode)
		l.mu.Unlock()
	}
	return resp, err
}

// TestTransportPacedByGateway: a Go caller using upstream.Transport against a
// real gateway with a limit of 2 per minute sends 6 requests one after the
// other and gets 6 200s; no 429 ever crosses the wire, because the transport
// waited 30 s (60 s / 2) before each request the allowance had no token for.
// With NoPacing the third attempt is a 429, so the limit is really met.
func TestTransportPacedByGateway(t *testing.T) {
	for _, noPacing := range []bool{false, true} {
		plain, rec := auth.NewKey()
		rec.Products = []string{"*"}
		clk := testclock.New(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
		srv := httptest.NewServer(mustNew(t, Config{
			Auth:      auth.Config{Store: auth.NewMemoryStore(rec)},
			RateLimit: ratelimit.Config{Limits: ratelimit.Limits{PerMinute: 2, PerDay: 10000}},
			Products:  auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true})},
			Product:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") }),
			Logger:    discardLogger(),
			Now:       clk.Now,
		}))
		var waits []time.Duration
		wire := &statusLog{}
		client := &http.Client{Transport: &upstream.Transport{
			Base:        wire,
			MaxAttempts: 1, // a 429 that got through is seen, not retried
			NoPacing:    noPacing,
			Now:         clk.Now,
			Sleep: func(ctx context.Context, d time.Duration) error {
				waits = append(waits, d)
				clk.Advance(d)
				return nil
			},
		}}
		var got []int
		for range 6 {
			req, _ := http.NewRequest("POST", srv.URL+"/api/quote", strings.NewReader(`{"inputs":{}}`))
			req.Header.Set("X-API-Key", plain)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			got = append(got, resp.StatusCode)
		}
		srv.Close()
		want, wantWaits := []int{200, 200, 200, 200, 200, 200}, []time.Duration{30 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}
		if noPacing {
			want, wantWaits = []int{200, 200, 429, 429, 429, 429}, nil
		}
		if !slices.Equal(got, want) || !slices.Equal(wire.statuses, want) {
			t.Errorf("NoPacing %v: statuses %v, on the wire %v, want %v", noPacing, got, wire.statuses, want)
		}
		if !slices.Equal(waits, wantWaits) {
			t.Errorf("NoPacing %v: waits %v, want %v", noPacing, waits, wantWaits)
		}
	}
}
