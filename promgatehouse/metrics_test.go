package promgatehouse

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/upstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// stack is a gateway of the layers' own middlewares, each layer's Observe
// one of m's methods, in front of a real upstream: the key check, the rate limit (2 a minute) and
// an upstream.Proxy named "quote".
func stack(t *testing.T, m *Metrics, upstreamStatus int) (http.Handler, string) {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(upstreamStatus) }))
	t.Cleanup(up.Close)
	plain, k := auth.NewKey()
	quiet := slog.New(slog.DiscardHandler)
	ac := auth.Config{Store: auth.NewCache(auth.NewMemoryStore(k), auth.CacheConfig{Observe: m.ObserveKey}), Logger: quiet, Observe: m.ObserveKey}
	rc := ratelimit.Config{Key: ratelimit.ByClientIP, Limits: ratelimit.Limits{PerMinute: 2, PerDay: 100}, Logger: quiet, Observe: m.ObserveRateLimit}
	tg := upstream.Target{Name: "quote", URL: up.URL, Logger: quiet, Breaker: upstream.BreakerConfig{Failures: 1}, Observe: m.ObserveUpstream}
	p, err := upstream.NewProxy(tg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	mux := http.NewServeMux()
	mux.Handle("POST /api/{productSlug}", auth.Middleware(ac)(ratelimit.Middleware(rc)(p)))
	return gatehouse.ObserveRequests(m.ObserveRequest)(mux), plain
}

func post(h http.Handler, path, key string) int {
	r := httptest.NewRequest("POST", path, strings.NewReader("{}"))
	if key != "" {
		r.Header.Set("X-API-Key", key)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

// TestMetricsCountWhatTheLayersDecide: requests through a real stack show up
// under the documented names and labels, with bounded product labels.
func TestMetricsCountWhatTheLayersDecide(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := New(reg, Config{Known: func(slug string) bool { return slug == "quote" }})
	if err != nil {
		t.Fatal(err)
	}
	h, key := stack(t, m, 200)
	codes := []int{
		post(h, "/api/quote", key), post(h, "/api/quote", key), post(h, "/api/quote", key), // 200, 200, 429
		post(h, "/api/quote", ""),                 // 401
		post(h, "/api/made-up-"+key[:8], "ila_x"), // 401, and its slug is the caller's: "unknown"
	}
	if want := []int{200, 200, 429, 401, 401}; !slices.Equal(codes, want) {
		t.Fatalf("codes %v, want %v", codes, want)
	}
	expect := `
# HELP gatehouse_requests_total Requests answered, by product and status code.
# TYPE gatehouse_requests_total counter
gatehouse_requests_total{code="200",product="quote"} 2
gatehouse_requests_total{code="401",product="quote"} 1
gatehouse_requests_total{code="401",product="unknown"} 1
gatehouse_requests_total{code="429",product="quote"} 1
# HELP gatehouse_key_checks_total Key checks, by result (valid, missing, invalid, throttled, store_unavailable, store_error, abandoned: the caller left).
# TYPE gatehouse_key_checks_total counter
gatehouse_key_checks_total{result="abandoned"} 0
gatehouse_key_checks_total{result="invalid"} 1
gatehouse_key_checks_total{result="missing"} 1
gatehouse_key_checks_total{result="store_error"} 0
gatehouse_key_checks_total{result="store_unavailable"} 0
gatehouse_key_checks_total{result="throttled"} 0
gatehouse_key_checks_total{result="valid"} 3
# HELP gatehouse_key_lookups_total Key cache lookups, by result (hit, miss, negative_hit).
# TYPE gatehouse_key_lookups_total counter
gatehouse_key_lookups_total{result="hit"} 2
gatehouse_key_lookups_total{result="miss"} 1
gatehouse_key_lookups_total{result="negative_hit"} 0
# HELP gatehouse_ratelimit_decisions_total Rate-limit decisions, by result (abandoned: the caller left before the store answered) and the window that refused (none if none did, other for one but the minute and the day).
# TYPE gatehouse_ratelimit_decisions_total counter
gatehouse_ratelimit_decisions_total{result="abandoned",window="none"} 0
gatehouse_ratelimit_decisions_total{result="passed",window="none"} 2
gatehouse_ratelimit_decisions_total{result="refused",window="day"} 0
gatehouse_ratelimit_decisions_total{result="refused",window="minute"} 1
gatehouse_ratelimit_decisions_total{result="refused",window="other"} 0
gatehouse_ratelimit_decisions_total{result="store_error_closed",window="none"} 0
gatehouse_ratelimit_decisions_total{result="store_error_open",window="none"} 0
# HELP gatehouse_upstream_requests_total Upstream calls, by product and the answer's status class (error: no answer; open: the breaker refused; abandoned: the caller left).
# TYPE gatehouse_upstream_requests_total counter
gatehouse_upstream_requests_total{class="2xx",product="quote"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expect),
		"gatehouse_requests_total", "gatehouse_key_checks_total", "gatehouse_key_lookups_total",
		"gatehouse_ratelimit_decisions_total", "gatehouse_upstream_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.requestDuration); n != 4 { // quote, and none, unknown and other made up front
		t.Errorf("%d request duration series, want 4", n)
	}
	if n := testutil.CollectAndCount(m.upstreamTime); n != 4 { // quote, and none, unknown and other made up front
		t.Errorf("%d upstream duration series, want 4", n)
	}
	// No label value anywhere is the key or a part of it.
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if strings.Contains(l.GetValue(), key[4:12]) {
					t.Errorf("%s has a label %s=%q from the key", mf.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
}

// TestMetricsUpstreamFailures: a failing upstream counts 5xx, opens the
// breaker (a transition) and the next call counts "open".
func TestMetricsUpstreamFailures(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, _ := New(reg, Config{Known: func(slug string) bool { return slug == "quote" }})
	h, key := stack(t, m, 503)
	post(h, "/api/quote", key)
	post(h, "/api/quote", key)
	expect := `
# HELP gatehouse_breaker_transitions_total Circuit breaker changes, by product and the state entered.
# TYPE gatehouse_breaker_transitions_total counter
gatehouse_breaker_transitions_total{product="quote",to="open"} 1
# HELP gatehouse_upstream_requests_total Upstream calls, by product and the answer's status class (error: no answer; open: the breaker refused; abandoned: the caller left).
# TYPE gatehouse_upstream_requests_total counter
gatehouse_upstream_requests_total{class="5xx",product="quote"} 1
gatehouse_upstream_requests_total{class="open",product="quote"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expect),
		"gatehouse_breaker_transitions_total", "gatehouse_upstream_requests_total"); err != nil {
		t.Error(err)
	}
	m.ObserveUpstream(upstream.Event{Kind: upstream.Probe, Name: "quote", OK: true})
	m.ObserveUpstream(upstream.Event{Kind: upstream.Retry, Name: "elsewhere", Class: "5xx"})
	m.ObserveRateLimit(ratelimit.Event{Result: ratelimit.StoreFailedOpen})
	expect = `
# HELP gatehouse_health_probes_total Upstream health probes, by product and result (ok, down).
# TYPE gatehouse_health_probes_total counter
gatehouse_health_probes_total{product="quote",result="ok"} 1
# HELP gatehouse_upstream_retries_total Upstream attempts retried, by product and what the attempt got.
# TYPE gatehouse_upstream_retries_total counter
gatehouse_upstream_retries_total{class="5xx",product="unknown"} 1
# HELP gatehouse_ratelimit_store_errors_total Rate-limit store failures, by what became of the request (open: let through; closed: answered 503).
# TYPE gatehouse_ratelimit_store_errors_total counter
gatehouse_ratelimit_store_errors_total{policy="closed"} 0
gatehouse_ratelimit_store_errors_total{policy="open"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expect),
		"gatehouse_health_probes_total", "gatehouse_upstream_retries_total", "gatehouse_ratelimit_store_errors_total"); err != nil {
		t.Error(err)
	}
}

// TestMetricsProductsBounded: slugs the catalog does not know are "unknown",
// and known ones past MaxProducts are "other".
func TestMetricsProductsBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, _ := New(reg, Config{Known: func(slug string) bool { return strings.HasPrefix(slug, "p") }, MaxProducts: 2})
	for _, slug := range []string{"p1", "p2", "p3", "p4", "x", "y", "", "p1"} {
		m.ObserveRequest(gatehouse.RequestEvent{Product: slug, Status: 200})
	}
	expect := `
# HELP gatehouse_requests_total Requests answered, by product and status code.
# TYPE gatehouse_requests_total counter
gatehouse_requests_total{code="200",product="none"} 1
gatehouse_requests_total{code="200",product="other"} 2
gatehouse_requests_total{code="200",product="p1"} 2
gatehouse_requests_total{code="200",product="p2"} 1
gatehouse_requests_total{code="200",product="unknown"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expect), "gatehouse_requests_total"); err != nil {
		t.Error(err)
	}
	if _, err := New(reg, Config{}); err == nil {
		t.Error("registering twice did not fail")
	}
}

// TestRefusalByAFurtherWindow: a refusal by a window but the minute and the
// day (a key's hour, an owner's day) is counted under window="other", one
// bounded label whatever the keys' windows.
func TestRefusalByAFurtherWindow(t *testing.T) {
	m, err := New(prometheus.NewPedanticRegistry(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"hour", "owner-day", "30d"} {
		m.ObserveRateLimit(ratelimit.Event{Result: ratelimit.Refused, Window: w})
	}
	if n := testutil.ToFloat64(m.decisions.WithLabelValues("refused", "other")); n != 3 {
		t.Errorf("refused by other windows: %v, want 3", n)
	}
}
