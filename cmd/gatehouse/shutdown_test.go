package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/syncbuf"
)

// hungUpstream is a real socket whose server reads a request and never
// answers: each POST's arrival is sent on arrived, and its connection is held
// open until the test ends.
func hungUpstream(t *testing.T) (url string, arrived <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 16)
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err == nil && req.Method == http.MethodPost {
					ch <- struct{}{}
				}
				io.Copy(io.Discard, c) // until the gateway or the test closes it
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String() + "/v1/calc", ch
}

// buildBinary builds the gatehouse binary into a temporary directory:
// signals are the process's, so the shutdown is tested on the real binary, not
// on run. Skipped without a go command.
func buildBinary(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the stop signals are Unix's")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	bin := filepath.Join(t.TempDir(), "gatehouse")
	out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is the gatehouse binary running: its address and its stderr, line by
// line as it writes them.
type process struct {
	cmd    *exec.Cmd
	base   string
	lines  chan string     // stderr, each line once
	stderr *syncbuf.Buffer // all of stderr
	waited chan error      // cmd.Wait's answer, once stderr is read to its end
}

// startBinary runs bin with args on a free loopback port and returns once it
// listens. The test's end kills it if it still runs.
func startBinary(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0", "-log-flush", "0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, lines: make(chan string, 1024), stderr: &syncbuf.Buffer{}, waited: make(chan error, 1)}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.waited
	})
	var read sync.WaitGroup
	read.Go(func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			p.stderr.Write([]byte(s.Text() + "\n"))
			select {
			case p.lines <- s.Text():
			default: // nobody waits for this many lines
			}
		}
		close(p.lines)
	})
	listening := make(chan string, 1)
	read.Go(func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if addr, ok := strings.CutPrefix(s.Text(), "gatehouse listening on "); ok {
				listening <- addr
			}
		}
		close(listening)
	})
	go func() {
		read.Wait() // Wait closes the pipes: read them to their end first
		p.waited <- cmd.Wait()
	}()
	select {
	case addr, ok := <-listening:
		if !ok {
			t.Fatalf("the gateway stopped before listening; stderr:\n%s", p.stderr.String())
		}
		p.base = addr
	case <-time.After(60 * time.Second):
		t.Fatalf("the gateway did not listen within 60 s; stderr:\n%s", p.stderr.String())
	}
	return p
}

// waitLine returns the first line of stderr still unread that contains s.
func (p *process) waitLine(t *testing.T, s string) string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("stderr ended with no line containing %q:\n%s", s, p.stderr.String())
			}
			if strings.Contains(l, s) {
				return l
			}
		case <-timeout:
			t.Fatalf("no line containing %q on stderr within 60 s:\n%s", s, p.stderr.String())
		}
	}
}

// exitCode waits for the process to end (60 s at most) and returns its exit
// code.
func (p *process) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case err := <-p.waited:
		p.waited <- err // for the cleanup
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(60 * time.Second):
		t.Fatalf("the gateway did not exit within 60 s; stderr:\n%s", p.stderr.String())
	}
	return 0
}

// post sends a keyed call to the calc product in the background.
func (p *process) post(key, requestID string) <-chan reply {
	ch := make(chan reply, 1)
	go func() {
		req, _ := http.NewRequest("POST", p.base+"/api/calc", strings.NewReader(`{"inputs":{}}`))
		req.Header.Set("X-API-Key", key)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Request-ID", requestID)
		c := &http.Client{Transport: &http.Transport{}}
		defer c.CloseIdleConnections()
		resp, err := c.Do(req)
		if err != nil {
			ch <- reply{status: -1, body: err.Error()}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			ch <- reply{status: -1, body: err.Error()}
			return
		}
		h := resp.Header.Clone()
		if resp.Close {
			h.Set("Connection", "close")
		}
		ch <- reply{resp.StatusCode, h, string(b)}
	}()
	return ch
}

// logNoise is what the assertions leave out of a log line: its time and a
// request's duration.
var logNoise = regexp.MustCompile(`^time=\S+ | duration=\S+`)

// TestShutdown runs the gatehouse binary (built once) and stops it with
// signals while a call waits on an upstream that never answers.
func TestShutdown(t *testing.T) {
	bin := buildBinary(t)
	t.Run("hung upstream", func(t *testing.T) { testShutdownHungUpstream(t, bin) })
	t.Run("second signal", func(t *testing.T) { testShutdownSecondSignal(t, bin) })
}

// testShutdownHungUpstream: SIGTERM while a call waits on an upstream that
// never answers. The gateway stops accepting, gives the call -shutdown-grace,
// then cuts it: the caller gets the upstream layer's JSON 503 with
// Retry-After, on a connection the server closes, and the process exits 0
// with the shutdown's lines in its log.
func testShutdownHungUpstream(t *testing.T, bin string) {
	upURL, arrived := hungUpstream(t)
	path, plain := writeConfig(t, t.TempDir(), upURL, false)
	p := startBinary(t, bin, "-config", path, "-demo-upstream=false", "-shutdown-grace", "50ms")

	answer := p.post(plain, "hung-1")
	<-arrived
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	got := <-answer
	want := `{"error":"Upstream service temporarily unavailable","request_id":"hung-1"}` + "\n"
	if got.status != 503 || got.body != want || got.header.Get("Content-Type") != "application/json" ||
		got.header.Get("Retry-After") != "5" || got.header.Get("Connection") != "close" {
		t.Errorf("the in-flight call: %d %v %q, want 503 %q with Content-Type application/json, Retry-After 5 and Connection close", got.status, got.header, got.body, want)
	}
	if code := p.exitCode(t); code != 0 {
		t.Errorf("exit code %d, want 0; stderr:\n%s", code, p.stderr.String())
	}
	var lines []string
	for l := range strings.Lines(p.stderr.String()) {
		lines = append(lines, logNoise.ReplaceAllString(strings.TrimSuffix(l, "\n"), ""))
	}
	wantLines := []string{
		`level=INFO msg="shutting down: finishing in-flight requests" grace=50ms timeout=10.05s`,
		`level=WARN msg="shutdown grace over: in-flight requests are cut" grace=50ms`,
		`level=INFO msg=request request_id=hung-1 method=POST path=/api/calc key_id=key_test product=calc status=503 bytes=75`,
		`level=INFO msg="shut down: every request answered"`,
	}
	if strings.Join(lines, "\n") != strings.Join(wantLines, "\n") {
		t.Errorf("stderr, without times:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(wantLines, "\n"))
	}
}

// testShutdownSecondSignal: a second SIGINT or SIGTERM while the gateway
// drains ends it at once (the call in flight is cut), with exit code 128 plus
// the signal's number, as a shell reports a process the signal killed, and
// the reason on stderr.
func testShutdownSecondSignal(t *testing.T, bin string) {
	// The request line of the call that the second signal cuts, without its
	// time and duration (logNoise).
	const cutCall = `level=INFO msg=request request_id=hung-2 method=POST path=/api/calc key_id=key_test product=calc status=503 bytes=75`
	upURL, arrived := hungUpstream(t)
	path, plain := writeConfig(t, t.TempDir(), upURL, false)
	for _, tt := range []struct {
		second   syscall.Signal
		wantCode int
		wantLine string
	}{
		{syscall.SIGINT, 130, "gatehouse: a second signal (interrupt) while shutting down: stopped at once, in-flight requests cut"},
		{syscall.SIGTERM, 143, "gatehouse: a second signal (terminated) while shutting down: stopped at once, in-flight requests cut"},
	} {
		// A grace far longer than the test: only the second signal ends it.
		p := startBinary(t, bin, "-config", path, "-demo-upstream=false", "-shutdown-grace", "1h")
		answer := p.post(plain, "hung-2")
		<-arrived
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		p.waitLine(t, "shutting down")
		if err := p.cmd.Process.Signal(tt.second); err != nil {
			t.Fatal(err)
		}
		if code := p.exitCode(t); code != tt.wantCode {
			t.Errorf("second %v: exit code %d, want %d; stderr:\n%s", tt.second, code, tt.wantCode, p.stderr.String())
		}
		if got := <-answer; got.status != -1 {
			t.Errorf("second %v: the in-flight call got %d %q, want its connection cut", tt.second, got.status, got.body)
		}
		// The reason is the process's last line but for the cut call's own
		// request line, which its handler, not waited for, may log after it.
		lines := strings.Split(strings.TrimSuffix(p.stderr.String(), "\n"), "\n")
		last := len(lines) - 1
		if logNoise.ReplaceAllString(lines[last], "") == cutCall {
			last--
		}
		if last < 0 || lines[last] != tt.wantLine {
			t.Errorf("second %v: stderr:\n%s\nwant it to end with %q (and at most the cut call's request line)", tt.second, p.stderr.String(), tt.wantLine)
		}
	}
}

// TestShutdownGraceFlag: -shutdown-grace refuses a negative duration.
func TestShutdownGraceFlag(t *testing.T) {
	_, err := parseFlags([]string{"-shutdown-grace", "-1s"}, &bytes.Buffer{})
	want := "-shutdown-grace -1s: must not be negative (0 cuts in-flight requests at once)"
	if err == nil || err.Error() != want {
		t.Errorf("-shutdown-grace -1s: %v, want %q", err, want)
	}
}

// TestCancelOnStop: the watch cancels at a stop signal, ends when told to
// without cancelling, and reports a reload signal that came during it; end
// may be called twice.
func TestCancelOnStop(t *testing.T) {
	signals := make(chan os.Signal, 2)
	ctx, cancel := context.WithCancel(t.Context())
	end := cancelOnStop(signals, cancel)
	signals <- syscall.SIGHUP
	signals <- syscall.SIGTERM
	<-ctx.Done()
	if first, again := end(), end(); !first || !again {
		t.Errorf("a SIGHUP came before the stop signal: end reports %v, then %v; want true both times", first, again)
	}

	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	end = cancelOnStop(signals, cancel)
	if end() {
		t.Error("no signal came: end reports a reload")
	}
	if ctx.Err() != nil {
		t.Errorf("ended with no stop signal: the context is %v, want it live", ctx.Err())
	}
}
