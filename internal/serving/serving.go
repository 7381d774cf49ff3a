// Package serving holds the HTTP server settings of the gatehouse command, so
// that the load tool's bare servers run with the same ones and a comparison
// measures the stack, not the server's settings.
package serving

import (
	"net/http"
	"time"
)

// Server timeouts. Each bounds what a slow or hostile client can hold.
const (
	// ReadHeaderTimeout: a client that trickles its headers (slowloris) is cut
	// off after 5 s; real clients send headers in one packet.
	ReadHeaderTimeout = 5 * time.Second
	// ReadTimeout: a whole request, body included, must arrive within 30 s; a
	// body is at most 1 MiB by default, which needs only ~35 KB/s.
	ReadTimeout = 30 * time.Second
	// WriteTimeout: the response must be written within 90 s of the request's
	// headers: longer than the upstream's whole-call timeout (60 s by default) so
	// that a slow upstream gets its 503 from the proxy, not a cut connection.
	WriteTimeout = 90 * time.Second
	// IdleTimeout: keep-alive connections with no request are closed after 120 s.
	IdleTimeout = 120 * time.Second
	// MaxHeaderBytes: net/http's own bound on a request's headers, past which
	// it answers 431 in text/plain before any handler runs. It is net/http's
	// default, 1 MiB, well above the gateway's bound
	// (gatehouse.DefaultMaxHeaderBytes, 64 KiB), so that the gateway's JSON
	// 431, with its X-Request-ID, is the answer up to 1 MiB.
	MaxHeaderBytes = http.DefaultMaxHeaderBytes
)

// NewServer returns a server for h with the settings above.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}
