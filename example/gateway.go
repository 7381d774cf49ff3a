package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/example/internal/demo"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/upstream"
)

// gateway is the example's gatehouse stack and the state a reload replaces:
// the keys, the products and one upstream proxy per product.
type gateway struct {
	keys     *auth.MemoryStore
	products *auth.MemoryCatalog
	backends gatehouse.Upstreams
	health   *upstream.Health
	demoBase string
	logger   *slog.Logger
	handler  http.Handler

	mu      sync.Mutex // serialises Apply and Close
	proxies []*upstream.Proxy
	closers []func()
}

func newGateway(ctx context.Context, cfg *config, o *options, demoBase string, logger *slog.Logger) (*gateway, error) {
	g := &gateway{
		keys:     auth.NewMemoryStore(),
		products: auth.NewMemoryCatalog(),
		demoBase: demoBase,
		logger:   logger,
	}
	g.health = upstream.NewHealth(upstream.HealthConfig{Logger: logger})
	if err := g.Apply(cfg); err != nil {
		return nil, err
	}
	var store ratelimit.Store
	if o.redisURL != "" {
		s, closeStore, err := redisStore(ctx, o.redisURL, logger)
		if err != nil {
			return nil, err
		}
		store = s
		g.closers = append(g.closers, closeStore)
	}
	var keys auth.Store = g.keys
	if o.dbURL != "" {
		s, closeStore, err := dbKeys(ctx, o.dbURL, logger)
		if err != nil {
			return nil, err
		}
		keys = s
		g.closers = append(g.closers, closeStore)
	}
	throttle, err := cfg.throttle()
	if err != nil {
		return nil, err
	}
	g.handler = gatehouse.New(gatehouse.Config{
		Keys:              keys,
		Products:          g.products,
		FailedKeyThrottle: throttle,
		Limits:            cfg.limits(),
		RateLimitStore:    store,
		MaxBodyBytes:      cfg.MaxBodyBytes,
		Product:           &g.backends,
		Health:            g.health,
		Logger:            logger,
	})
	return g, nil
}

// Handler is the gateway's whole HTTP handler.
func (g *gateway) Handler() http.Handler { return g.handler }

// Apply makes cfg the gateway's configuration: keys, products and upstreams.
// It checks everything first, so a bad configuration changes nothing.
func (g *gateway) Apply(cfg *config) error {
	targets := make(map[string]upstream.Target, len(cfg.Products))
	local := make(map[string]http.Handler)
	for _, p := range cfg.Products {
		if name, ok := strings.CutPrefix(p.Upstream.URL, inProcessScheme); ok {
			h, ok := inProcessHandler(name)
			if !ok {
				return fmt.Errorf("product %q: no in-process handler %q", p.Slug, name)
			}
			local[p.Slug] = h
			continue
		}
		t, err := g.target(p)
		if err != nil {
			return fmt.Errorf("product %q: %w", p.Slug, err)
		}
		targets[p.Slug] = t
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	proxies := make([]*upstream.Proxy, 0, len(targets))
	handlers := make(map[string]http.Handler, len(targets)+len(local))
	for slug, t := range targets {
		p, err := upstream.NewProxy(t)
		if err != nil {
			for _, made := range proxies {
				made.Close()
			}
			return fmt.Errorf("product %q: %w", slug, err)
		}
		proxies = append(proxies, p)
		handlers[slug] = p
	}
	maps.Copy(handlers, local)
	g.keys.Replace(cfg.keys())
	g.products.Replace(cfg.products())
	g.backends.Set(handlers)
	g.health.Set(targets)
	old := g.proxies
	g.proxies = proxies
	for _, p := range old {
		// In-flight requests keep their connections; idle ones are closed.
		p.Close()
	}
	return nil
}

// inProcessScheme starts the URL of a product answered by a handler compiled
// into this server, called directly with no network hop: what a gatehouse
// user who wraps their own handler gets. The example has one,
// "inprocess:calculate", the demo product's calculation.
const inProcessScheme = "inprocess:"

func inProcessHandler(name string) (http.Handler, bool) {
	switch name {
	case "calculate":
		return http.HandlerFunc(demo.Calculate), true
	}
	return nil, false
}

func (g *gateway) target(p productConfig) (upstream.Target, error) {
	u := p.Upstream
	url, err := resolve(u.URL, g.demoBase)
	if err != nil {
		return upstream.Target{}, err
	}
	healthURL, err := resolve(u.HealthURL, g.demoBase)
	if err != nil {
		return upstream.Target{}, err
	}
	return upstream.Target{
		Name:                  p.Slug,
		URL:                   url,
		HealthURL:             healthURL,
		Header:                u.header(),
		DialTimeout:           time.Duration(u.DialTimeout),
		ResponseHeaderTimeout: time.Duration(u.ResponseHeaderTimeout),
		Timeout:               time.Duration(u.Timeout),
		RetryAfter:            time.Duration(u.RetryAfter),
		Logger:                g.logger,
	}, nil
}

// Close releases the upstream connections and the rate-limit store.
func (g *gateway) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range g.proxies {
		p.Close()
	}
	g.proxies = nil
	for _, c := range g.closers {
		c()
	}
	g.closers = nil
}
