package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/syncbuf"
)

// start runs the example on a free loopback port until the test ends, and
// returns its address.
func start(t *testing.T) (addr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, io.Discard, io.Discard, func(a string) { ready <- a })
	}()
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("the example did not start: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the example did not start within a minute")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the example stopped with %v", err)
		}
	})
	return addr
}

// banner is what the example prints once it listens on addr.
func banner(addr string) string {
	return `gatehouse demo listening on http://` + addr + ` (stop: Ctrl-C)
demo keys (never use them outside a demo):
  full      ila_tQQCpbGt20EtVWgkAahjuU84aW9eavuQ3WeTsV  every product, 60/min, 10000/day
  tiny      ila_V8RH3qHIdJNpF4spgeD919LdRWHRs3OF43tXVH  premium-calculator only, 2/min, 1000/day
  scoped    ila_7wXX9PxBOvcPWOtRguD0gcBI5FK2qkyr1AgLZE  premium-calculator only, 60/min, 10000/day
  disabled  ila_FDidErCQK0tGGRY1DI2FOkLkmHsOXTj41tfoms  disabled by the administrator
  expired   ila_oTPvq5mMSEiyqkJOkhC5cjL7DdJ8SlMh07fYS4  expired on 2025-01-01
try:
  curl -s -X POST http://` + addr + `/api/premium-calculator -H 'Authorization: Bearer ila_tQQCpbGt20EtVWgkAahjuU84aW9eavuQ3WeTsV' -H 'Content-Type: application/json' -d '{"inputs":{"Premium":1200,"Age":42}}'
`
}

// TestStopsOnSignal: the example's binary prints its address and the demo
// keys, serves, and on SIGINT (Ctrl-C) or SIGTERM stops and exits 0.
func TestStopsOnSignal(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the stop signals are Unix's")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	bin := filepath.Join(t.TempDir(), "example")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr syncbuf.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waited := make(chan error, 1)
			var printed bytes.Buffer
			listening := make(chan string, 1)
			go func() {
				s := bufio.NewScanner(stdout)
				for s.Scan() {
					printed.WriteString(s.Text() + "\n")
					if rest, ok := strings.CutPrefix(s.Text(), "gatehouse demo listening on http://"); ok {
						listening <- strings.TrimSuffix(rest, " (stop: Ctrl-C)")
					}
				}
				waited <- cmd.Wait() // once stdout is read to its end
			}()
			t.Cleanup(func() { cmd.Process.Kill() })
			var addr string
			select {
			case addr = <-listening:
			case err := <-waited:
				t.Fatalf("the example stopped before listening (%v); stderr:\n%s", err, stderr.String())
			case <-time.After(time.Minute):
				t.Fatalf("the example did not listen within a minute; stderr:\n%s", stderr.String())
			}
			resp, err := http.Get("http://" + addr + "/health")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET /health: %d, want 200", resp.StatusCode)
			}

			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-waited:
				if err != nil {
					t.Errorf("after %v the example exited with %v, want 0; stderr:\n%s", sig, err, stderr.String())
				}
			case <-time.After(time.Minute):
				t.Fatalf("the example still runs a minute after %v", sig)
			}
			if got := printed.String(); got != banner(addr) {
				t.Errorf("the example printed:\n%s\nwant:\n%s", got, banner(addr))
			}
			if _, err := http.Get("http://" + addr + "/health"); err == nil {
				t.Errorf("after %v the example still answers on %s", sig, addr)
			}
		})
	}
}

// TestRunRefusesArguments: a word that is not a flag is an error, and -h is
// not (it prints the flags).
func TestRunRefusesArguments(t *testing.T) {
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"8080"}, io.Discard, &stderr, nil); err == nil || err.Error() != "unexpected arguments: 8080" {
		t.Errorf("run 8080: %v, want unexpected arguments: 8080", err)
	}
	if err := run(context.Background(), []string{"-h"}, io.Discard, &stderr, nil); err != nil {
		t.Errorf("run -h: %v, want nil", err)
	}
	if !strings.Contains(stderr.String(), "-addr string\n    \taddress to listen on (default \"127.0.0.1:8080\")") {
		t.Errorf("-h printed %q, want the -addr flag", stderr.String())
	}
}
