package upstream

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse-go/gatehouse/errorsjson"
)

// HealthConfig configures [Health]. The zero value probes each upstream at
// most every 10 seconds with a 2-second timeout, is always ready, knows no
// breaker, and names only the upstreams that are not ok.
type HealthConfig struct {
	// Interval is the least time between two probes of one upstream (0: 10 s);
	// answers in between come from the last probe, so that health checks,
	// however frequent, cannot hammer an upstream.
	Interval time.Duration
	// Timeout bounds one probe, and one call of Ready (0: 2 s).
	Timeout time.Duration
	// Transport makes the probes (nil: a transport of Health's own).
	Transport http.RoundTripper
	// Logger receives probe failures and why the gateway is not ready
	// (nil: slog.Default()).
	Logger *slog.Logger
	// Now is the clock of Interval (nil: time.Now).
	Now func() time.Time

	// Ready reports whether the gateway can serve at all: a non-nil error
	// (shutting down, no configuration, a rate-limit store that fails closed
	// and does not answer) makes /health answer 503. It is called on every
	// /health request with a context bounded by Timeout; its error is logged,
	// never shown. Nil: always ready.
	Ready func(ctx context.Context) error
	// Open reports whether the named upstream's circuit breaker is open
	// (typically its [Proxy.Open]); an open breaker makes the upstream
	// "breaker_open" whatever its last probe said. Nil: no breaker is known.
	Open func(name string) bool
	// Detail lists every upstream with its state, healthy ones included. Off,
	// the default, only the upstreams that are not ok are named: the contract
	// asks for those, and an anonymous caller learns no more than that.
	Detail bool
	// Observe, if set, is told each probe's result (an [Event] of kind
	// Probe); it must be quick and safe for concurrent use. Nil reports
	// nothing.
	Observe func(Event)
}

// States of an upstream in a /health answer.
const (
	HealthOK          = "ok"           // its last probe succeeded and its breaker is closed
	HealthDown        = "down"         // its last probe failed
	HealthBreakerOpen = "breaker_open" // its breaker refuses calls, whatever the probe says
)

// Overall statuses of a /health answer.
const (
	StatusOK       = "ok"       // every upstream is ok
	StatusDegraded = "degraded" // some upstream is not ok; the gateway still serves
)

// Health is the handler of GET /health, for a load balancer and anyone without
// a key. It says whether the gateway can serve:
//
//	200 {"status":"ok"}
//	200 {"status":"degraded","upstreams":{"pdf":"down","quote":"breaker_open"}}
//	503 {"error":"Upstream service temporarily unavailable","request_id":"..."}   with Retry-After: 1
//
// An upstream that is down never makes Health answer 503: the gateway still
// serves its other products and answers calls to the broken one with the
// contract's own 503, and a load balancer that pulled every replica for one
// upstream would take the healthy products down with it. Only Ready's error,
// the gateway unable to serve anything, gives 503, in the errorsjson shape
// with the request's id; the reason is logged, never shown.
//
// Upstreams are named by the names given to Set (product slugs), never by
// address. Give Set only the upstreams of products a keyed call can reach, so
// that /health never names a product a keyed call would answer 404 for.
// Without Detail only the upstreams that are not ok are named; with it every
// one is, under "upstreams".
//
// An upstream is ok when its probe (a GET of its HealthURL, or URL, with its
// credentials) answers a status below 500 other than 401 and 403 (a refused
// credential is a broken configuration, so it counts as down) and Open does
// not report its breaker open. Each upstream is probed at most once per
// Interval: concurrent requests share one probe, and the others are answered
// from its result. The upstreams can be replaced at run time with Set. Health
// is safe for concurrent use.
type Health struct {
	interval  time.Duration
	timeout   time.Duration
	transport http.RoundTripper
	logger    *slog.Logger
	now       func() time.Time
	ready     func(context.Context) error
	open      func(string) bool
	detail    bool
	observe   func(Event)

	mu     sync.Mutex
	probes map[string]*probe
}

// probe is the cached state of one upstream.
type probe struct {
	target Target

	mu      sync.Mutex // held during a probe, so that concurrent callers share it
	checked time.Time
	ok      bool
}

// NewHealth returns a Health with no upstreams; call Set to give it some.
func NewHealth(cfg HealthConfig) *Health {
	h := &Health{interval: cfg.Interval, timeout: cfg.Timeout, transport: cfg.Transport, logger: cfg.Logger, now: cfg.Now,
		ready: cfg.Ready, open: cfg.Open, detail: cfg.Detail, observe: cfg.Observe}
	if h.interval <= 0 {
		h.interval = 10 * time.Second
	}
	if h.timeout <= 0 {
		h.timeout = 2 * time.Second
	}
	if h.transport == nil {
		h.transport = &http.Transport{
			ResponseHeaderTimeout: h.timeout,
			MaxIdleConnsPerHost:   1,
			IdleConnTimeout:       2 * h.interval,
		}
	}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h
}

// Set replaces the upstreams to probe, by name. An upstream whose target is
// unchanged keeps its last probe.
func (h *Health) Set(targets map[string]Target) {
	h.mu.Lock()
	defer h.mu.Unlock()
	next := make(map[string]*probe, len(targets))
	for name, t := range targets {
		if old, ok := h.probes[name]; ok && sameTarget(old.target, t) {
			next[name] = old
			continue
		}
		next[name] = &probe{target: t}
	}
	h.probes = next
}

func sameTarget(a, b Target) bool {
	return a.URL == b.URL && a.HealthURL == b.HealthURL && maps.EqualFunc(a.Header, b.Header, slices.Equal)
}

// healthBody is the JSON of a 200 /health answer.
type healthBody struct {
	Status    string            `json:"status"`
	Upstreams map[string]string `json:"upstreams,omitempty"`
}

// ServeHTTP asks Ready, probes the upstreams whose last probe is older than
// Interval, in parallel, and answers with their state.
func (h *Health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
		err := h.ready(ctx)
		cancel()
		if err != nil {
			h.logger.LogAttrs(r.Context(), slog.LevelWarn, "health: not ready", slog.String("error", err.Error()),
				slog.String("request_id", errorsjson.RequestIDFrom(r.Context())))
			w.Header().Set("Cache-Control", "no-store")
			errorsjson.SetRetryAfter(w.Header(), time.Second)
			errorsjson.Write(w, r, http.StatusServiceUnavailable, errorsjson.MsgUpstreamUnavailable)
			return
		}
	}

	h.mu.Lock()
	probes := make(map[string]*probe, len(h.probes))
	for name, p := range h.probes {
		probes[name] = p
	}
	h.mu.Unlock()

	names := make([]string, 0, len(probes))
	for name := range probes {
		names = append(names, name)
	}
	sort.Strings(names)
	// Fresh results are read in place; only stale upstreams are probed, at
	// once when there are several, so that /health takes one probe's time.
	results := make([]bool, len(names))
	var stale []int
	for i, name := range names {
		if ok, fresh := h.cached(probes[name]); fresh {
			results[i] = ok
		} else {
			stale = append(stale, i)
		}
	}
	if len(stale) == 1 {
		i := stale[0]
		results[i] = h.check(r.Context(), names[i], probes[names[i]])
	} else {
		var wg sync.WaitGroup
		for _, i := range stale {
			wg.Go(func() { results[i] = h.check(r.Context(), names[i], probes[names[i]]) })
		}
		wg.Wait()
	}

	body := healthBody{Status: StatusOK, Upstreams: make(map[string]string, len(names))}
	for i, name := range names {
		state := HealthOK
		switch {
		case !results[i]:
			state = HealthDown
		case h.open != nil && h.open(name):
			state = HealthBreakerOpen
		}
		if state != HealthOK {
			body.Status = StatusDegraded
		}
		if state != HealthOK || h.detail {
			body.Upstreams[name] = state
		}
	}
	b, _ := json.Marshal(body)
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// cached returns p's state if its last probe is fresh and no probe is under
// way; fresh=false sends the caller to check.
func (h *Health) cached(p *probe) (ok, fresh bool) {
	if !p.mu.TryLock() {
		return false, false
	}
	defer p.mu.Unlock()
	if !p.checked.IsZero() && h.now().Sub(p.checked) < h.interval {
		return p.ok, true
	}
	return false, false
}

// check returns p's state, probing it first if its last probe is stale.
func (h *Health) check(ctx context.Context, name string, p *probe) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := h.now()
	if !p.checked.IsZero() && now.Sub(p.checked) < h.interval {
		return p.ok
	}
	// The probe is not the caller's: it must finish and be cached even if this
	// caller goes away, so it runs on its own bounded context.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.timeout)
	defer cancel()
	p.ok = h.probe(pctx, name, p.target)
	p.checked = h.now()
	if h.observe != nil {
		h.observe(Event{Kind: Probe, Name: name, OK: p.ok, Duration: p.checked.Sub(now)})
	}
	return p.ok
}

func (h *Health) probe(ctx context.Context, name string, t Target) bool {
	url := t.HealthURL
	if url == "" {
		url = t.URL
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		h.logger.LogAttrs(ctx, slog.LevelWarn, "health probe: bad URL", slog.String("upstream", name))
		return false
	}
	for k, vs := range t.Header {
		req.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	resp, err := h.transport.RoundTrip(req)
	if err != nil {
		// The transport's error names the upstream's address: log its kind.
		h.logger.LogAttrs(ctx, slog.LevelWarn, "health probe failed", slog.String("upstream", name), slog.String("reason", reason(err)))
		return false
	}
	drain(resp.Body)
	resp.Body.Close()
	ok := resp.StatusCode < 500 && resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden
	if !ok {
		h.logger.LogAttrs(ctx, slog.LevelWarn, "health probe: upstream unhealthy", slog.String("upstream", name), slog.Int("upstream_status", resp.StatusCode))
	}
	return ok
}
