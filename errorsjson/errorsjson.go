package errorsjson

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// The messages of the status table of docs/contract.md. They are part of the
// API that callers see: change one and a caller's match on it breaks.
const (
	MsgNoKey               = "No API key provided"                               // 401
	MsgInvalidKey          = "Invalid or inactive API key"                       // 401
	MsgForbidden           = "Your API key does not have access to this product" // 403
	MsgProductNotFound     = "Product not found"                                 // 404
	MsgRateLimited         = "Rate limit exceeded"                               // 429
	MsgInternal            = "Internal server error"                             // 500
	MsgUpstreamAuth        = "Upstream service authentication failed"            // 502
	MsgUpstreamUnavailable = "Upstream service temporarily unavailable"          // 503
	MsgBodyTooLarge        = "Request body too large"                            // 413
	MsgNotFound            = "Not found"                                         // 404 for an unknown route
	MsgMethodNotAllowed    = "Method not allowed"                                // 405
	MsgHeaderTooLarge      = "Request header fields too large"                   // 431
)

// Body is the JSON shape of every error. Clients can decode an error response
// into it; Error is always present, RequestID whenever the request carried one.
type Body struct {
	Error     string `json:"error"`
	RequestID string `json:"request_id,omitempty"`
}

// Write answers r with status and message in the JSON error shape. The request
// id from r's context (see [RequestID]) is added as request_id.
//
// Write sets Content-Type: application/json, Content-Length,
// X-Content-Type-Options: nosniff and Cache-Control: no-store, and removes any
// Content-Encoding or Content-Length a handler set earlier; other headers already
// set on w (Retry-After, X-RateLimit-*, Allow) are kept. The message is written as
// given: never pass it a key, a secret or an upstream's body.
func Write(w http.ResponseWriter, r *http.Request, status int, message string) {
	var id string
	if r != nil {
		id = RequestIDFrom(r.Context())
	}
	body := appendBody(make([]byte, 0, 64+len(message)+len(id)), message, id)
	h := w.Header()
	h.Del("Content-Encoding")
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
}

// appendBody appends the JSON error object, with a trailing newline as
// json.Encoder writes it, to b.
func appendBody(b []byte, message, requestID string) []byte {
	b = append(b, `{"error":`...)
	b = appendString(b, message)
	if requestID != "" {
		b = append(b, `,"request_id":`...)
		b = appendString(b, requestID)
	}
	return append(b, "}\n"...)
}

func appendString(b []byte, s string) []byte {
	// json.Marshal of a string cannot fail; it also escapes <, > and & so that
	// the body is safe even if something renders it as HTML.
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// Message returns the message the stack uses for status: docs/contract.md's
// message for the statuses of its table, otherwise the standard status text. It is what
// [Rewrite] writes for a plain-text error.
func Message(status int) string {
	switch status {
	case http.StatusNotFound:
		return MsgNotFound
	case http.StatusMethodNotAllowed:
		return MsgMethodNotAllowed
	case http.StatusRequestEntityTooLarge:
		return MsgBodyTooLarge
	case http.StatusTooManyRequests:
		return MsgRateLimited
	case http.StatusRequestHeaderFieldsTooLarge:
		return MsgHeaderTooLarge
	case http.StatusInternalServerError:
		return MsgInternal
	case http.StatusServiceUnavailable:
		return MsgUpstreamUnavailable
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Error " + strconv.Itoa(status)
}

// NotFound answers any request with 404 {"error":"Not found"}. Register it for
// the routes a server does not serve (with ServeMux, the "/" pattern).
func NotFound(w http.ResponseWriter, r *http.Request) {
	Write(w, r, http.StatusNotFound, MsgNotFound)
}

// MethodNotAllowed returns a handler that answers 405 {"error":"Method not
// allowed"} with an Allow header listing allow.
func MethodNotAllowed(allow ...string) http.Handler {
	value := ""
	for i, m := range allow {
		if i > 0 {
			value += ", "
		}
		value += m
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if value != "" {
			w.Header().Set("Allow", value)
		}
		Write(w, r, http.StatusMethodNotAllowed, MsgMethodNotAllowed)
	})
}
