package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
	"github.com/gatehouse-go/gatehouse/clientaddr"
	"github.com/gatehouse-go/gatehouse/inputs"
	"github.com/gatehouse-go/gatehouse/internal/demo"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/upstream"
)

// gateway is the example's gatehouse stack and the state a reload replaces:
// the keys, and a snapshot of the products with one handler per product.
type gateway struct {
	keys     *auth.MemoryStore
	db       *sqlstore.Store // the key database of -db, or nil
	health   *upstream.Health
	demoBase string
	logger   *slog.Logger
	handler  http.Handler
	// clients tells a caller's address, for the upstreams' X-Forwarded-For:
	// the configuration's client header, believed from its trusted proxies
	// only. Fixed at start, like the failed-key throttle that shares it.
	clients clientaddr.Source

	// current is the configuration in force: products and their handlers, swapped
	// as one by Apply. Each request reads it once, on arrival (see pin), so a
	// reload never gives a request one configuration's product and another's
	// handler.
	current  atomic.Pointer[snapshot]
	draining atomic.Bool // set by drain: /health answers 503
	// ping checks the rate-limit store; nil when it is this process's memory.
	ping func(context.Context) error
	// storeCheck keeps ping's last answer for pingEvery, so that anonymous
	// callers polling /health cannot turn their rate into the store's.
	storeCheck struct {
		sync.Mutex // held during a ping: concurrent callers share it
		at         time.Time
		err        error
	}
	pingEvery time.Duration

	admin *admin // nil without an admin listener
	// The Observe functions of the layers and of the gateway's requests: the
	// admin listener's metrics (see watch); nil without one.
	observeKey       func(auth.Event)
	observeRateLimit func(ratelimit.Event)
	observeUpstream  func(upstream.Event)
	observeRequest   func(gatehouse.RequestEvent)

	mu      sync.Mutex // serialises Apply and Close
	closers []func()
}

// snapshot is one configuration's products and their handlers, never changed
// once published.
type snapshot struct {
	products map[string]*auth.Product
	handlers gatehouse.Upstreams // by product slug
	proxies  map[string]*upstream.Proxy
	active   int                         // products a keyed call can reach
	owners   map[string][]ratelimit.Rate // the owners' allowances, by owner
}

// snapshotKey is the context key of the snapshot a request was pinned to.
type snapshotKey struct{}

// pin gives each request the snapshot in force when it arrived, for the
// catalog and the product handler to share.
func (g *gateway) pin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), snapshotKey{}, g.current.Load())))
	})
}

// snapshotFor returns the snapshot ctx was pinned to, or the current one.
func (g *gateway) snapshotFor(ctx context.Context) *snapshot {
	if s, ok := ctx.Value(snapshotKey{}).(*snapshot); ok {
		return s
	}
	return g.current.Load()
}

// catalog is the gateway's auth.Catalog: the products of a request's snapshot.
type catalog struct{ g *gateway }

// Product implements auth.Catalog.
func (c catalog) Product(ctx context.Context, slug string) (*auth.Product, error) {
	if p := c.g.snapshotFor(ctx).products[slug]; p != nil {
		return p, nil
	}
	return nil, auth.ErrProductNotFound
}

// owners is gatehouse.Config.Owners: the allowance of owner in the key
// database with -db, else in the request's snapshot of the configuration.
// While the database fails past its stale window, an owner has no allowance:
// its keys keep their own limits.
func (g *gateway) owners(ctx context.Context, owner string) []ratelimit.Rate {
	if g.db == nil {
		return g.snapshotFor(ctx).owners[owner]
	}
	return g.db.OwnerRates(ctx, owner)
}

// serveProduct sends a request that passed every check to its product's
// handler in the same snapshot as the product the checks found.
func (g *gateway) serveProduct(w http.ResponseWriter, r *http.Request) {
	s := g.snapshotFor(r.Context())
	s.handlers.ServeHTTP(w, r)
}

// errNoProducts, errDraining and errStoreDown are why /health answers 503.
// errStoreDown stands for the store's own error, whose text names the store's
// address: a /health line in the log says what failed, never where it lives.
var (
	errNoProducts = errors.New("no active product is configured")
	errDraining   = errors.New("shutting down")
	errStoreDown  = errors.New("the fail-closed rate-limit store does not answer")
)

// ready is Health's Ready: the gateway can serve unless it is shutting down,
// has no active product, or its rate-limit store (which fails closed) does not
// answer.
func (g *gateway) ready(ctx context.Context) error {
	if g.draining.Load() {
		return errDraining
	}
	if s := g.current.Load(); s == nil || s.active == 0 {
		return errNoProducts
	}
	if g.ping != nil {
		if err := g.pingStore(ctx); err != nil {
			return errStoreDown
		}
	}
	return nil
}

// pingStore pings the rate-limit store at most once per pingEvery. A ping
// that failed because its caller gave up (a /health request whose client went
// away) says nothing of the store and is not kept: the next caller pings again.
func (g *gateway) pingStore(ctx context.Context) error {
	c := &g.storeCheck
	c.Lock()
	defer c.Unlock()
	if now := time.Now(); c.at.IsZero() || now.Sub(c.at) >= g.pingEvery {
		err := g.ping(ctx)
		if err != nil && errors.Is(ctx.Err(), context.Canceled) {
			return err
		}
		c.err, c.at = err, time.Now()
	}
	return c.err
}

// breakerOpen is Health's Open: whether the named product's proxy refuses calls.
func (g *gateway) breakerOpen(name string) bool {
	s := g.current.Load()
	if s == nil {
		return false
	}
	p := s.proxies[name]
	return p != nil && p.Open()
}

// drain makes /health answer 503 from now on, so that a load balancer stops
// sending requests while the server shuts down.
func (g *gateway) drain() { g.draining.Store(true) }

func newGateway(ctx context.Context, cfg *config, o *options, demoBase string, logger *slog.Logger) (*gateway, error) {
	clients, err := cfg.clientAddr()
	if err != nil {
		return nil, err
	}
	g := &gateway{
		keys:      auth.NewMemoryStore(),
		demoBase:  demoBase,
		logger:    logger,
		clients:   clients,
		pingEvery: time.Second,
	}
	if err := g.watch(o); err != nil {
		return nil, err
	}
	g.health = upstream.NewHealth(upstream.HealthConfig{Logger: logger, Ready: g.ready, Open: g.breakerOpen, Observe: g.observeUpstream})
	if err := g.Apply(cfg); err != nil {
		return nil, err
	}
	var (
		store        ratelimit.Store
		onStoreError func(http.ResponseWriter, *http.Request, error) bool // nil: fail closed
	)
	if o.redisURL != "" {
		store, onStoreError, err = g.redisLimits(ctx, o, logger)
		if err != nil {
			g.Close()
			return nil, err
		}
	}
	var keys auth.Store = g.keys
	var recorder gatehouse.UsageRecorder // nil: usage is not recorded
	if o.dbURL != "" {
		kdb, err := dbKeys(ctx, o.dbURL, o.usageFlush, logger)
		if err != nil {
			g.Close()
			return nil, err
		}
		keys, g.db = kdb.store, kdb.store
		if kdb.usage != nil {
			recorder = kdb.usage
			if err := g.admin.countUsage(kdb.usage); err != nil {
				kdb.close(logger)
				g.Close()
				return nil, err
			}
		}
		g.admin.listFrom(kdb, o.usageFlush)
		g.closers = append(g.closers, func() { kdb.close(logger) })
	}
	store = g.limitStore(store, cfg.limits())
	throttle, err := cfg.throttle()
	if err != nil {
		g.Close()
		return nil, err
	}
	var product http.Handler = http.HandlerFunc(g.serveProduct)
	if g.db != nil {
		product = g.db.CountUse(product) // the requests let through, for keys list
	}
	h, err := gatehouse.New(gatehouse.Config{
		Auth:      auth.Config{Store: keys, Throttle: throttle, Observe: g.observeKey},
		RateLimit: ratelimit.Config{Limits: cfg.limits(), Store: store, OnStoreError: onStoreError, Observe: g.observeRateLimit}, // Key: the authenticated key's allowance
		Owners:    g.owners,
		Products:  auth.ProductConfig{Catalog: catalog{g}},
		Inputs:    inputs.Config{MaxBytes: cfg.MaxBodyBytes},
		Product:   product,
		Health:    g.health,
		Logger:    logger,
		Observe:   g.observeRequest,
		Usage:     recorder,
	})
	if err != nil {
		g.Close()
		return nil, err
	}
	g.handler = g.pin(h)
	return g, nil
}

// Handler is the gateway's whole HTTP handler.
func (g *gateway) Handler() http.Handler { return g.handler }

// Apply makes cfg the gateway's configuration: keys, products and upstreams.
// It checks everything first, so a bad configuration changes nothing. The
// products and their handlers change as one; /health probes the upstreams of
// active products only, so that it never names one a keyed call would answer
// 404 for.
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
	next := &snapshot{
		products: make(map[string]*auth.Product, len(cfg.Products)),
		proxies:  make(map[string]*upstream.Proxy, len(targets)),
		owners:   cfg.owners(),
	}
	handlers := make(map[string]http.Handler, len(targets)+len(local))
	for slug, t := range targets {
		p, err := upstream.NewProxy(t)
		if err != nil {
			for _, made := range next.proxies {
				made.Close()
			}
			return fmt.Errorf("product %q: %w", slug, err)
		}
		next.proxies[slug] = p
		handlers[slug] = p
	}
	maps.Copy(handlers, local)
	next.handlers.Set(handlers)
	probed := make(map[string]upstream.Target, len(targets))
	for _, p := range cfg.products() {
		next.products[p.Slug] = &p
		if p.Active {
			next.active++
			if t, ok := targets[p.Slug]; ok {
				probed[p.Slug] = t
			}
		}
	}
	keys := cfg.keys()
	g.keys.Replace(keys)
	g.admin.showKeys(keys)
	old := g.current.Swap(next)
	g.health.Set(probed)
	if old != nil {
		for _, p := range old.proxies {
			// In-flight requests keep their connections; idle ones are closed.
			p.Close()
		}
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
		ClientAddr:            g.clients.Of,
		Logger:                g.logger,
		Observe:               g.observeUpstream,
	}, nil
}

// Close releases the upstream connections and the rate-limit store.
func (g *gateway) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s := g.current.Load(); s != nil {
		for _, p := range s.proxies {
			p.Close()
		}
	}
	for _, c := range g.closers {
		c()
	}
	g.closers = nil
}
