//go:build unix

package downport

import (
	"fmt"
	"io"
	"syscall"
)

// port is a loopback port that refuses every connection and that no
// other socket can take while it is held: a socket bound to it that never
// listens. A listener closed to free its port would not do: the next
// listener on this machine (the gateway's own demo upstream, say) can be
// given the same port, and the "down" upstream would then answer.
type port struct{ fd int }

// Reserve returns a loopback address (127.0.0.1:port) that refuses every
// connection until the returned Closer is closed: it binds a socket to a
// port the kernel chooses and never listens on it.
func Reserve() (io.Closer, string, error) {
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
	return &port{fd: fd}, fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port), nil
}

// Close frees the port.
func (d *port) Close() error { return syscall.Close(d.fd) }
