package inputs

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/internal/authtest"
)

// chainWith returns auth.Middleware → auth.Products → Middleware in front of
// last, over a store holding one key scoped to every product and a catalog of
// products a, b and c.
func chainWith(t *testing.T, last http.Handler) (http.Handler, string) {
	t.Helper()
	plain, k := auth.NewKey()
	k.Products = []string{"*"}
	catalog := auth.NewMemoryCatalog(auth.Product{Slug: "a", Active: true}, auth.Product{Slug: "b", Active: true}, auth.Product{Slug: "c", Active: true})
	products := auth.Products(auth.ProductConfig{Catalog: catalog})
	inputs := Middleware(Config{})
	mux := http.NewServeMux()
	mux.Handle("POST /api/{productSlug}", products(inputs(last)))
	return auth.Middleware(auth.Config{Store: auth.NewMemoryStore(k), Logger: discard})(mux), plain
}

// TestFoundOneRequest: the handler at the end sees the key, the product and
// the inputs of its request.
func TestFoundOneRequest(t *testing.T) {
	var got string
	h, key := chainWith(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, okK := auth.KeyFrom(r.Context())
		p, okP := auth.ProductFrom(r.Context())
		in, okI := From(r.Context())
		got = fmt.Sprintf("%v %v %s %v %s", okK && k != nil, okP, p.Slug, okI, in["x"])
	}))
	if rec := authtest.Post(h, key, "/api/b", `{"inputs":{"x":7}}`); rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if got != "true true b true 7" {
		t.Errorf("handler saw %q", got)
	}
}

// TestFoundSubrequestsAtOnce: sub-requests that share one context and go
// through auth.Products and Middleware at the same time each see their own
// product and inputs (run with -race).
func TestFoundSubrequestsAtOnce(t *testing.T) {
	type seen struct{ slug, x string }
	results := make(chan seen, 300)
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.ProductFrom(r.Context())
		in, _ := From(r.Context())
		results <- seen{p.Slug, string(in["x"])}
	})
	catalog := auth.NewMemoryCatalog(auth.Product{Slug: "a", Active: true}, auth.Product{Slug: "b", Active: true}, auth.Product{Slug: "c", Active: true})
	sub := http.NewServeMux()
	sub.Handle("POST /api/{productSlug}", auth.Products(auth.ProductConfig{Catalog: catalog})(Middleware(Config{})(inner)))
	plain, k := auth.NewKey()
	k.Products = []string{"*"}
	// The fan-out handler, under the key middleware, sends one sub-request per
	// product, each with the parent's context.
	fan := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var wg sync.WaitGroup
		for i := range 100 {
			for _, slug := range []string{"a", "b", "c"} {
				wg.Go(func() {
					body := fmt.Sprintf(`{"inputs":{"x":"%s%d"}}`, slug, i)
					req := httptest.NewRequestWithContext(r.Context(), "POST", "/api/"+slug, strings.NewReader(body))
					sub.ServeHTTP(httptest.NewRecorder(), req)
				})
			}
		}
		wg.Wait()
	})
	h := auth.Middleware(auth.Config{Store: auth.NewMemoryStore(k), Logger: discard})(fan)
	if rec := authtest.Post(h, plain, "/", ""); rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	close(results)
	n := 0
	for s := range results {
		n++
		if !strings.HasPrefix(s.x, `"`+s.slug) {
			t.Errorf("sub-request of product %s saw inputs %s", s.slug, s.x)
		}
	}
	if n != 300 {
		t.Errorf("%d sub-requests answered, want 300", n)
	}
}

// TestFoundWithoutKeyMiddleware: auth.Products and Middleware alone still
// store what they find; there is no key.
func TestFoundWithoutKeyMiddleware(t *testing.T) {
	catalog := auth.NewMemoryCatalog(auth.Product{Slug: "a", Active: true})
	var got string
	h := auth.Products(auth.ProductConfig{Catalog: catalog, Slug: func(*http.Request) string { return "a" }})(Middleware(Config{})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, okK := auth.KeyFrom(r.Context())
			p, _ := auth.ProductFrom(r.Context())
			in, _ := From(r.Context())
			got = fmt.Sprintf("%v %s %s", okK, p.Slug, in["x"])
		})))
	req := httptest.NewRequest("POST", "/", strings.NewReader(`{"inputs":{"x":1}}`))
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got != "false a 1" {
		t.Errorf("handler saw %q", got)
	}
}

// BenchmarkChain measures auth.Middleware → auth.Products → Middleware
// passing a typical request: the checks' cost in front of a product's handler,
// context values and copies of the request included.
func BenchmarkChain(b *testing.B) {
	plain, k := auth.NewKey()
	k.Products = []string{"*"}
	catalog := auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true, Required: []string{"Premium", "Age"}})
	last := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := From(r.Context()); !ok {
			w.WriteHeader(500)
		}
	})
	h := auth.Middleware(auth.Config{Store: auth.NewMemoryStore(k), Logger: discard})(
		auth.Products(auth.ProductConfig{Catalog: catalog, Slug: func(*http.Request) string { return "quote" }})(
			Middleware(Config{})(last)))
	const body = `{"inputs":{"Premium":100000,"Age":"40"}}`
	rd := strings.NewReader(body)
	req := httptest.NewRequest("POST", "/api/quote", rd)
	req.Header.Set("X-API-Key", plain)
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		req.Body = io.NopCloser(rd)
		req.ContentLength = int64(len(body))
		h.ServeHTTP(w, req)
	}
	if w.Code != 200 {
		b.Fatalf("status %d", w.Code)
	}
}
