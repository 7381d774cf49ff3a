package gatehouse

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/internal/nilhandler"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/upstream"
)

// Observer is the one hook through which every layer of a gateway reports
// what it decides: one function per layer, each matching the Observe field of
// that layer's configuration. A nil function reports nothing and costs a nil
// check; the zero Observer reports nothing at all. The functions are called on
// the request's goroutine and must be quick and safe for concurrent use. No
// event carries a key, a key's id or an upstream's address.
//
// promgatehouse.Metrics.Observer gives one that counts everything in
// Prometheus; [Observer.Hook] wires one into the layers' configurations.
type Observer struct {
	// Request is told each request the gateway answered (see [Observer.Requests]).
	Request func(RequestEvent)
	// Key is told each key check (auth.Config.Observe) and each lookup of an
	// auth.Cache (auth.CacheConfig.Observe); auth.Result.Cached tells which.
	Key func(auth.Event)
	// RateLimit is told each rate-limit decision (ratelimit.Config.Observe).
	RateLimit func(ratelimit.Event)
	// Upstream is told each upstream call, retry, breaker change and health
	// probe (upstream.Target, Transport and HealthConfig's Observe).
	Upstream func(upstream.Event)
}

// RequestEvent is one request the gateway answered.
type RequestEvent struct {
	// Product is the {productSlug} of a POST /api/{productSlug} route as the
	// caller wrote it, "" for any other route. It is not checked against the
	// catalog: bound it before using it as a label.
	Product string
	// Status is the answer's status; 0 if the handler aborted (a broken
	// stream) before any.
	Status int
	// Duration is the time from the request's arrival at the middleware to
	// the end of its answer.
	Duration time.Duration
}

// Hook sets, in each of configs, the Observe field of its layer to o's
// function: configs are pointers to auth.Config, auth.CacheConfig,
// ratelimit.Config, upstream.Target, upstream.Transport or
// upstream.HealthConfig. A field already set is replaced. Any other type is a
// programmer's error: Hook returns an error naming it and sets nothing.
func (o Observer) Hook(configs ...any) error {
	for _, c := range configs {
		switch c.(type) {
		case *auth.Config, *auth.CacheConfig, *ratelimit.Config, *upstream.Target, *upstream.Transport, *upstream.HealthConfig:
		default:
			return fmt.Errorf("gatehouse: Observer.Hook: %T has no Observe field", c)
		}
	}
	for _, c := range configs {
		switch c := c.(type) {
		case *auth.Config:
			c.Observe = o.Key
		case *auth.CacheConfig:
			c.Observe = o.Key
		case *ratelimit.Config:
			c.Observe = o.RateLimit
		case *upstream.Target:
			c.Observe = o.Upstream
		case *upstream.Transport:
			c.Observe = o.Upstream
		case *upstream.HealthConfig:
			c.Observe = o.Upstream
		}
	}
	return nil
}

// Requests returns next reporting each request to o.Request, as a
// middleware around the whole gateway, for a stack built with [Middleware]
// in a router of your own ([New] reports them itself, from
// Config.Observer). With o.Request nil it returns next itself.
func (o Observer) Requests(next http.Handler) http.Handler {
	nilhandler.Refuse("gatehouse: Observer.Requests", next)
	if o.Request == nil {
		return next
	}
	return logRequests(nil, o.Request, next)
}

// routeProduct is the {productSlug} of a POST /api/{productSlug} request, or
// "": the same route [New] serves, read from the path because the middleware
// is outside the router.
func routeProduct(r *http.Request) string {
	if r.Method != http.MethodPost {
		return ""
	}
	slug, ok := strings.CutPrefix(r.URL.Path, "/api/")
	if !ok || slug == "" || strings.Contains(slug, "/") {
		return ""
	}
	return slug
}

// TraceID returns the trace id of a W3C Trace Context traceparent header
// value (32 lowercase hex digits), and whether the value is a valid
// traceparent: version 00 exactly as the recommendation lays it out, or a
// later version (not ff) that begins the same way, whose further parts, after
// a "-", hold no control character other than HTAB (an HTTP field value holds
// none).
// An all-zero trace or parent id is invalid. The request log line carries it
// as trace_id.
func TraceID(traceparent string) (string, bool) {
	// version "-" trace-id "-" parent-id "-" flags: 2+1+32+1+16+1+2 = 55.
	const n = 55
	v := traceparent
	if len(v) < n || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return "", false
	}
	version, trace, parent, flags := v[:2], v[3:35], v[36:52], v[53:55]
	if !lowerHex(version) || version == "ff" || !lowerHex(trace) || !lowerHex(parent) || !lowerHex(flags) {
		return "", false
	}
	if allZero(trace) || allZero(parent) {
		return "", false
	}
	if version == "00" && len(v) != n || version != "00" && len(v) > n && (v[n] != '-' || !fieldText(v[n+1:])) {
		return "", false
	}
	return trace, true
}

// fieldText reports whether s holds no control character other than HTAB:
// an HTTP field value holds none.
func fieldText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	return strings.Trim(s, "0") == ""
}
