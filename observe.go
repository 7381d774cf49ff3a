package gatehouse

import (
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/nilhandler"
)

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

// ObserveRequests returns a middleware that tells observe each request it
// answers, for a stack built with [Middleware] in a router of your own ([New]
// tells Config.Observe itself): outside the checks, as New's own is. A nil
// observe reports nothing: the middleware returns the handler it wraps.
func ObserveRequests(observe func(RequestEvent)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		nilhandler.Refuse("gatehouse: ObserveRequests", next)
		if observe == nil {
			return next
		}
		return logRequests(nil, observe, next)
	}
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
