//go:build unix

package redistest

import (
	"errors"
	"flag"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// TestStopRestart: the server listens once started, not once stopped, and
// again on the same address once restarted.
func TestStopRestart(t *testing.T) {
	s := Start(t)
	if s.URL != "redis://"+s.Addr+"/0" {
		t.Errorf("URL = %q, want redis://%s/0", s.URL, s.Addr)
	}
	listening := func() bool {
		c, err := net.Dial("tcp", s.Addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	if !listening() {
		t.Fatal("started: nothing listens")
	}
	s.Stop()
	if listening() {
		t.Fatal("stopped: still listening")
	}
	s.Stop() // a second Stop does nothing
	s.Restart()
	if !listening() {
		t.Fatal("restarted: nothing listens")
	}
}

// outcome records whether Start skipped or failed its test.
type outcome struct {
	testing.TB
	skipped, failed bool
}

func (o *outcome) Helper()               {}
func (o *outcome) Skip(...any)           { o.skipped = true; runtime.Goexit() }
func (o *outcome) Fatal(...any)          { o.failed = true; runtime.Goexit() }
func (o *outcome) Fatalf(string, ...any) { o.failed = true; runtime.Goexit() }

// TestStartCluster: the cluster is three masters, every node of which sees
// all 16384 slots served, and none is left listening once the test is over.
func TestStartCluster(t *testing.T) {
	var addrs []string
	t.Run("running", func(t *testing.T) {
		c := StartCluster(t)
		addrs = c.Addrs
		if len(addrs) != 3 {
			t.Fatalf("Addrs = %v, want three", addrs)
		}
		for _, addr := range addrs {
			_, port, _ := net.SplitHostPort(addr)
			out, err := exec.Command("redis-cli", "-p", port, "cluster", "info").Output()
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"cluster_state:ok", "cluster_slots_assigned:16384", "cluster_known_nodes:3", "cluster_size:3"} {
				if !strings.Contains(string(out), want+"\r\n") {
					t.Errorf("node %s: CLUSTER INFO lacks %s:\n%s", addr, want, out)
				}
			}
		}
	})
	for _, addr := range addrs {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Errorf("node %s still listens after its test", addr)
		}
	}
}

// TestWithoutRedis: without redis-server on PATH, Start and StartCluster skip
// the test, or fail it when GATEHOUSE_REQUIRE_REDIS=1.
func TestWithoutRedis(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, tt := range []struct {
		require               string
		wantSkipped, wantFail bool
	}{
		{"", true, false},
		{"1", false, true},
	} {
		t.Setenv("GATEHOUSE_REQUIRE_REDIS", tt.require)
		for name, start := range map[string]func(testing.TB){
			"Start":        func(t testing.TB) { Start(t) },
			"StartCluster": func(t testing.TB) { StartCluster(t) },
		} {
			o := &outcome{TB: t}
			done := make(chan struct{})
			go func() { defer close(done); start(o) }()
			<-done
			if o.skipped != tt.wantSkipped || o.failed != tt.wantFail {
				t.Errorf("%s, GATEHOUSE_REQUIRE_REDIS=%q: skipped %v, failed %v; want %v, %v", name, tt.require, o.skipped, o.failed, tt.wantSkipped, tt.wantFail)
			}
		}
		// Examples: skipped (-test.skip), or an error when required.
		skip := flag.Lookup("test.skip").Value.String()
		var e Examples
		err := e.SkipIfMissing()
		newSkip := flag.Lookup("test.skip").Value.String()
		flag.Set("test.skip", skip)
		wantSkip := skip
		if tt.wantSkipped {
			wantSkip = "^Example"
			if skip != "" {
				wantSkip += "|" + skip
			}
		}
		if (err != nil) != tt.wantFail || newSkip != wantSkip {
			t.Errorf("SkipIfMissing, GATEHOUSE_REQUIRE_REDIS=%q: error %v, -test.skip %q; want an error %v, -test.skip %q", tt.require, err, newSkip, tt.wantFail, wantSkip)
		}
	}
}

// TestExamples: the examples' server starts at the first call of Server,
// the same one at the next, listens on its URL's address, and is gone once
// stopped; with redis-server on PATH, SkipIfMissing skips nothing.
func TestExamples(t *testing.T) {
	need(t, "redis-server")
	skip := flag.Lookup("test.skip").Value.String()
	var e Examples
	if err := e.SkipIfMissing(); err != nil || flag.Lookup("test.skip").Value.String() != skip {
		t.Fatalf("SkipIfMissing with redis-server: %v, -test.skip %q", err, flag.Lookup("test.skip").Value.String())
	}
	defer e.Stop()
	s := e.Server()
	if e.Server() != s {
		t.Error("a second Server started another")
	}
	if s.URL != "redis://"+s.Addr+"/0" {
		t.Errorf("URL = %q, want redis://%s/0", s.URL, s.Addr)
	}
	c, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatalf("started: %v", err)
	}
	c.Close()
	e.Stop()
	if c, err := net.Dial("tcp", s.Addr); err == nil {
		c.Close()
		t.Fatal("stopped: still listening")
	}
}

// TestExamplesStoppedUnstarted: Stop without an example does nothing, and
// no server starts after it.
func TestExamplesStoppedUnstarted(t *testing.T) {
	var e Examples
	e.Stop()
	defer func() {
		if recover() != nil {
			t.Fatal("Server after Stop panicked")
		}
	}()
	if s := e.Server(); s != nil {
		s.Stop()
		t.Fatal("Server after Stop started one")
	}
}

// TestRefusedAddr: the address refuses connections and its port is held
// while the test runs (that no other listener is given it is downport's
// TestReserve).
func TestRefusedAddr(t *testing.T) {
	addr := RefusedAddr(t)
	if c, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dial %s: %v, want connection refused", addr, err)
	}
	if ln, err := net.Listen("tcp", addr); !errors.Is(err, syscall.EADDRINUSE) {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("listen on %s: %v, want address in use", addr, err)
	}
}
