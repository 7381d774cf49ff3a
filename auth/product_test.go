package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-go/gatehouse/errorsjson"
)

type failingCatalog struct{ err error }

func (c failingCatalog) Product(context.Context, string) (*Product, error) { return nil, c.err }

func TestProducts(t *testing.T) {
	catalog := NewMemoryCatalog(
		Product{Slug: "quote", Active: true, Required: []string{"Premium"}},
		Product{Slug: "claims", Active: true},
		Product{Slug: "retired", Active: false},
	)
	scoped := &Key{ID: "key_1", Products: []string{"quote", "retired"}}
	all := &Key{ID: "key_2", Products: []string{"*"}}
	tests := []struct {
		name    string
		catalog Catalog
		path    string
		key     *Key // nil: no key in the context
		status  int
		msg     string
	}{
		{"scoped key", catalog, "/api/quote", scoped, 200, ""},
		{"wildcard key", catalog, "/api/claims", all, 200, ""},
		{"no key in context", catalog, "/api/claims", nil, 200, ""},
		{"key not scoped", catalog, "/api/claims", scoped, 403, errorsjson.MsgForbidden},
		{"key with no products", catalog, "/api/quote", &Key{ID: "key_3"}, 403, errorsjson.MsgForbidden},
		{"unknown product", catalog, "/api/nope", scoped, 404, errorsjson.MsgProductNotFound},
		{"unknown product, wildcard key", catalog, "/api/nope", all, 404, errorsjson.MsgProductNotFound},
		{"inactive product, scoped key", catalog, "/api/retired", scoped, 404, errorsjson.MsgProductNotFound},
		{"case differs", catalog, "/api/Quote", all, 404, errorsjson.MsgProductNotFound},
		{"catalog error", failingCatalog{errors.New("db down")}, "/api/quote", all, 500, errorsjson.MsgInternal},
		{"wrapped not found", failingCatalog{fmt.Errorf("sql: %w", ErrProductNotFound)}, "/api/quote", all, 404, errorsjson.MsgProductNotFound},
		{"catalog returns nothing", failingCatalog{nil}, "/api/quote", all, 404, errorsjson.MsgProductNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *Product
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, _ = ProductFrom(r.Context())
			})
			mux := http.NewServeMux()
			mux.Handle("POST /api/{productSlug}", Products(ProductConfig{Catalog: tt.catalog, Logger: discard})(next))
			req := httptest.NewRequest("POST", tt.path, nil)
			if tt.key != nil {
				req = req.WithContext(withKey(req.Context(), tt.key))
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if tt.msg == "" {
				if rec.Code != 200 || got == nil || "/api/"+got.Slug != tt.path {
					t.Errorf("status %d, product %v; want 200 and the product of %s", rec.Code, got, tt.path)
				}
				return
			}
			assertError(t, rec, tt.status, tt.msg)
			if got != nil {
				t.Error("next ran for a refused request")
			}
		})
	}
}

func TestProductsCustomSlug(t *testing.T) {
	h := Products(ProductConfig{
		Catalog: NewMemoryCatalog(Product{Slug: "quote", Active: true}),
		Slug:    func(r *http.Request) string { return r.URL.Query().Get("product") },
		Logger:  discard,
	})(&okHandler{})
	for target, want := range map[string]int{"/?product=quote": 200, "/?product=x": 404, "/": 500} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", target, nil))
		if rec.Code != want {
			t.Errorf("%s: status %d, want %d", target, rec.Code, want)
		}
	}
}

// TestProductsNoSlug: a request that reaches the check with no slug at all
// is the operator's routing, not the caller's: 500 JSON, next not run, and
// exactly one error line that names the fix, with the request's id.
func TestProductsNoSlug(t *testing.T) {
	catalog := NewMemoryCatalog(Product{Slug: "quote", Active: true})
	tests := []struct {
		name string
		slug func(*http.Request) string
		want string // in the log line
	}{
		{"path value unset", nil, `set ProductConfig.Slug (gatehouse.Config.Products.Slug)`},
		{"Slug returns nothing", func(*http.Request) string { return "" }, `ProductConfig.Slug (gatehouse.Config.Products.Slug) returned an empty product slug`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log strings.Builder
			next := &okHandler{}
			mux := http.NewServeMux()
			// A route without {productSlug}: r.PathValue("productSlug") is "".
			mux.Handle("POST /api/quote", Products(ProductConfig{Catalog: catalog, Slug: tt.slug,
				Logger: slog.New(slog.NewTextHandler(&log, nil))})(next))
			req := httptest.NewRequest("POST", "/api/quote", nil)
			req = req.WithContext(withKey(req.Context(), &Key{ID: "key_1", Products: []string{"*"}}))
			rec := httptest.NewRecorder()
			errorsjson.RequestID(mux).ServeHTTP(rec, req)

			id := rec.Header().Get("X-Request-ID")
			want := `{"error":"Internal server error","request_id":"` + id + `"}` + "\n"
			if rec.Code != 500 || rec.Body.String() != want || rec.Header().Get("Content-Type") != "application/json" || id == "" {
				t.Errorf("got %d %q (Content-Type %q, X-Request-ID %q), want 500 %q", rec.Code, rec.Body, rec.Header().Get("Content-Type"), id, want)
			}
			if next.calls != 0 {
				t.Error("next ran for a request with no slug")
			}
			lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], "level=ERROR") || !strings.Contains(lines[0], tt.want) ||
				!strings.Contains(lines[0], "request_id="+id) || !strings.Contains(lines[0], "path=/api/quote") {
				t.Errorf("log:\n%s\nwant one error line naming %q, with path=/api/quote and request_id=%s", log.String(), tt.want, id)
			}
		})
	}
}

func TestMemoryCatalog(t *testing.T) {
	ctx := context.Background()
	var c MemoryCatalog // the zero value is usable
	if _, err := c.Product(ctx, "quote"); !errors.Is(err, ErrProductNotFound) {
		t.Fatalf("empty catalog: %v", err)
	}
	req := []string{"A"}
	c.Put(Product{Slug: "quote", Active: true, Required: req})
	req[0] = "changed"
	if p, err := c.Product(ctx, "quote"); err != nil || p.Required[0] != "A" {
		t.Fatalf("Product(quote) = %+v, %v", p, err)
	}
	c.Put(Product{Slug: "quote", Active: false})
	if p, _ := c.Product(ctx, "quote"); p.Active {
		t.Error("Put did not replace the product")
	}
	c.Replace([]Product{{Slug: "b"}, {Slug: "a"}})
	if ps := productsOf(&c); len(ps) != 2 || ps[0].Slug != "a" || ps[1].Slug != "b" {
		t.Errorf("products = %+v, want a and b", ps)
	}
	if !c.Delete("a") || c.Delete("a") {
		t.Error("Delete reports wrongly")
	}
}

func TestProductcostOf(t *testing.T) {
	p := &Product{Slug: "quote", Cost: 5, FormatCosts: map[string]int{"pdf": 10, "both": 11, "json": 0}}
	for format, want := range map[string]int{
		"":      5,  // no ?format=
		"pdf":   10, // listed
		"both":  11,
		"json":  1, // listed as 0: at least 1
		"PDF":   5, // formats are matched exactly: an unknown one costs the product's cost
		"xlsx":  5,
		"pdf ":  5,
		"pdf\n": 5,
	} {
		if got := p.costOf(format); got != want {
			t.Errorf("costOf(%q) = %d, want %d", format, got, want)
		}
	}
	if got := (&Product{}).costOf("pdf"); got != 1 {
		t.Errorf("zero Product: costOf(pdf) = %d, want 1", got)
	}
	if got := (&Product{Cost: -3}).costOf(""); got != 1 {
		t.Errorf("Cost -3: costOf = %d, want 1", got)
	}
	if n := testing.AllocsPerRun(100, func() { p.costOf("pdf") }); n != 0 {
		t.Errorf("costOf allocates %v times, want 0", n)
	}
}

func TestMemoryCatalogOwnsFormatCosts(t *testing.T) {
	costs := map[string]int{"pdf": 10}
	c := NewMemoryCatalog(Product{Slug: "quote", Active: true, FormatCosts: costs})
	costs["pdf"] = 99
	p, _ := c.Product(context.Background(), "quote")
	if got := p.costOf("pdf"); got != 10 {
		t.Errorf("after the caller changed its map: costOf(pdf) = %d, want 10 (the catalog's own copy)", got)
	}
}

func TestProductQueryCost(t *testing.T) {
	p := &Product{Cost: 5, FormatCosts: map[string]int{"pdf": 10, "both": 11}}
	for raw, want := range map[string]int{
		"":                       5,
		"format=json":            5,
		"format=pdf":             10,
		"x=1&format=both&y=2":    11,
		"format=json&format=pdf": 10, // a repeated parameter costs its dearest value
		"format=pdf&format=json": 10,
		"form%61t=p%64f":         10, // escapes are read as net/url reads them
		"format=pdf;x":           5,  // net/url skips a pair with a semicolon
		"format=%zz":             5,  // and one with a broken escape
	} {
		if got := p.QueryCost(raw); got != want {
			t.Errorf("QueryCost(%q) = %d, want %d", raw, got, want)
		}
	}
	if got := (&Product{Cost: 3}).QueryCost("format=pdf"); got != 3 {
		t.Errorf("no FormatCosts: QueryCost = %d, want 3", got)
	}
	if n := testing.AllocsPerRun(100, func() { p.QueryCost("a=1&format=pdf&b=2") }); n != 0 {
		t.Errorf("QueryCost of an unescaped query allocates %v times, want 0", n)
	}
}
