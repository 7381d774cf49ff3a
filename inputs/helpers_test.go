package inputs

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/gatehouse-go/gatehouse/auth"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// ok answers 200 with no body.
var ok = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})

// contextWithProduct returns the context r has below auth.Products once the
// product check has passed it with p (which must be active): the context in
// which Middleware finds the product's Required fields.
func contextWithProduct(r *http.Request, p *auth.Product) context.Context {
	var ctx context.Context
	check := auth.Products(auth.ProductConfig{
		Catalog: auth.NewMemoryCatalog(*p),
		Slug:    func(*http.Request) string { return p.Slug },
	})
	check(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { ctx = r.Context() })).ServeHTTP(httptest.NewRecorder(), r)
	if ctx == nil {
		panic("the product check refused product " + p.Slug)
	}
	return ctx
}
