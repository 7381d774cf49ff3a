//go:build unix

package downport

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// TestReserveHoldsThePort: a listener that asks for the held port itself is
// refused it (a port freed by closing a listener would be given).
func TestReserveHoldsThePort(t *testing.T) {
	hold, addr, err := Reserve()
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	if ln, err := net.Listen("tcp", addr); !errors.Is(err, syscall.EADDRINUSE) {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("listen on %s: %v, want address in use", addr, err)
	}
}
