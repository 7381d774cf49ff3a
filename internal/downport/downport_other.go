//go:build !unix

package downport

import (
	"io"
	"net"
)

// Reserve returns a loopback address nobody listens on. Without unix
// sockets to hold the port, it is only free: another listener may take it
// later, and the down upstream would then answer.
func Reserve() (io.Closer, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	addr := ln.Addr().String()
	return io.NopCloser(nil), addr, ln.Close()
}
