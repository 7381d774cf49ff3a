package auth

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/authtest"
)

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
	authtest.Post(h, plain, "/", "")
	if got != "b" {
		t.Errorf("inner handler saw product %q, want b", got)
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
	authtest.Post(Middleware(Config{Store: store, Logger: discard})(parent), plainA, "/", "")
	want := []string{a.ID + " a", a.ID + " b", b.ID + " b", a.ID + " a"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("handlers saw %v, want %v", seen, want)
	}
}

// TestRequestWithKey: the request the key middleware passes on is a copy of
// the one it got, as r.WithContext makes, whose context holds the key and
// passes on the parent's values and cancellation; the copy and its context
// value are one allocation (docs/performance.md).
func TestRequestWithKey(t *testing.T) {
	type other struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), other{}, "v"))
	r := httptest.NewRequestWithContext(parent, "POST", "/api/quote", nil)
	k := &Key{ID: "k"}
	r2 := requestWithKey(r, k)
	if r2 == r || r2.Method != r.Method || r2.URL != r.URL {
		t.Fatal("not a shallow copy of the request")
	}
	if _, ok := KeyFrom(r.Context()); ok {
		t.Error("the original request's context holds the key")
	}
	if got, ok := KeyFrom(r2.Context()); !ok || got != k {
		t.Errorf("KeyFrom(copy) = %v, %v, want the key", got, ok)
	}
	if r2.Context().Value(other{}) != "v" {
		t.Error("a parent's value is lost")
	}
	cancel()
	if r2.Context().Err() != context.Canceled {
		t.Errorf("after the parent's cancel, Err = %v", r2.Context().Err())
	}
	if testing.CoverMode() != "" {
		return // coverage instrumentation allocates
	}
	if n := testing.AllocsPerRun(100, func() { requestWithKey(r, k) }); n != 1 {
		t.Errorf("requestWithKey allocates %v times, want 1", n)
	}
}

// TestMiddlewarePassAllocatesOnce: a request whose key passes costs the key
// middleware one allocation, the request's copy with its context value.
func TestMiddlewarePassAllocatesOnce(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	plain, k := NewKey()
	h := Middleware(Config{Store: NewMemoryStore(k), Logger: discard})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("POST", "/api/quote", nil)
	r.Header.Set("Authorization", "Bearer "+plain)
	w := httptest.NewRecorder()
	if n := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) }); n != 1 {
		t.Errorf("a pass allocates %v times, want 1", n)
	}
	if w.Code != http.StatusOK {
		t.Errorf("status %d", w.Code)
	}
}
