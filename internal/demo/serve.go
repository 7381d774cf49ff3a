package demo

import (
	"fmt"
	"net"

	"github.com/gatehouse-go/gatehouse/internal/serving"
)

// Serve serves [Upstream] with [Secret] on a free loopback port, with the
// gateway's server timeouts (package serving), until stop is called. It
// returns the upstream's base URL, "http://127.0.0.1:PORT", to which the
// products' routes are appended. The example and the gatehouse command both
// start the demo upstream this way.
func Serve() (base string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("demo upstream: %w", err)
	}
	srv := serving.NewServer(Upstream(Secret))
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}
