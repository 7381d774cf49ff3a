//go:build unix

// Package pgtest starts a throwaway PostgreSQL server for tests: initdb into a
// temporary directory, then postgres on a loopback port, as the user nobody
// when the test runs as root (PostgreSQL refuses to run as root).
//
//	pg := pgtest.Start(t) // skips without PostgreSQL, unless GATEHOUSE_REQUIRE_POSTGRES=1
//	db, _ := sqlstore.Open(pg.URL)
//
// The binaries are found on PATH or in /usr/lib/postgresql/*/bin.
package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
)

// Server is a PostgreSQL server started by [Start]. It is stopped and its
// files removed when the test ends.
type Server struct {
	// URL is the postgres:// URL of the server's "postgres" database.
	URL string

	t    testing.TB
	bin  string
	dir  string
	port int
	cred *syscall.Credential
}

// Start starts a server for t. Without PostgreSQL's binaries it skips t, or
// fails it when GATEHOUSE_REQUIRE_POSTGRES=1.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := findBin()
	if bin == "" {
		if os.Getenv("GATEHOUSE_REQUIRE_POSTGRES") == "1" {
			t.Fatal("GATEHOUSE_REQUIRE_POSTGRES=1 but no PostgreSQL binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin")
		}
		t.Skip("no PostgreSQL binaries; set GATEHOUSE_REQUIRE_POSTGRES=1 to fail instead")
	}
	dir, err := os.MkdirTemp("", "gatehouse-pg-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, bin: bin, dir: dir}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("running as root, PostgreSQL needs an unprivileged user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s.run("initdb", "-D", s.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	s.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
	s.Restart()
	t.Cleanup(func() { s.pgctl("stop", "-m", "immediate") })
	return s
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

// Stop stops the server, cutting its connections, and keeps its data.
func (s *Server) Stop() {
	s.t.Helper()
	if err := s.pgctl("stop", "-m", "fast", "-w"); err != nil {
		s.t.Fatalf("pg_ctl stop: %v", err)
	}
}

// Restart starts the server (again) on the same port and data, and waits
// until it accepts connections.
func (s *Server) Restart() {
	s.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off", s.port, s.dir)
	if err := s.pgctl("start", "-w", "-t", "30", "-l", filepath.Join(s.dir, "log"), "-o", opts); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		s.t.Fatalf("pg_ctl start: %v\n%s", err, log)
	}
}

func (s *Server) pgctl(args ...string) error {
	return s.cmd("pg_ctl", append([]string{"-D", s.data()}, args...)...).Run()
}

func (s *Server) run(name string, args ...string) {
	s.t.Helper()
	if out, err := s.cmd(name, args...).CombinedOutput(); err != nil {
		s.t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

func (s *Server) cmd(name string, args ...string) *exec.Cmd {
	c := exec.Command(filepath.Join(s.bin, name), args...)
	c.Dir = s.dir
	c.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C", "HOME=" + s.dir}
	if s.cred != nil {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return c
}

// findBin returns the directory holding initdb and pg_ctl, or "".
func findBin() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.Sort(dirs)
	for _, d := range slices.Backward(dirs) {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return ""
}
