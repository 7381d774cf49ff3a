package promgatehouse_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/promgatehouse"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// New registers the metrics; its methods, given to each layer's Observe
// field and to gatehouse.Config.Observe, feed them. Here a request with a key, one without and one for a product the
// catalog does not have show up under their product, status and key check.
func ExampleNew() {
	catalog := auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true})
	reg := prometheus.NewRegistry()
	m, err := promgatehouse.New(reg, promgatehouse.Config{
		// Only the catalog's slugs become label values: the path is the
		// caller's to choose.
		Known: func(slug string) bool {
			_, err := catalog.Product(context.Background(), slug)
			return err == nil
		},
	})
	if err != nil {
		panic(err)
	}
	plaintext, key := auth.NewKey()
	key.Products = []string{"quote"}
	h, err := gatehouse.New(gatehouse.Config{
		Auth:      auth.Config{Store: auth.NewMemoryStore(key), Observe: m.ObserveKey},
		RateLimit: ratelimit.Config{Observe: m.ObserveRateLimit},
		Products:  auth.ProductConfig{Catalog: catalog},
		Product:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{}`) }),
		Observe:   m.ObserveRequest,
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	for _, req := range []struct{ path, key string }{{"/api/quote", plaintext}, {"/api/quote", ""}, {"/api/whatever", ""}} {
		r := httptest.NewRequest("POST", req.path, strings.NewReader(`{"inputs":{}}`))
		r.Header.Set("Content-Type", "application/json")
		if req.key != "" {
			r.Header.Set("Authorization", "Bearer "+req.key)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}

	scrape(reg, "gatehouse_requests_total", "gatehouse_key_checks_total")
	// Output:
	// gatehouse_key_checks_total{result="missing"} 2
	// gatehouse_key_checks_total{result="valid"} 1
	// gatehouse_requests_total{code="200",product="quote"} 1
	// gatehouse_requests_total{code="401",product="quote"} 1
	// gatehouse_requests_total{code="401",product="unknown"} 1
}

// down is a primary rate-limit store (Redis, say) that is down.
type down struct{ ratelimit.Store }

func (down) Take(context.Context, ratelimit.Charge, time.Time) (ratelimit.Decision, error) {
	return ratelimit.Decision{}, errors.New("connection refused")
}

// RegisterFallback shows whether a ratelimit.Fallback store decides locally,
// and how often it has.
func ExampleRegisterFallback() {
	s := ratelimit.Fallback(down{}, ratelimit.FallbackConfig{Share: 0.5})
	reg := prometheus.NewRegistry()
	if err := promgatehouse.RegisterFallback(reg, s); err != nil {
		panic(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 3 {
		s.Take(context.Background(), ratelimit.Charge{Key: "k", Limits: ratelimit.Limits{PerMinute: 60, PerDay: 1000}}, now)
	}
	scrape(reg, "gatehouse_ratelimit_fallback")
	// Output:
	// gatehouse_ratelimit_fallback_active 1
	// gatehouse_ratelimit_fallback_decisions_total 3
}

// scrape prints the samples of reg that Prometheus would scrape from
// /metrics whose names begin with one of prefixes, but those that are 0.
func scrape(reg *prometheus.Registry, prefixes ...string) {
	w := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	s := bufio.NewScanner(w.Body)
	for s.Scan() {
		line := s.Text()
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) && !strings.HasSuffix(line, " 0") {
				fmt.Println(line)
			}
		}
	}
}
