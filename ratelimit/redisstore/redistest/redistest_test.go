//go:build unix

package redistest

import (
	"net"
	"runtime"
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

// TestWithoutRedis: without redis-server on PATH, Start skips the test, or
// fails it when GATEHOUSE_REQUIRE_REDIS=1.
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
		o := &outcome{TB: t}
		done := make(chan struct{})
		go func() { defer close(done); Start(o) }()
		<-done
		if o.skipped != tt.wantSkipped || o.failed != tt.wantFail {
			t.Errorf("GATEHOUSE_REQUIRE_REDIS=%q: skipped %v, failed %v; want %v, %v", tt.require, o.skipped, o.failed, tt.wantSkipped, tt.wantFail)
		}
	}
}
