package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// gatewayModule is the module of the gateway the tool builds and starts: the
// gatehouse command, a module of its own beside the benchmarks' (so go build
// of its import path from here finds no such package).
const gatewayModule = "github.com/gatehouse-go/gatehouse/cmd/gatehouse"

// defaultGatewaySource returns cmd/gatehouse of the repository this tool's
// source is in, as the compiler recorded the source's path; "" if it recorded
// no absolute path (a build with -trimpath).
func defaultGatewaySource() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return ""
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "cmd", "gatehouse")
}

// checkGatewaySource returns an error unless src is the directory of the
// gatehouse command's module: its go.mod names gatewayModule.
func checkGatewaySource(src string) error {
	if src == "" {
		return errors.New("no -gateway-src: this tool was built without its source's path; give -gateway-src DIR (cmd/gatehouse of a clone) or -gateway PATH")
	}
	b, err := os.ReadFile(filepath.Join(src, "go.mod"))
	if err != nil {
		return fmt.Errorf("-gateway-src %s: %w", src, err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "module "); ok {
			if mod := strings.Trim(strings.TrimSpace(rest), `"`); mod != gatewayModule {
				return fmt.Errorf("-gateway-src %s: go.mod is module %s, not %s", src, mod, gatewayModule)
			}
			return nil
		}
	}
	return fmt.Errorf("-gateway-src %s: go.mod names no module", src)
}

// process is a gateway the tool started: the gatehouse command built from
// source, run as a child process on 127.0.0.1:0.
type process struct {
	cmd    *exec.Cmd
	addr   string
	stderr *tailBuffer
	done   chan struct{}
	err    error        // after done: how it exited
	redis  *redisServer // the Redis it keeps its limits in (-redis-compare), or nil
}

// buildGateway builds the gatehouse command from its module's directory src
// (see checkGatewaySource) into dir, and returns the binary's path.
func buildGateway(ctx context.Context, src, dir string) (string, error) {
	if err := checkGatewaySource(src); err != nil {
		return "", err
	}
	bin, err := filepath.Abs(filepath.Join(dir, "gatehouse"))
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-C", src, "-o", bin, ".")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build -C %s: %w\n%s", src, err, out)
	}
	return bin, nil
}

// startGateway runs bin with the configuration at configPath on 127.0.0.1:0
// and waits for its banner, whose first line names the address it listens on.
// logLevel is the gateway's -log-level (INFO logs a line per request, ERROR
// none); extra arguments follow.
func startGateway(bin, configPath, logLevel string, extra ...string) (*process, error) {
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0", "-config", configPath, "-log-level", logLevel}, extra...)...)
	return startProcess(cmd, "gatehouse listening on http://")
}

// startBare runs this tool's own binary as a bare server (see serveBare)
// with args: answering the product itself, or, given an upstream URL, an
// httputil.ReverseProxy to it; requestLogArg first adds the request line. A
// process of its own, as the gateway is, so that the two compare on equal
// terms: neither shares a Go runtime with the load it is under.
func startBare(args ...string) (*process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startProcess(exec.Command(self, append([]string{serveBareArg}, args...)...), bareBanner)
}

// startProcess starts cmd and waits for the first line of its output, which
// must be banner followed by the address it listens on.
func startProcess(cmd *exec.Cmd, banner string) (*process, error) {
	p := &process{cmd: cmd, stderr: &tailBuffer{max: 16 << 10}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	select {
	case line, ok := <-lines:
		addr, found := strings.CutPrefix(line, banner)
		if !ok || !found {
			p.stop()
			return nil, fmt.Errorf("%s did not print its address (got %q); stderr:\n%s", cmd.Path, line, p.stderr)
		}
		p.addr = addr
		return p, nil
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, fmt.Errorf("%s printed nothing in 30 s; stderr:\n%s", cmd.Path, p.stderr)
	}
}

// exited reports whether the gateway has exited, and how.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// stop asks the gateway to shut down (SIGTERM), and kills it after 10 s.
func (p *process) stop() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		return errors.New("gateway did not stop within 10 s of SIGTERM; killed")
	}
	return nil
}

// tailBuffer keeps the first max bytes written to it: enough to show why a
// gateway failed to start or crashed.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if room := t.max - t.b.Len(); room > 0 {
		t.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String()
}

// checkLoopback returns an error unless target is an http URL whose host is
// a loopback address (127.0.0.0/8, ::1) or localhost: the tool is for load
// on one's own machine, never for anyone else's server.
func checkLoopback(target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("-target: %w", err)
	}
	if u.Scheme != "http" {
		return fmt.Errorf("-target %q: want an http:// URL", target)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("-target %q: no host", target)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-target %q: the load tool only targets loopback addresses (127.0.0.0/8, ::1, localhost)", target)
	}
	return nil
}

// procSample is what /proc says about a process: the resident set, the
// threads and the open file descriptors.
type procSample struct {
	rssKB   int
	threads int
	fds     int
}

func sampleProc(pid int) (procSample, error) {
	var s procSample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fmt.Sscan(v, &s.rssKB)
		}
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			fmt.Sscan(v, &s.threads)
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.fds = len(fds)
	return s, nil
}

// cpuTime returns the CPU time (user and system) the process pid has used.
func cpuTime(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	_, rest, ok := strings.Cut(string(stat), ") ")
	if !ok {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	var utime, stime int64
	fmt.Sscan(f[11], &utime) // field 14 of the whole line
	fmt.Sscan(f[12], &stime) // field 15
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// redisServer is a redis-server the tool started for -redis-compare, on a free
// loopback port, without persistence.
type redisServer struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

// startRedis starts redis-server (from PATH) on 127.0.0.1 and a free port, and
// waits until it answers PING, for at most 10 s.
func startRedis() (*redisServer, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("-redis-compare needs redis-server on PATH: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(path, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--protected-mode", "yes")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &redisServer{cmd: cmd, addr: addr, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(s.done)
	}()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if pingRedis(addr) == nil {
			return s, nil
		}
	}
	s.stop()
	return nil, fmt.Errorf("redis-server on %s did not answer PING within 10 s", addr)
}

// pingRedis sends one inline PING to addr and wants +PONG back.
func pingRedis(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("redis-server answered %q to PING", line)
	}
	return nil
}

// redisCounts are a redis-server's counts (INFO stats and commandstats):
// the script calls it ran (EVALSHA and EVAL: the decisions sent), every
// command it processed (those the scripts call included), and its reads
// from clients, one a round trip (a pipeline is read at once).
type redisCounts struct{ scripts, commands, reads int64 }

// counts reads the server's counts with one INFO on a connection of its
// own, which adds one command and one read to the next reading.
func (s *redisServer) counts() (redisCounts, error) {
	c, err := net.DialTimeout("tcp", s.addr, time.Second)
	if err != nil {
		return redisCounts{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("INFO stats commandstats\r\n")); err != nil {
		return redisCounts{}, err
	}
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n')
	if err != nil {
		return redisCounts{}, fmt.Errorf("INFO: %w", err)
	}
	size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
	if err != nil || size < 0 {
		return redisCounts{}, fmt.Errorf("INFO answered %q", head)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		return redisCounts{}, fmt.Errorf("INFO: %w", err)
	}
	var rc redisCounts
	for line := range strings.Lines(string(body)) {
		name, value, _ := strings.Cut(strings.TrimSpace(line), ":")
		var n *int64
		switch name {
		case "total_commands_processed":
			n = &rc.commands
		case "total_reads_processed":
			n = &rc.reads
		case "cmdstat_evalsha", "cmdstat_eval":
			calls, _, _ := strings.Cut(strings.TrimPrefix(value, "calls="), ",")
			v, err := strconv.ParseInt(calls, 10, 64)
			if err != nil {
				return redisCounts{}, fmt.Errorf("INFO: %s: %w", name, err)
			}
			rc.scripts += v
		}
		if n != nil {
			if *n, err = strconv.ParseInt(value, 10, 64); err != nil {
				return redisCounts{}, fmt.Errorf("INFO: %s: %w", name, err)
			}
		}
	}
	return rc, nil
}

// url is the server's URL for the gateway's -redis flag.
func (s *redisServer) url() string { return "redis://" + s.addr + "/0" }

// stop kills the server (its data is thrown away) and waits for it.
func (s *redisServer) stop() {
	s.cmd.Process.Kill()
	<-s.done
}
