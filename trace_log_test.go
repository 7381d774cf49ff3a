package gatehouse

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// TestRequestLogTraceID: the request log line carries the trace id of a valid
// W3C traceparent, and no trace_id for an invalid or absent one.
func TestRequestLogTraceID(t *testing.T) {
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	tests := []struct {
		name, traceparent, want string
	}{
		{"valid", "00-" + trace + "-00f067aa0ba902b7-01", trace},
		{"uppercase", "00-" + strings.ToUpper(trace) + "-00f067aa0ba902b7-01", ""},
		{"all-zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""},
		{"absent", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, keys, _, logs := newTestStack(t)
			r := httptest.NewRequest("POST", "/api/quote", strings.NewReader(`{"inputs":{"Premium":1,"Age":2}}`))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("X-API-Key", keys.valid)
			if tt.traceparent != "" {
				r.Header.Set("Traceparent", tt.traceparent)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != 200 {
				t.Fatalf("status %d %q, want 200", rec.Code, rec.Body)
			}
			var line map[string]any
			if err := json.Unmarshal(bytes.TrimSpace(logs.Bytes()), &line); err != nil {
				t.Fatalf("log %q: %v", logs, err)
			}
			got, has := line["trace_id"].(string)
			if tt.want == "" && has {
				t.Errorf("trace_id = %q, want none", got)
			}
			if tt.want != "" && got != tt.want {
				t.Errorf("trace_id = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestConfigObserve: Auth.Observe and RateLimit.Observe are told each key
// check and rate-limit decision of New's stack, and New tells Config.Observe
// each request, with or without a logger that takes info lines.
func TestConfigObserve(t *testing.T) {
	for _, logging := range []bool{true, false} {
		plain, rec := auth.NewKey()
		rec.Products = []string{"quote"}
		rec.PerMinute, rec.PerDay = 1, 100
		var (
			mu       sync.Mutex
			requests []RequestEvent
			keys     []auth.Result
			limits   []ratelimit.Event
		)
		level := slog.LevelInfo
		if !logging {
			level = slog.LevelError
		}
		h := mustNew(t, Config{
			Auth: auth.Config{Store: auth.NewMemoryStore(rec),
				Observe: func(e auth.Event) { mu.Lock(); keys = append(keys, e.Result); mu.Unlock() }},
			RateLimit: ratelimit.Config{
				Observe: func(e ratelimit.Event) { mu.Lock(); limits = append(limits, e); mu.Unlock() }},
			Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true})},
			Product:  http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
			Logger:   slog.New(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: level})),
			Observe:  func(e RequestEvent) { mu.Lock(); requests = append(requests, e); mu.Unlock() },
		})
		for range 2 {
			post(h, "/api/quote", plain, "application/json", `{"inputs":{}}`)
		}
		post(h, "/api/quote", "", "application/json", `{"inputs":{}}`)
		var statuses []int
		for _, e := range requests {
			if e.Product != "quote" || e.Duration <= 0 {
				t.Errorf("logging %v: request event %+v, want product quote and a duration", logging, e)
			}
			statuses = append(statuses, e.Status)
		}
		if want := []int{200, 429, 401}; !slices.Equal(statuses, want) {
			t.Errorf("logging %v: request statuses %v, want %v", logging, statuses, want)
		}
		if len(keys) != 3 {
			t.Errorf("logging %v: %d key events, want 3 (one per key check)", logging, len(keys))
		}
		if len(limits) != 2 {
			t.Errorf("logging %v: %d rate-limit events, want 2 (the keyless request never reaches the limiter)", logging, len(limits))
		}
	}
}

// TestRequestEventStatus: a handler that wrote nothing answered 200; one that
// aborted (http.ErrAbortHandler) answered nothing, reported as status 0.
func TestRequestEventStatus(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    int
	}{
		{"wrote nothing", func(http.ResponseWriter, *http.Request) {}, 200},
		{"wrote 404", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) }, 404},
		{"aborted", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }, 0},
	}
	for _, tt := range tests {
		var got []int
		h := ObserveRequests(func(e RequestEvent) { got = append(got, e.Status) })(tt.handler)
		func() {
			defer func() {
				if p := recover(); p != nil && p != http.ErrAbortHandler {
					t.Errorf("%s: panic %v", tt.name, p)
				}
			}()
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/api/quote", nil))
		}()
		if len(got) != 1 || got[0] != tt.want {
			t.Errorf("%s: statuses %v, want [%d]", tt.name, got, tt.want)
		}
	}
}
