package auth

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// chainWith returns Middleware → Products → Inputs in front of last, over a
// store holding one key scoped to every product and a catalog of products a,
// b and c.
func chainWith(t *testing.T, last http.Handler) (http.Handler, string) {
	t.Helper()
	plain, k := NewKey()
	k.Products = []string{"*"}
	catalog := NewMemoryCatalog(Product{Slug: "a", Active: true}, Product{Slug: "b", Active: true}, Product{Slug: "c", Active: true})
	products := Products(ProductConfig{Catalog: catalog})
	inputs := Inputs(InputConfig{})
	mux := http.NewServeMux()
	mux.Handle("POST /api/{productSlug}", products(inputs(last)))
	return Middleware(Config{Store: NewMemoryStore(k), Logger: discard})(mux), plain
}

func postTo(h http.Handler, key, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.Header.Set("X-API-Key", key)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestFoundOneRequest: the handler at the end sees the key, the product and
// the inputs of its request.
func TestFoundOneRequest(t *testing.T) {
	var got string
	h, key := chainWith(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, okK := KeyFrom(r.Context())
		p, okP := ProductFrom(r.Context())
		in, okI := InputsFrom(r.Context())
		got = fmt.Sprintf("%v %v %s %v %s", okK && k != nil, okP, p.Slug, okI, in["x"])
	}))
	if rec := postTo(h, key, "/api/b", `{"inputs":{"x":7}}`); rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if got != "true true b true 7" {
		t.Errorf("handler saw %q", got)
	}
}

// TestFoundSubrequestsAtOnce: sub-requests that share one context and go
// through Products and Inputs at the same time each see their own product and
// inputs (run with -race).
func TestFoundSubrequestsAtOnce(t *testing.T) {
	type seen struct{ slug, x string }
	results := make(chan seen, 300)
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := ProductFrom(r.Context())
		in, _ := InputsFrom(r.Context())
		results <- seen{p.Slug, string(in["x"])}
	})
	catalog := NewMemoryCatalog(Product{Slug: "a", Active: true}, Product{Slug: "b", Active: true}, Product{Slug: "c", Active: true})
	sub := http.NewServeMux()
	sub.Handle("POST /api/{productSlug}", Products(ProductConfig{Catalog: catalog})(Inputs(InputConfig{})(inner)))
	plain, k := NewKey()
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
	h := Middleware(Config{Store: NewMemoryStore(k), Logger: discard})(fan)
	if rec := postTo(h, plain, "/", ""); rec.Code != 200 {
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

// TestFoundTwice: a request that goes through Products twice (an internal
// rewrite to another product, say) is seen below with the second product.
func TestFoundTwice(t *testing.T) {
	catalog := NewMemoryCatalog(Product{Slug: "a", Active: true}, Product{Slug: "b", Active: true})
	var got string
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := ProductFrom(r.Context())
		got = p.Slug
	})
	second := Products(ProductConfig{Catalog: catalog, Slug: func(*http.Request) string { return "b" }})(inner)
	first := Products(ProductConfig{Catalog: catalog, Slug: func(*http.Request) string { return "a" }})(second)
	plain, k := NewKey()
	k.Products = []string{"*"}
	h := Middleware(Config{Store: NewMemoryStore(k), Logger: discard})(first)
	postTo(h, plain, "/", "")
	if got != "b" {
		t.Errorf("inner handler saw product %q, want b", got)
	}
}

// TestFoundWithoutKeyMiddleware: Products and Inputs alone still store what
// they find; there is no key.
func TestFoundWithoutKeyMiddleware(t *testing.T) {
	catalog := NewMemoryCatalog(Product{Slug: "a", Active: true})
	var got string
	h := Products(ProductConfig{Catalog: catalog, Slug: func(*http.Request) string { return "a" }})(Inputs(InputConfig{})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, okK := KeyFrom(r.Context())
			p, _ := ProductFrom(r.Context())
			in, _ := InputsFrom(r.Context())
			got = fmt.Sprintf("%v %s %s", okK, p.Slug, in["x"])
		})))
	req := httptest.NewRequest("POST", "/", strings.NewReader(`{"inputs":{"x":1}}`))
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got != "false a 1" {
		t.Errorf("handler saw %q", got)
	}
}

// TestFoundContextIsAContext: the key middleware's context passes on the
// parent's values, deadline and cancellation, also to contexts derived from it.
func TestFoundContextIsAContext(t *testing.T) {
	type other struct{}
	parent, cancel := context.WithTimeout(context.WithValue(context.Background(), other{}, "v"), time.Hour)
	ctx := withKey(parent, &Key{ID: "k"})
	child, stop := context.WithCancel(ctx)
	defer stop()
	if ctx.Value(other{}) != "v" || child.Value(other{}) != "v" {
		t.Error("a parent's value is lost")
	}
	if k, ok := KeyFrom(child); !ok || k.ID != "k" {
		t.Error("the key is lost in a derived context")
	}
	if d, ok := ctx.Deadline(); !ok || time.Until(d) < 59*time.Minute {
		t.Errorf("deadline %v, %v", d, ok)
	}
	cancel()
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("cancelling the parent did not reach a derived context")
	}
	if ctx.Err() != context.Canceled || child.Err() != context.Canceled {
		t.Errorf("Err = %v, %v", ctx.Err(), child.Err())
	}
}

// BenchmarkChain measures Middleware → Products → Inputs passing a typical
// request, the path the found context value (found.go) is written for.
func BenchmarkChain(b *testing.B) {
	plain, k := NewKey()
	k.Products = []string{"*"}
	catalog := NewMemoryCatalog(Product{Slug: "quote", Active: true, Required: []string{"Premium", "Age"}})
	last := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := InputsFrom(r.Context()); !ok {
			w.WriteHeader(500)
		}
	})
	h := Middleware(Config{Store: NewMemoryStore(k), Logger: discard})(
		Products(ProductConfig{Catalog: catalog, Slug: func(*http.Request) string { return "quote" }})(
			Inputs(InputConfig{})(last)))
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

// TestFoundParentKeepsItsOwn: a handler under the key middleware that sends
// sub-requests with its own context, one after the other, keeps its own key
// (a sub-request through the key middleware with another key) and the
// product the first sub-request through Products filled in (a second one
// does not change it); each sub-request's handler sees its own.
func TestFoundParentKeepsItsOwn(t *testing.T) {
	catalog := NewMemoryCatalog(Product{Slug: "a", Active: true}, Product{Slug: "b", Active: true})
	plainA, a := NewKey()
	a.Products = []string{"*"}
	plainB, b := NewKey()
	b.Products = []string{"*"}
	store := NewMemoryStore(a, b)
	var seen []string
	see := func(r *http.Request) {
		var id, slug string
		if k, ok := KeyFrom(r.Context()); ok {
			id = k.ID
		}
		if p, ok := ProductFrom(r.Context()); ok {
			slug = p.Slug
		}
		seen = append(seen, id+" "+slug)
	}
	products := Products(ProductConfig{Catalog: catalog})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { see(r) }))
	sub := http.NewServeMux()
	sub.Handle("POST /api/{productSlug}", products)
	sub.Handle("POST /keyed/{productSlug}", Middleware(Config{Store: store, Logger: discard})(products))
	parent := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, path := range []string{"/api/a", "/api/b", "/keyed/b"} {
			req := httptest.NewRequestWithContext(r.Context(), "POST", path, nil)
			req.Header.Set("X-API-Key", plainB)
			sub.ServeHTTP(httptest.NewRecorder(), req)
		}
		see(r)
	})
	postTo(Middleware(Config{Store: store, Logger: discard})(parent), plainA, "/", "")
	want := []string{a.ID + " a", a.ID + " b", b.ID + " b", a.ID + " a"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("handlers saw %v, want %v", seen, want)
	}
}
