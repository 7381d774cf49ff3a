package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/internal/serving"
)

// TestEveryAnswerIsJSON sends, over a real socket and with the server's real
// settings, the requests that net/http or ServeMux would answer without JSON:
// an unclean path (ServeMux: an empty 307 to the cleaned one) and headers past
// the gateway's bound get the JSON shape with X-Request-ID. What net/http
// answers before any handler runs (no Host, headers past the server's own
// bound) is the documented exception, asserted as it is so that the docs stay
// true.
func TestEveryAnswerIsJSON(t *testing.T) {
	// The real timeouts: a megabyte of headers takes a busy machine longer
	// than the hostile tests' 200 ms to send and parse.
	addr := startServer(t, func(*http.Server) {})
	full := key("full")
	// No body: the server reads every byte sent before it answers and closes,
	// so that its close cannot reset the connection under the answer.
	post := func(target, headers string) string {
		return "POST " + target + " HTTP/1.1\r\nHost: x\r\nX-API-Key: " + full + "\r\nX-Request-ID: a1\r\n" + headers +
			"Content-Type: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
	}
	const plain = "text/plain; charset=utf-8"
	tests := []struct {
		name    string
		request string
		status  string
		ctype   string
		id      string // X-Request-ID
		body    string
	}{
		{"dot segment", post("/api/./premium-calculator", ""), "404 Not Found", "application/json", "a1",
			`{"error":"Not found","request_id":"a1"}` + "\n"},
		{"dot-dot segment", post("/x/../api/premium-calculator", ""), "404 Not Found", "application/json", "a1",
			`{"error":"Not found","request_id":"a1"}` + "\n"},
		{"empty segment", post("//api/premium-calculator", ""), "404 Not Found", "application/json", "a1",
			`{"error":"Not found","request_id":"a1"}` + "\n"},
		{"headers past the gateway's bound", post("/api/premium-calculator", "X-Big: "+strings.Repeat("a", gatehouse.DefaultMaxHeaderBytes)+"\r\n"),
			"431 Request Header Fields Too Large", "application/json", "a1", `{"error":"Request header fields too large","request_id":"a1"}` + "\n"},
		{"headers just below the server's bound", post("/api/premium-calculator", "X-Big: "+strings.Repeat("a", serving.MaxHeaderBytes-1024)+"\r\n"),
			"431 Request Header Fields Too Large", "application/json", "a1", `{"error":"Request header fields too large","request_id":"a1"}` + "\n"},
		// The exceptions: net/http answers before any handler runs.
		{"headers past the server's bound", post("/api/premium-calculator", "X-Big: "+strings.Repeat("a", serving.MaxHeaderBytes+8192)+"\r\n"),
			"431 Request Header Fields Too Large", plain, "", "431 Request Header Fields Too Large"},
		{"HTTP/1.1 without Host", "POST /api/premium-calculator HTTP/1.1\r\nX-Request-ID: a1\r\nContent-Length: 0\r\n\r\n",
			"400 Bad Request: missing required Host header", plain, "", "400 Bad Request: missing required Host header"},
	}
	for _, tt := range tests {
		resp, body, err := rawResponse(t, addr, tt.request)
		if err != nil && tt.status == "431 Request Header Fields Too Large" && tt.id == "" {
			// net/http stops reading past its bound and, half a second
			// after its answer, closes on the bytes it left unread, which
			// resets the connection: a client that has not read the
			// answer by then sees only the reset.
			t.Logf("%s: %v: the connection was reset before the answer was read", tt.name, err)
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		ct, id := resp.Header.Get("Content-Type"), resp.Header.Get("X-Request-ID")
		if resp.Status != tt.status || ct != tt.ctype || id != tt.id || body != tt.body {
			t.Errorf("%s: %s, Content-Type %q, X-Request-ID %q, body %q;\nwant %s, %q, %q, %q", tt.name, resp.Status, ct, id, body, tt.status, tt.ctype, tt.id, tt.body)
		}
	}
}
