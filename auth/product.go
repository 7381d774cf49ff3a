// This file holds products: the Catalog a product slug is looked up in,
// MemoryCatalog, and the Products middleware that answers 404 for an unknown
// or inactive product and 403 for a key not scoped to it.

package auth

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse-go/gatehouse/errorsjson"
	"github.com/gatehouse-go/gatehouse/internal/found"
	"github.com/gatehouse-go/gatehouse/internal/nilhandler"
)

// ErrProductNotFound is what a [Catalog] returns for a slug it does not hold.
var ErrProductNotFound = errors.New("auth: product not found")

// Product is a product callers reach by its slug.
//
// A Product returned by a [Catalog] is shared: treat it, and its Required
// slice, as read-only.
type Product struct {
	// Slug names the product in the URL (/api/{productSlug}).
	Slug string
	// Active is false for a product that exists but is not served: it gets
	// 404, like an unknown one.
	Active bool
	// Required lists the input fields a request must carry, in the order
	// they are reported when missing.
	Required []string
	// Cost is the number of tokens one request to the product spends from
	// each of its key's (and owner's) limits; 0 means 1.
	Cost int
	// FormatCosts overrides Cost for a request whose ?format= query has the
	// given value ("pdf": 10, say). A format not listed, or no format, costs
	// Cost. Nil means every request costs Cost.
	FormatCosts map[string]int
}

// costOf returns what one request to p with the ?format= value format costs:
// FormatCosts[format] if listed, else Cost; at least 1 either way (0, or a
// negative value that validation should have refused, counts as 1). It does
// not allocate.
func (p *Product) costOf(format string) int {
	c := p.Cost
	if format != "" {
		if fc, ok := p.FormatCosts[format]; ok {
			c = fc
		}
	}
	return max(c, 1)
}

// QueryCost returns what one request to p costs given its raw query string
// (r.URL.RawQuery): the highest costOf among the values of every
// "format" parameter, as net/url decodes them, or costOf("") when there is
// none. Taking the highest means that a caller who repeats the parameter
// (format=json&format=pdf) pays for the dearest reading of it, whichever one
// the upstream believes. A product without FormatCosts costs Cost without
// the query being read, and a query without escapes is read without
// allocating.
func (p *Product) QueryCost(rawQuery string) int {
	if len(p.FormatCosts) == 0 {
		return p.costOf("")
	}
	cost, found := 0, false
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		if strings.Contains(pair, ";") {
			continue // net/url skips such a pair: so does the upstream, if Go
		}
		k, v, _ := strings.Cut(pair, "=")
		k, ok := unescapeQuery(k)
		if !ok || k != "format" {
			continue
		}
		if v, ok = unescapeQuery(v); !ok {
			continue
		}
		cost, found = max(cost, p.costOf(v)), true
	}
	if !found {
		return p.costOf("")
	}
	return cost
}

// unescapeQuery decodes one key or value of a query string as
// url.QueryUnescape does, allocating only when s holds an escape; ok is false
// where url.ParseQuery would skip the pair.
func unescapeQuery(s string) (string, bool) {
	if !strings.ContainsAny(s, "%+") {
		return s, true
	}
	u, err := url.QueryUnescape(s)
	return u, err == nil
}

// Catalog finds products by slug. Product returns [ErrProductNotFound]
// (possibly wrapped) for a slug it does not hold and wraps any other failure
// with %w. Implementations must be safe for simultaneous use.
type Catalog interface {
	Product(ctx context.Context, slug string) (*Product, error)
}

// MemoryCatalog is a [Catalog] held in memory that an administrator can change
// while it serves; the next request sees a change. Product takes no lock; each
// change copies the catalog. The zero value is an empty catalog ready to use.
// MemoryCatalog is safe for simultaneous use by multiple goroutines.
type MemoryCatalog struct {
	products cowMap[string, Product] // by Slug
}

// NewMemoryCatalog returns a MemoryCatalog holding products; a later product
// replaces an earlier one with the same slug.
func NewMemoryCatalog(products ...Product) *MemoryCatalog {
	c := &MemoryCatalog{}
	c.Replace(products)
	return c
}

// Product implements [Catalog]. It never fails other than with
// [ErrProductNotFound].
func (c *MemoryCatalog) Product(_ context.Context, slug string) (*Product, error) {
	if p := c.products.get(slug); p != nil {
		return p, nil
	}
	return nil, ErrProductNotFound
}

// Put adds p, or replaces the product with p's slug. The catalog keeps its own
// copy of p.
func (c *MemoryCatalog) Put(p Product) {
	c.products.change(func(m map[string]*Product) { m[p.Slug] = ownProduct(p) })
}

// Delete removes the product with slug and reports whether there was one.
func (c *MemoryCatalog) Delete(slug string) (found bool) {
	c.products.change(func(m map[string]*Product) {
		_, found = m[slug]
		delete(m, slug)
	})
	return found
}

// Replace swaps the whole content of the catalog for products, atomically for
// readers, as a config reload does.
func (c *MemoryCatalog) Replace(products []Product) {
	m := make(map[string]*Product, len(products))
	for _, p := range products {
		m[p.Slug] = ownProduct(p)
	}
	c.products.replace(m)
}

// ownProduct returns a copy of p that shares no memory with the caller's.
func ownProduct(p Product) *Product {
	p.Required = slices.Clone(p.Required)
	p.FormatCosts = maps.Clone(p.FormatCosts)
	return &p
}

// ProductConfig configures [Products]. Catalog is required; every other zero
// value is a default. [ProductConfig.Validate] says whether a ProductConfig
// can work; Products refuses one that cannot.
type ProductConfig struct {
	// Catalog holds the products. Required: without one no product could
	// ever be found.
	Catalog Catalog
	// Slug returns the product slug of a request (nil: the path value
	// "productSlug", as in the pattern "POST /api/{productSlug}"). Set it
	// where the router has not filled that path value when the check runs:
	// gorilla/mux keeps its variables in mux.Vars, and chi fills path values
	// only once a route has matched, after the middleware of a r.Route group
	// has run (docs/adopting.md shows both). An empty slug is a
	// configuration error, not the caller's: 500, and a log line naming Slug.
	Slug func(*http.Request) string
	// Logger receives catalog failures (nil: slog.Default()).
	Logger *slog.Logger
}

// SlugOf returns the product slug of r: cfg.Slug(r), or the path value
// "productSlug" when Slug is nil.
func (cfg ProductConfig) SlugOf(r *http.Request) string {
	if cfg.Slug != nil {
		return cfg.Slug(r)
	}
	return r.PathValue("productSlug")
}

// errNoCatalog refuses a ProductConfig without a Catalog.
var errNoCatalog = errors.New("auth: ProductConfig.Catalog is nil: no product could ever be found")

// Validate returns an error if cfg cannot work: it has no Catalog.
func (cfg ProductConfig) Validate() error {
	if cfg.Catalog == nil {
		return errNoCatalog
	}
	return nil
}

// Products returns middleware that lets a request through only to an active
// product its key is scoped to, and stores the product in the request's
// context for [ProductFrom]. It answers, through errorsjson.Write:
//
//   - 404 "Product not found" when the slug is unknown or the product
//     inactive;
//   - 403 "Your API key does not have access to this product" when the key
//     that [Middleware] stored is not scoped to the product (see [Key.Allows]);
//   - 500 "Internal server error" when the catalog fails with an error other
//     than ErrProductNotFound; the error is logged;
//   - 500 "Internal server error" when the request has no slug at all: the
//     route holds no {productSlug} where the check runs, which is the
//     operator's configuration, not the caller's mistake. Each such request
//     logs one error line that names the fix (a {productSlug} route, or
//     ProductConfig.Slug).
//
// With no key in the context (Products used without Middleware in front of
// it), the scope check is skipped: Products alone does not authenticate.
//
// Like [Middleware], it panics with cfg.Validate's error if cfg cannot work,
// and if the handler it is given is nil.
func Products(cfg ProductConfig) func(http.Handler) http.Handler {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	c := &productCheck{cfg: cfg, logger: cfg.Logger}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return func(next http.Handler) http.Handler {
		nilhandler.Refuse("auth: Products", next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p := c.check(w, r); p != nil {
				if ctx, copied := withProduct(r.Context(), p); copied {
					r = r.WithContext(ctx)
				}
				next.ServeHTTP(w, r)
			}
		})
	}
}

// productCheck is [Products]' check, with its defaults filled in.
type productCheck struct {
	cfg    ProductConfig
	logger *slog.Logger
}

// check returns r's product if r may call it, and otherwise answers r itself
// and returns nil. Like the key check's, it returns before the next handler
// runs, so that its locals are not on the stack under it.
func (c *productCheck) check(w http.ResponseWriter, r *http.Request) *Product {
	slug := c.cfg.SlugOf(r)
	if slug == "" {
		c.logger.LogAttrs(r.Context(), slog.LevelError, c.noSlug(),
			slog.String("path", r.URL.Path),
			slog.String("request_id", errorsjson.RequestIDFrom(r.Context())))
		errorsjson.Write(w, r, http.StatusInternalServerError, errorsjson.MsgInternal)
		return nil
	}
	p, err := c.cfg.Catalog.Product(r.Context(), slug)
	switch {
	case errors.Is(err, ErrProductNotFound) || (err == nil && (p == nil || !p.Active)):
		errorsjson.Write(w, r, http.StatusNotFound, errorsjson.MsgProductNotFound)
		return nil
	case err != nil:
		c.logger.LogAttrs(r.Context(), slog.LevelError, "auth: product lookup failed",
			slog.String("product", slug), slog.String("error", err.Error()),
			slog.String("request_id", errorsjson.RequestIDFrom(r.Context())))
		errorsjson.Write(w, r, http.StatusInternalServerError, errorsjson.MsgInternal)
		return nil
	}
	if k, ok := KeyFrom(r.Context()); ok && !k.Allows(slug) {
		errorsjson.Write(w, r, http.StatusForbidden, errorsjson.MsgForbidden)
		return nil
	}
	return p
}

// noSlug is the log message of a request that reached the check with no
// slug: what is wrong, and the fix, for the operator who configured it.
func (c *productCheck) noSlug() string {
	if c.cfg.Slug != nil {
		return "auth: ProductConfig.Slug (gatehouse.Config.Products.Slug) returned an empty product slug: " +
			"it must return the slug of every request routed to the product check"
	}
	return "auth: no product slug: r.PathValue(\"productSlug\") is empty where the product check runs; " +
		"route it under a pattern holding {productSlug} (chi: not in the middleware of an r.Route group whose routes hold it), " +
		"or set ProductConfig.Slug (gatehouse.Config.Products.Slug) to read the slug where your router keeps it"
}

// ProductFrom returns the product [Products] stored in ctx. The product is
// shared: do not modify it. Products records it in the key middleware's
// context value rather than in a copy of the request, so a handler between
// the two also sees it once Products has run (package internal/found).
func ProductFrom(ctx context.Context) (*Product, bool) {
	p, ok := found.Get(ctx, found.Product).(*Product)
	return p, ok
}
