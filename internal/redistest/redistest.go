//go:build unix

// Package redistest starts a throwaway redis-server for tests: on a free
// loopback port, with neither snapshots nor an append-only file, killed when
// the test ends; or a Redis Cluster of three such servers.
//
//	rs := redistest.Start(t) // skips without redis-server, unless GATEHOUSE_REQUIRE_REDIS=1
//	store, _ := redisstore.NewFromURL(rs.URL, redisstore.Options{})
//
//	rc := redistest.StartCluster(t)
//	store := redisstore.New(redis.NewClusterClient(&redis.ClusterOptions{Addrs: rc.Addrs}), redisstore.Options{})
//
// [StartTLS] starts one that also serves TLS, with a certificate of a CA made
// for the test, and requires a password. [Hostile] serves an endpoint that is
// not Redis, answering every command with bytes of the test's choosing.
//
// The binaries (redis-server, and redis-cli for a cluster) are found on PATH.
//
// A Redis that is down, refusing every connection, is an address of
// [RefusedAddr].
package redistest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/downport"
)

// Server is a redis-server started by [Start]. It is killed when the test
// ends. Its methods are for the test's own goroutine.
type Server struct {
	// Addr is the server's address, 127.0.0.1 and its port.
	Addr string
	// URL is the redis:// URL of the server's database 0.
	URL string

	t     testing.TB
	port  string
	extra []string // more redis-server arguments: a cluster node's
	cmd   *exec.Cmd
}

// Start starts a server for t. Without redis-server on PATH it skips t, or
// fails it when GATEHOUSE_REQUIRE_REDIS=1.
func Start(t testing.TB) *Server {
	t.Helper()
	need(t, "redis-server")
	return start(t, freePort(t))
}

// Hostile serves, on a loopback port until t ends, an endpoint that is not
// Redis: it answers every read of a connection with reply (a length far
// above what any reply holds, say), and returns its address,
// 127.0.0.1:port.
func Hostile(t testing.TB, reply []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
					if _, err := c.Write(reply); err != nil {
						return
					}
				}
			})
		}
	})
	return ln.Addr().String()
}

// TLSServer is a redis-server started by [StartTLS].
type TLSServer struct {
	*Server
	// TLSAddr is where the server serves TLS: 127.0.0.1 and its tls-port.
	TLSAddr string
	// CAFile is the PEM file of the CA made for the test, which signed the
	// server's certificate (for the IP address 127.0.0.1); CAPool holds it.
	CAFile string
	CAPool *x509.CertPool
}

// StartTLS starts a server for t as [Start] does, which also serves TLS on a
// loopback port of its own with a certificate that a CA made for t signed,
// and requires password (requirepass) on both ports; clients need no
// certificate. Without redis-server on PATH it skips t, or fails it when
// GATEHOUSE_REQUIRE_REDIS=1; a redis-server built without TLS fails it.
func StartTLS(t testing.TB, password string) *TLSServer {
	t.Helper()
	need(t, "redis-server")
	dir := t.TempDir()
	caFile, certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool, err := writeTLSFiles(caFile, certFile, keyFile)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	tlsPort := freePort(t)
	s := start(t, freePort(t), "--tls-port", tlsPort, "--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--tls-ca-cert-file", caFile, "--tls-auth-clients", "no", "--requirepass", password)
	return &TLSServer{Server: s, TLSAddr: "127.0.0.1:" + tlsPort, CAFile: caFile, CAPool: pool}
}

// writeTLSFiles makes a CA and a certificate for 127.0.0.1 that it signs,
// writes the CA's certificate, the server's and the server's key as PEM, and
// returns a pool holding the CA.
func writeTLSFiles(caFile, certFile, keyFile string) (*x509.CertPool, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "redistest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name, typ string
		der       []byte
	}{{caFile, "CERTIFICATE", caDER}, {certFile, "CERTIFICATE", der}, {keyFile, "PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.name, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			return nil, err
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, nil
}

// need skips t, or fails it when GATEHOUSE_REQUIRE_REDIS=1, unless every one
// of bins is on PATH.
func need(t testing.TB, bins ...string) {
	t.Helper()
	for _, bin := range bins {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("GATEHOUSE_REQUIRE_REDIS") == "1" {
				t.Fatal("GATEHOUSE_REQUIRE_REDIS=1 but " + bin + " is not on PATH")
			}
			t.Skip(bin + " is not on PATH; set GATEHOUSE_REQUIRE_REDIS=1 to fail instead")
		}
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	port, err := pickPort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// pickPort is freePort, returning its failure.
func pickPort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port, nil
}

// RefusedAddr returns a loopback address (127.0.0.1:port) that refuses every
// connection until t ends: [downport.Reserve]'s, a socket bound to a port the
// kernel chooses that never listens, held until then. A listener closed to
// free its port would not do: a listener opened meanwhile, by a test running
// in parallel say, could be given the port, and the address would then
// answer.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	hold, addr, err := downport.Reserve()
	if err != nil {
		t.Fatalf("redistest: refused address: %v", err)
	}
	t.Cleanup(func() { hold.Close() })
	return addr
}

// start starts a server on port, with extra redis-server arguments, stopped
// when t ends.
func start(t testing.TB, port string, extra ...string) *Server {
	t.Helper()
	s := &Server{Addr: "127.0.0.1:" + port, URL: "redis://127.0.0.1:" + port + "/0", t: t, port: port, extra: extra}
	t.Cleanup(s.Stop)
	s.Restart()
	return s
}

// Cluster is a Redis Cluster of three masters, no replicas, started by
// [StartCluster]. Its servers are killed when the test ends.
type Cluster struct {
	// Addrs are the masters' addresses, 127.0.0.1 and a port each: the seeds
	// of a go-redis ClusterClient.
	Addrs []string
}

// StartCluster starts three redis-servers with cluster mode on, each on a free
// loopback port with its cluster bus on another, makes them one cluster with
// redis-cli --cluster create (the 16384 slots split in three), and waits
// until every node reports cluster_state:ok. Without redis-server or
// redis-cli on PATH it skips t, or fails it when GATEHOUSE_REQUIRE_REDIS=1.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	need(t, "redis-server", "redis-cli")
	dir := t.TempDir()
	c := &Cluster{}
	for range 3 {
		port := freePort(t)
		start(t, port, "--cluster-enabled", "yes",
			"--cluster-port", freePort(t), // the default, port+10000, may be past 65535
			"--cluster-config-file", filepath.Join(dir, "nodes-"+port+".conf"),
			"--dir", dir)
		c.Addrs = append(c.Addrs, "127.0.0.1:"+port)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, addr := range c.Addrs {
		_, port, _ := net.SplitHostPort(addr)
		for {
			out, err := exec.CommandContext(ctx, "redis-cli", "-h", "127.0.0.1", "-p", port, "cluster", "info").Output()
			if err == nil && strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("redistest: the cluster's node %s was not ok within 30 s", addr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return c
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
	if err := s.restart(); err != nil {
		s.t.Fatal(err)
	}
}

// restart is Restart, returning its failure.
func (s *Server) restart() error {
	s.Stop()
	args := append([]string{"--port", s.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, s.extra...)
	s.cmd = exec.Command("redis-server", args...)
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		return fmt.Errorf("redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", s.Addr)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("redis-server did not listen on %s within 10 s", s.Addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Examples is the redis-server of a package's runnable examples, which
// have no testing.TB to skip, fail or stop a server with. A package's
// TestMain calls SkipIfMissing before m.Run and Stop after it; an example
// calls Server, which starts the server the first time. A test binary that
// runs no example (with -run, or a fuzzing worker) starts none.
type Examples struct {
	once   sync.Once
	server *Server
	err    error
}

// SkipIfMissing makes the test binary skip its examples (it adds ^Example
// to -test.skip) when redis-server is not on PATH, or returns an error
// instead when GATEHOUSE_REQUIRE_REDIS=1, as [Start] skips or fails a
// test. It is for TestMain, after flag.Parse.
func (e *Examples) SkipIfMissing() error {
	if _, err := exec.LookPath("redis-server"); err == nil {
		return nil
	}
	if os.Getenv("GATEHOUSE_REQUIRE_REDIS") == "1" {
		return errors.New("GATEHOUSE_REQUIRE_REDIS=1 but redis-server is not on PATH")
	}
	skip := "^Example"
	if f := flag.Lookup("test.skip"); f != nil && f.Value.String() != "" {
		skip += "|" + f.Value.String()
	}
	if err := flag.Set("test.skip", skip); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "redistest: redis-server is not on PATH: the examples are skipped; set GATEHOUSE_REQUIRE_REDIS=1 to fail instead")
	return nil
}

// Server returns the examples' server, started on a free loopback port by
// the first call. It panics if the server cannot start: the example then
// fails. Only its Addr and URL are for the examples.
func (e *Examples) Server() *Server {
	e.once.Do(func() {
		port, err := pickPort()
		if err != nil {
			e.err = err
			return
		}
		s := &Server{Addr: "127.0.0.1:" + port, URL: "redis://127.0.0.1:" + port + "/0", port: port}
		if e.err = s.restart(); e.err == nil {
			e.server = s
		}
	})
	if e.err != nil {
		panic("redistest: " + e.err.Error())
	}
	return e.server
}

// Stop stops the examples' server, if one was started.
func (e *Examples) Stop() {
	e.once.Do(func() {}) // no server may start after Stop
	if e.server != nil {
		e.server.Stop()
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
