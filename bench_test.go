package gatehouse

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// BenchmarkMiddlewarePlainKey is the checks of Middleware for a key with only
// the default pair of limits, no owner, and a product of cost 1: the hot path
// that the rate-limit charge must keep free of allocations.
func BenchmarkMiddlewarePlainKey(b *testing.B) {
	plain, rec := auth.NewKey()
	rec.Products = []string{"quote"}
	rec.PerMinute, rec.PerDay = ratelimit.MaxLimit, ratelimit.MaxLimit
	benchMiddleware(b, Config{
		Auth:     auth.Config{Store: auth.NewMemoryStore(rec)},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true})},
	}, plain, "/api/quote")
}

// benchMiddleware serves target with key through Middleware(cfg) in front of
// a handler that writes nothing, b.N times.
func benchMiddleware(b *testing.B, cfg Config, key, target string) {
	mw, err := Middleware(cfg)
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /api/{productSlug}", mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	serveBench(b, mux, key, target)
}

// serveBench serves target with key through h, b.N times, expecting 200.
func serveBench(b *testing.B, h http.Handler, key, target string) {
	body := `{"inputs":{"Premium":1}}`
	req := httptest.NewRequest("POST", target, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", key)
	rd := strings.NewReader(body)
	rc := nopCloser{rd}
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		req.Body = rc
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		w.Body.Reset()
		clear(w.Header())
	}
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

// BenchmarkMiddlewareOwnerWindowsCost is the same checks for a key with an
// hourly window of its own and an owner's daily allowance, calling a product
// of cost 5 with ?format=pdf (cost 10): what the charge adds when it is used.
func BenchmarkMiddlewareOwnerWindowsCost(b *testing.B) {
	plain, rec := auth.NewKey()
	rec.Products = []string{"quote"}
	rec.PerMinute, rec.PerDay = ratelimit.MaxLimit, ratelimit.MaxLimit
	rec.Owner = "acme"
	rec.Windows = []ratelimit.Rate{{Limit: ratelimit.MaxLimit, Period: time.Hour}}
	owners := map[string][]ratelimit.Rate{"acme": {{Limit: ratelimit.MaxLimit, Period: 24 * time.Hour}}}
	benchMiddleware(b, Config{
		Auth: auth.Config{Store: auth.NewMemoryStore(rec)},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{
			Slug: "quote", Active: true, Cost: 5, FormatCosts: map[string]int{"pdf": 10}})},
		Owners: func(_ context.Context, owner string) []ratelimit.Rate { return owners[owner] },
	}, plain, "/api/quote?format=pdf")
}

// BenchmarkKeyCharge is the root's default rate-limit key alone (keyCharge:
// the key's limits, the product's cost by its catalog lookup, the owner's
// allowance), for a plain key and product, and for a key with a window and an
// owner calling a product with format costs.
func BenchmarkKeyCharge(b *testing.B) {
	plainKey, plain := auth.NewKey()
	ownedKey, owned := auth.NewKey()
	owned.Owner = "acme"
	owned.Windows = []ratelimit.Rate{{Limit: 1000, Period: time.Hour}}
	owners := map[string][]ratelimit.Rate{"acme": {{Limit: 100_000, Period: 24 * time.Hour}}}
	cfg := Config{
		Auth: auth.Config{Store: auth.NewMemoryStore(plain, owned)},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(
			auth.Product{Slug: "plain", Active: true},
			auth.Product{Slug: "quote", Active: true, Cost: 5, FormatCosts: map[string]int{"pdf": 10}})},
		Owners: func(_ context.Context, owner string) []ratelimit.Rate { return owners[owner] },
	}.withDefaults()
	for _, bc := range []struct{ name, key, target string }{
		{"plain", plainKey, "/api/plain"},
		{"owner-window-pdf", ownedKey, "/api/quote?format=pdf"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := auth.Middleware(cfg.Auth)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b.ReportAllocs()
				for b.Loop() {
					cfg.keyCharge(r)
				}
			}))
			mux := http.NewServeMux()
			mux.Handle("POST /api/{productSlug}", h)
			req := httptest.NewRequest("POST", bc.target, nil)
			req.Header.Set("X-API-Key", bc.key)
			mux.ServeHTTP(httptest.NewRecorder(), req)
		})
	}
}

// BenchmarkNewRequestLog is the whole handler of New, request id and request
// log line included (a text line a request, written nowhere), in front of a
// product that writes nothing: the stack's own cost a request with the log
// on.
func BenchmarkNewRequestLog(b *testing.B) {
	plain, rec := auth.NewKey()
	rec.Products = []string{"quote"}
	rec.PerMinute, rec.PerDay = ratelimit.MaxLimit, ratelimit.MaxLimit
	h, err := New(Config{
		Auth:     auth.Config{Store: auth.NewMemoryStore(rec)},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true})},
		Product:  http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	serveBench(b, h, plain, "/api/quote")
}
