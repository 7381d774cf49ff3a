package upstream

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// The forwarding policy: what crosses the gateway, in each direction. It is an
// allow-list both ways, because the gateway is a trust boundary: a header or a
// parameter nobody decided to pass is dropped. docs/forwarding.md has the
// policy as one table; keep the two in step.

// passRequest are the caller's headers that reach the upstream as sent: the
// body's type (which the gateway checked), content negotiation, and the trace
// context. Every other header of the caller is dropped: its key
// (Authorization, X-API-Key), its cookies, what it claims about its address
// (X-Forwarded-For, X-Real-IP, Forwarded), its X-Request-ID, hop-by-hop
// headers, Accept-Encoding (the transport negotiates its own hop) and anything
// else.
var passRequest = []string{"Content-Type", "Accept", "Accept-Language", "Traceparent", "Tracestate"}

// passResponse are the upstream's headers that reach the caller with a
// success (2xx): those that describe the body and how it may be cached. Every
// other header is dropped: Set-Cookie, Server, X-Powered-By, Location, the
// upstream's rate-limit headers and request id, hop-by-hop headers. The
// gateway sets Content-Length itself from what the transport will deliver.
var passResponse = []string{
	"Content-Type", "Content-Disposition", "Content-Encoding", "Content-Language",
	"Cache-Control", "Etag", "Expires", "Last-Modified", "Vary",
}

// keepRequest are the caller's headers that the gateway checked (the body's
// type) or vouches for (the trace context), which a caller must not strip by
// naming them in its Connection header ("Connection: Content-Type"). The
// headers the gateway sets (X-Forwarded-For, X-Request-ID, the target's
// credentials) are set after the caller's are copied, so nothing removes them.
var keepRequest = []string{"Content-Type", "Traceparent", "Tracestate"}

// copyEndToEnd sets in dst each header of src named in pass (canonical names),
// except one that src's Connection header names and keep does not: naming a
// header in Connection makes it hop-by-hop (RFC 9110, 7.6.1), meant for the
// gateway alone. The fixed hop-by-hop headers (Connection, Keep-Alive,
// Transfer-Encoding, Upgrade…) are never in a pass list, so never copied.
//
// It is the one place of the Connection-token rule; both directions call it.
func copyEndToEnd(dst, src http.Header, pass, keep []string) {
	conn := src["Connection"]
	for _, name := range pass {
		vs, ok := src[name]
		if !ok || len(conn) > 0 && namedIn(conn, name) && !slices.Contains(keep, name) {
			continue
		}
		dst[name] = vs
	}
}

// namedIn reports whether the Connection header values conn name the header
// name (canonical), in any case, among their comma-separated tokens.
func namedIn(conn []string, name string) bool {
	for _, v := range conn {
		for token := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(token), name) {
				return true
			}
		}
	}
	return false
}

// outgoingQuery is the upstream's query: the target URL's own, then the
// caller's parameters named "format" or in allowed, except any that the target
// URL sets itself. The target's query is kept byte for byte; the caller's
// parameters follow in their name order, each with all its values in order.
// Parameters that do not parse (a lone '%', a ';') are dropped.
func outgoingQuery(target *url.URL, caller *url.URL, allowed []string) string {
	q := target.RawQuery
	if caller.RawQuery == "" {
		return q
	}
	own := target.Query()
	pass := url.Values{}
	for name, vs := range caller.Query() {
		if name != "format" && !slices.Contains(allowed, name) {
			continue
		}
		if _, set := own[name]; set {
			continue
		}
		pass[name] = vs
	}
	if len(pass) == 0 {
		return q
	}
	if q != "" {
		q += "&"
	}
	return q + pass.Encode()
}
