//go:build !unix

package main

import (
	"io"
	"net"
)

// reserveDownPort returns a loopback port nobody listens on. Without unix
// sockets to hold it unbound, the port is only free: another listener may
// take it later, and the "down" upstream would then answer.
func reserveDownPort() (io.Closer, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	addr := ln.Addr().String()
	return io.NopCloser(nil), addr, ln.Close()
}
