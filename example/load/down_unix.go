//go:build unix

package main

import (
	"fmt"
	"syscall"
)

// downPort is a loopback port that refuses every connection and that no
// other socket can take while it is held: a socket bound to it that never
// listens. A listener closed to free its port would not do: the next
// listener on this machine (the gateway's own demo upstream, say) can be
// given the same port, and the "down" upstream would then answer.
type downPort struct{ fd int }

// reserveDownPort binds a socket to 127.0.0.1 on a port the kernel chooses.
func reserveDownPort() (*downPort, string, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, "", fmt.Errorf("down port: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return nil, "", fmt.Errorf("down port: %w", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return nil, "", fmt.Errorf("down port: %w", err)
	}
	return &downPort{fd: fd}, fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port), nil
}

// Close frees the port.
func (d *downPort) Close() error { return syscall.Close(d.fd) }
