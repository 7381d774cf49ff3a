package gatehouse

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/internal/refused"
	"github.com/gatehouse-go/gatehouse/internal/testclock"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// wholeConfig returns a Config that New accepts, with one key (its plaintext
// returned) for the products "quote" and "panics".
func wholeConfig() (Config, string) {
	plain, rec := auth.NewKey()
	rec.Products = []string{"*"}
	return Config{
		Auth: auth.Config{Store: auth.NewMemoryStore(rec)},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(
			auth.Product{Slug: "quote", Active: true},
		)},
		Product: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") }),
		Logger:  slog.New(slog.DiscardHandler),
	}, plain
}

// TestConfigRefused: a Config that cannot work is refused when the handler is
// built, by New and by Middleware, with an error naming what is missing,
// never answered with 500 at request time: the layer's own Validate error
// (the one its constructor panics with) after the root's field.
func TestConfigRefused(t *testing.T) {
	tests := []struct {
		name       string
		edit       func(*Config)
		want       string // the error of New
		middleware bool   // Middleware refuses it too
	}{
		{"no key store", func(c *Config) { c.Auth.Store = nil }, "gatehouse: Config.Auth: " + noStore, true},
		{"no catalog", func(c *Config) { c.Products.Catalog = nil }, "gatehouse: Config.Products: " + noCatalog, true},
		{"no product handler", func(c *Config) { c.Product = nil }, noProduct, false},
		{"rate limits above MaxLimit", func(c *Config) { c.RateLimit.Limits.PerDay = ratelimit.MaxLimit + 1 },
			"gatehouse: Config.RateLimit: ratelimit: invalid limits: 60 a minute and 4503599627370497 a day, want 1 to 2^52", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := wholeConfig()
			tt.edit(&cfg)
			h, err := New(cfg)
			if err == nil || err.Error() != tt.want || h != nil {
				t.Errorf("New: %v, %v; want nil and the error %q", h, err, tt.want)
			}
			mw, err := Middleware(cfg)
			if tt.middleware && (err == nil || err.Error() != tt.want || mw != nil) {
				t.Errorf("Middleware: err %v; want the error %q", err, tt.want)
			}
			if !tt.middleware && (err != nil || mw == nil) {
				t.Errorf("Middleware: err %v; want a middleware (it wraps the route's own handler)", err)
			}
		})
	}
	// Every missing part is named at once, one line each.
	_, err := New(Config{})
	if want := "gatehouse: Config.Auth: " + noStore + "\ngatehouse: Config.Products: " + noCatalog + "\n" + noProduct; err == nil || err.Error() != want {
		t.Errorf("New(Config{}): %v, want %q", err, want)
	}
	// The root's rate-limit key is the authenticated key's allowance, so a nil
	// RateLimit.Key is whole here (ratelimit.Middleware alone refuses it).
	cfg, _ := wholeConfig()
	if cfg.RateLimit.Key != nil {
		t.Fatal("wholeConfig sets a rate-limit key")
	}
	if _, err := New(cfg); err != nil {
		t.Errorf("New with the root's default rate-limit key: %v", err)
	}
	mw, _ := Middleware(cfg)
	refused.Panic(t, "gatehouse: Middleware of a nil handler", func() { mw(nil) })
	refused.Panic(t, "gatehouse: RequestLog of a nil handler", func() { RequestLog(nil)(nil) })
	refused.Panic(t, "gatehouse: ObserveRequests of a nil handler", func() { ObserveRequests(nil)(nil) })
}

// The layers' refusals, word for word as their packages' tests assert them.
const (
	noStore   = "auth: Config.Store is nil: no key could ever pass"
	noCatalog = "auth: ProductConfig.Catalog is nil: no product could ever be found"
	noProduct = "gatehouse: Config.Product is nil: nothing would answer a request that passed"
)

// failingStore fails the lookup of one key; the others are in mem.
type failingStore struct {
	auth.Store
	fail [32]byte
}

func (s failingStore) Lookup(ctx context.Context, hash [32]byte) (*auth.Key, error) {
	if hash == s.fail {
		return nil, errors.New("key store down")
	}
	return s.Store.Lookup(ctx, hash)
}

// failingLimits fails the bucket of one rate-limit key.
type failingLimits struct {
	ratelimit.Store
	fail string
}

func (s failingLimits) Take(ctx context.Context, c ratelimit.Charge, now time.Time) (ratelimit.Decision, error) {
	if c.Key == s.fail {
		return ratelimit.Decision{}, errors.New("bucket store down")
	}
	return s.Store.Take(ctx, c, now)
}

// failingCatalog fails the product "broken".
type failingCatalog struct{ auth.Catalog }

func (c failingCatalog) Product(ctx context.Context, slug string) (*auth.Product, error) {
	if slug == "broken" {
		return nil, errors.New("catalog down")
	}
	return c.Catalog.Product(ctx, slug)
}

// TestEveryLayerLogsToLogger: Config.Logger is the logger of every layer that
// has none of its own: a failing key store (auth), a failing bucket store
// (ratelimit), a failing catalog (products) and a panic (recovery) each log
// their line to it, and a layer given its own Logger keeps it.
func TestEveryLayerLogsToLogger(t *testing.T) {
	storeDown, storeDownRec := auth.NewKey()
	limitsDown, limitsDownRec := auth.NewKey()
	plain, rec := auth.NewKey()
	for _, k := range []*auth.Key{&storeDownRec, &limitsDownRec, &rec} {
		k.Products = []string{"*"}
	}
	mem := auth.NewMemoryStore(storeDownRec, limitsDownRec, rec)
	var logs, productLogs bytes.Buffer
	h := mustNew(t, Config{
		Auth:      auth.Config{Store: failingStore{Store: mem, fail: storeDownRec.Hash}},
		RateLimit: ratelimit.Config{Store: failingLimits{Store: ratelimit.NewMemoryStore(ratelimit.MemoryConfig{}), fail: limitsDownRec.LimitID()}},
		Products: auth.ProductConfig{Catalog: failingCatalog{auth.NewMemoryCatalog(
			auth.Product{Slug: "quote", Active: true},
			auth.Product{Slug: "panics", Active: true},
		)}},
		Product: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p, _ := auth.ProductFrom(r.Context()); p.Slug == "panics" {
				panic("backend bug")
			}
		}),
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	tests := []struct {
		layer, key, slug string
		status           int
		line             string // the layer's line in Config.Logger
	}{
		{"auth", storeDown, "quote", 503, `msg="auth: key lookup failed"`},
		{"ratelimit", limitsDown, "quote", 503, `msg="ratelimit: store failed"`},
		{"products", plain, "broken", 500, `msg="auth: product lookup failed"`},
		{"recovery", plain, "panics", 500, `msg="panic serving request"`},
	}
	for _, tt := range tests {
		logs.Reset()
		got := post(h, "/api/"+tt.slug, tt.key, "application/json", `{"inputs":{}}`)
		if got.Code != tt.status {
			t.Errorf("%s: status %d, want %d (%s)", tt.layer, got.Code, tt.status, got.Body)
		}
		if !strings.Contains(logs.String(), tt.line) {
			t.Errorf("%s: Config.Logger holds %q, want a line with %s", tt.layer, logs.String(), tt.line)
		}
	}

	// A layer's own Logger wins over the root's.
	cfg, _ := wholeConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cfg.Products = auth.ProductConfig{
		Catalog: failingCatalog{auth.NewMemoryCatalog()},
		Logger:  slog.New(slog.NewTextHandler(&productLogs, nil)),
	}
	cfg.Auth.Store = auth.NewMemoryStore(rec)
	logs.Reset()
	post(mustNew(t, cfg), "/api/broken", plain, "application/json", `{"inputs":{}}`)
	if !strings.Contains(productLogs.String(), "auth: product lookup failed") || strings.Contains(logs.String(), "product lookup failed") {
		t.Errorf("Products.Logger holds %q and Config.Logger %q; want the catalog error in Products.Logger only", productLogs.String(), logs.String())
	}
}

// TestNowPassedDown: Config.Now is the clock of the key expiry (auth) and of
// the buckets (ratelimit), neither of which has its own: a key that expires a
// minute after the test's t0 passes at t0 and is refused after it, and a spent
// minute bucket refills when the test clock moves, not the wall clock.
func TestNowPassedDown(t *testing.T) {
	clk := testclock.New(t0)
	plain, rec := auth.NewKey()
	rec.Products = []string{"*"}
	rec.PerMinute, rec.PerDay = 1, 100
	rec.ExpiresAt = t0.Add(2 * time.Minute) // long past on the wall clock
	cfg, _ := wholeConfig()
	cfg.Auth.Store = auth.NewMemoryStore(rec)
	cfg.Now = clk.Now
	h := mustNew(t, cfg)
	var got []int
	for _, step := range []time.Duration{0, 0, time.Minute, 2 * time.Minute} {
		clk.Advance(step)
		got = append(got, post(h, "/api/quote", plain, "application/json", `{"inputs":{}}`).Code)
	}
	if want := []int{200, 429, 200, 401}; !slices.Equal(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
}
