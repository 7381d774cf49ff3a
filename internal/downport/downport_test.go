package downport

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// TestReserve: the address refuses connections, and no listener opened
// while it is held is given its port.
func TestReserve(t *testing.T) {
	hold, addr, err := Reserve()
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	if c, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dial %s: %v, want connection refused", addr, err)
	}
	for range 200 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if ln.Addr().String() == addr {
			t.Fatalf("a listener was given the held port %s", addr)
		}
		ln.Close() // freed at once, so that the kernel may offer its port again
	}
}
