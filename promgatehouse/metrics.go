// Package promgatehouse counts what a gatehouse gateway decides in Prometheus
// metrics. Each layer's events, given to the [Metrics] method that fits the
// layer's Observe field, become counters and histograms named by
// Prometheus's conventions (docs/observability.md has the table):
//
//	m, err := promgatehouse.New(reg, promgatehouse.Config{Known: known})
//	cfg.Auth.Observe = m.ObserveKey           // cfg is a gatehouse.Config
//	cfg.RateLimit.Observe = m.ObserveRateLimit
//	cfg.Observe = m.ObserveRequest
//	target.Observe = m.ObserveUpstream        // and a Transport's, a HealthConfig's
//
// Every label's values are bounded: product slugs the catalog knows (others
// are "unknown"), status codes and classes, and the fixed names of results,
// windows and states (labels.go); never a key or a key's id.
package promgatehouse

import (
	"errors"
	"strconv"
	"sync"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/upstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Product label values that are not a catalog's slug.
const (
	NoProduct      = "none"    // a request of another route than /api/{productSlug}
	UnknownProduct = "unknown" // a slug the catalog does not know
	OtherProduct   = "other"   // a known slug past MaxProducts
)

// Config configures [New]. Its zero value counts every product as "unknown".
type Config struct {
	// Known reports whether slug is a product of the catalog; only such slugs
	// become a product label's value, others are "unknown". The slug in a
	// request's path is the caller's to choose, so without Known (nil) every
	// product is "unknown".
	Known func(slug string) bool
	// MaxProducts bounds the distinct product label values (0: 100): a known
	// slug past the bound is counted as "other", so that a catalog that grows
	// at run time cannot grow the metrics without limit.
	MaxProducts int
	// Buckets are the upper bounds, in seconds, of the duration histograms
	// (nil: prometheus.DefBuckets, 5 ms to 10 s).
	Buckets []float64
}

// Metrics is the set of gatehouse's metrics in one registry. Its Observe
// methods feed them, one for each layer's Observe field. Metrics is safe for
// concurrent use.
type Metrics struct {
	cfg Config

	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	keyChecks       *prometheus.CounterVec
	keyLookups      *prometheus.CounterVec
	decisions       *prometheus.CounterVec
	storeErrors     *prometheus.CounterVec
	upstreamCalls   *prometheus.CounterVec
	upstreamTime    *prometheus.HistogramVec
	retries         *prometheus.CounterVec
	transitions     *prometheus.CounterVec
	probes          *prometheus.CounterVec

	keyResults  [len(keyResultLabels)]prometheus.Counter
	rlResults   map[ratelimit.Event]prometheus.Counter
	storeByEnd  [2]prometheus.Counter // open, closed
	productsMu  sync.Mutex
	products    sync.Map // slug → *product, at most MaxProducts of them
	nProducts   int
	unknown     *product
	other       *product
	none        *product
	codeStrings [600]string
}

// product holds the children of one product label value, so that the hot
// path does not hash label values.
type product struct {
	label    string
	duration prometheus.Observer
	codes    sync.Map // status int → prometheus.Counter
	upTime   prometheus.Observer
	classes  sync.Map // upstream status class → prometheus.Counter
}

// New registers gatehouse's metrics with reg and returns them. It fails if
// reg is nil or already has metrics of the same names.
func New(reg prometheus.Registerer, cfg Config) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("promgatehouse: New: Registerer is nil")
	}
	if cfg.MaxProducts <= 0 {
		cfg.MaxProducts = 100
	}
	if cfg.Buckets == nil {
		cfg.Buckets = prometheus.DefBuckets
	}
	m := &Metrics{cfg: cfg}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_requests_total", Help: "Requests answered, by product and status code.",
	}, []string{"product", "code"})
	m.requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gatehouse_request_duration_seconds", Help: "Time to answer a request, by product.", Buckets: cfg.Buckets,
	}, []string{"product"})
	m.keyChecks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_key_checks_total", Help: "Key checks, by result (valid, missing, invalid, throttled, store_unavailable, store_error, abandoned: the caller left).",
	}, []string{"result"})
	m.keyLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_key_lookups_total", Help: "Key cache lookups, by result (hit, miss, negative_hit).",
	}, []string{"result"})
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_ratelimit_decisions_total", Help: "Rate-limit decisions, by result (abandoned: the caller left before the store answered) and the window that refused (none if none did, other for one but the minute and the day).",
	}, []string{"result", "window"})
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_ratelimit_store_errors_total", Help: "Rate-limit store failures, by what became of the request (open: let through; closed: answered 503).",
	}, []string{"policy"})
	m.upstreamCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_upstream_requests_total", Help: "Upstream calls, by product and the answer's status class (error: no answer; open: the breaker refused; abandoned: the caller left).",
	}, []string{"product", "class"})
	m.upstreamTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gatehouse_upstream_duration_seconds", Help: "Time to an upstream's answer header, by product.", Buckets: cfg.Buckets,
	}, []string{"product"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_upstream_retries_total", Help: "Upstream attempts retried, by product and what the attempt got.",
	}, []string{"product", "class"})
	m.transitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_breaker_transitions_total", Help: "Circuit breaker changes, by product and the state entered.",
	}, []string{"product", "to"})
	m.probes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_health_probes_total", Help: "Upstream health probes, by product and result (ok, down).",
	}, []string{"product", "result"})
	for _, c := range []prometheus.Collector{m.requests, m.requestDuration, m.keyChecks, m.keyLookups, m.decisions,
		m.storeErrors, m.upstreamCalls, m.upstreamTime, m.retries, m.transitions, m.probes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for r, label := range keyResultLabels {
		if auth.Result(r).Cached() {
			m.keyResults[r] = m.keyLookups.WithLabelValues(label)
		} else {
			m.keyResults[r] = m.keyChecks.WithLabelValues(label)
		}
	}
	m.rlResults = map[ratelimit.Event]prometheus.Counter{}
	for _, e := range []ratelimit.Event{
		{Result: ratelimit.Passed}, {Result: ratelimit.Refused, Window: "minute"}, {Result: ratelimit.Refused, Window: "day"},
		{Result: ratelimit.Refused, Window: otherWindow},
		{Result: ratelimit.StoreFailedOpen}, {Result: ratelimit.StoreFailedClosed}, {Result: ratelimit.Abandoned},
	} {
		w := e.Window
		if w == "" {
			w = "none"
		}
		m.rlResults[e] = m.decisions.WithLabelValues(rateLimitResultLabels[e.Result], w)
	}
	m.storeByEnd = [2]prometheus.Counter{m.storeErrors.WithLabelValues("open"), m.storeErrors.WithLabelValues("closed")}
	for i := range m.codeStrings {
		m.codeStrings[i] = strconv.Itoa(i)
	}
	m.none = m.newProduct(NoProduct)
	m.unknown = m.newProduct(UnknownProduct)
	m.other = m.newProduct(OtherProduct)
	return m, nil
}

func (m *Metrics) newProduct(label string) *product {
	return &product{label: label, duration: m.requestDuration.WithLabelValues(label), upTime: m.upstreamTime.WithLabelValues(label)}
}

// product returns the label's children for slug: "none" for "", "unknown"
// for a slug Known does not know, "other" past MaxProducts.
func (m *Metrics) product(slug string) *product {
	if slug == "" {
		return m.none
	}
	if p, ok := m.products.Load(slug); ok {
		return p.(*product)
	}
	if m.cfg.Known == nil || !m.cfg.Known(slug) {
		return m.unknown
	}
	m.productsMu.Lock()
	defer m.productsMu.Unlock()
	if p, ok := m.products.Load(slug); ok {
		return p.(*product)
	}
	if m.nProducts >= m.cfg.MaxProducts {
		return m.other
	}
	p := m.newProduct(slug)
	m.products.Store(slug, p)
	m.nProducts++
	return p
}

// code is the label value of a status code.
func (m *Metrics) code(status int) string {
	if status >= 0 && status < len(m.codeStrings) {
		return m.codeStrings[status]
	}
	return "other"
}

// ObserveRequest counts a request the gateway answered, by product and
// status, and its duration: for gatehouse.Config.Observe, or
// gatehouse.ObserveRequests around a stack of your own.
func (m *Metrics) ObserveRequest(e gatehouse.RequestEvent) {
	p := m.product(e.Product)
	c, ok := p.codes.Load(e.Status)
	if !ok {
		c, _ = p.codes.LoadOrStore(e.Status, m.requests.WithLabelValues(p.label, m.code(e.Status)))
	}
	c.(prometheus.Counter).Inc()
	p.duration.Observe(e.Duration.Seconds())
}

// ObserveKey counts a key check (gatehouse_key_checks_total) or a key cache
// lookup (gatehouse_key_lookups_total), by result: for auth.Config.Observe and
// auth.CacheConfig.Observe.
func (m *Metrics) ObserveKey(e auth.Event) {
	if int(e.Result) < len(m.keyResults) {
		m.keyResults[e.Result].Inc()
	}
}

// otherWindow is the window label of a refusal by any window but the minute
// and the day (a further window of a key, or an owner's): their names come
// from each key's configuration, so they would not be a bounded label.
const otherWindow = "other"

// ObserveRateLimit counts a rate-limit decision, by result and the window
// that refused, and a store failure by its end: for ratelimit.Config.Observe.
func (m *Metrics) ObserveRateLimit(e ratelimit.Event) {
	c := m.rlResults[e]
	if c == nil && e.Result == ratelimit.Refused {
		c = m.rlResults[ratelimit.Event{Result: ratelimit.Refused, Window: otherWindow}]
	}
	if c != nil {
		c.Inc()
	}
	switch e.Result {
	case ratelimit.StoreFailedOpen:
		m.storeByEnd[0].Inc()
	case ratelimit.StoreFailedClosed:
		m.storeByEnd[1].Inc()
	}
}

// ObserveUpstream counts an upstream call and its time, a retried attempt, a
// breaker change or a health probe, by product: for upstream.Target.Observe,
// upstream.Transport.Observe and upstream.HealthConfig.Observe.
func (m *Metrics) ObserveUpstream(e upstream.Event) {
	p := m.product(e.Name)
	name := p.label
	switch e.Kind {
	case upstream.Call:
		c, ok := p.classes.Load(e.Class)
		if !ok {
			c, _ = p.classes.LoadOrStore(e.Class, m.upstreamCalls.WithLabelValues(name, e.Class))
		}
		c.(prometheus.Counter).Inc()
		if e.Class != "open" {
			p.upTime.Observe(e.Duration.Seconds())
		}
	case upstream.Retry:
		m.retries.WithLabelValues(name, e.Class).Inc()
	case upstream.Breaker:
		m.transitions.WithLabelValues(name, e.State).Inc()
	case upstream.Probe:
		result := "down"
		if e.OK {
			result = "ok"
		}
		m.probes.WithLabelValues(name, result).Inc()
	}
}
