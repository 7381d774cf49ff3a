//go:build unix

// Package redistest starts a throwaway redis-server for tests: on a free
// loopback port, with neither snapshots nor an append-only file, killed when
// the test ends.
//
//	rs := redistest.Start(t) // skips without redis-server, unless GATEHOUSE_REQUIRE_REDIS=1
//	store, _ := redisstore.NewFromURL(rs.URL, redisstore.Options{})
//
// The binary is found on PATH.
package redistest

import (
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Server is a redis-server started by [Start]. It is killed when the test
// ends. Its methods are for the test's own goroutine.
type Server struct {
	// Addr is the server's address, 127.0.0.1 and its port.
	Addr string
	// URL is the redis:// URL of the server's database 0.
	URL string

	t    testing.TB
	port string
	cmd  *exec.Cmd
}

// Start starts a server for t. Without redis-server on PATH it skips t, or
// fails it when GATEHOUSE_REQUIRE_REDIS=1.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("GATEHOUSE_REQUIRE_REDIS") == "1" {
			t.Fatal("GATEHOUSE_REQUIRE_REDIS=1 but redis-server is not on PATH")
		}
		t.Skip("redis-server is not on PATH; set GATEHOUSE_REQUIRE_REDIS=1 to fail instead")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	s := &Server{Addr: "127.0.0.1:" + port, URL: "redis://127.0.0.1:" + port + "/0", t: t, port: port}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Stop kills the server, cutting its connections; its data is lost. Stopping
// a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// Restart starts the server (again, empty) on the same port, and waits until
// it accepts connections.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.cmd = exec.Command("redis-server", "--port", s.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		s.t.Fatalf("redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", s.Addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server did not listen on %s within 10 s", s.Addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Pause stops the server's process (SIGSTOP) without closing its
// connections: a hung Redis. Resume continues it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a server that Pause stopped (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig os.Signal) {
	s.t.Helper()
	if s.cmd == nil {
		s.t.Fatal("redistest: the server is stopped")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: %v", err)
	}
}
