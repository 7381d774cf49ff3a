// Command gatehouse is the gateway an operator runs: GET /health and POST
// /api/{productSlug} behind gatehouse's API keys, rate limits and upstreams,
// with keys and products from a configuration file (-config) or a key database
// (-db, managed with the keys subcommands), Redis for limits shared between
// replicas (-redis) and an admin listener (-admin-addr). Without -config it
// serves the built-in demo configuration in front of a built-in demo upstream,
// and prints the demo keys at start-up.
//
// From a clone of the repository, cd cmd/gatehouse && go install . puts it on
// $(go env GOPATH)/bin; from a release, go install
// github.com/gatehouse-go/gatehouse/cmd/gatehouse@latest.
//
//	gatehouse                      # serve on 127.0.0.1:8080
//	gatehouse -config gateway.json # your own keys and products; SIGHUP reloads
//	gatehouse -mint -name Alice -products premium-calculator
//	gatehouse -db sqlite:keys.db   # keys from a database (see keys.go)
//	gatehouse keys create -db sqlite:keys.db -name ci -owner acme -products premium-calculator -per-minute 60 -per-day 10000
//
// At start-up it prints its own process id and the command that reloads the
// configuration (kill -HUP <pid>). Under go run that pid is the server's, not
// go run's: a SIGHUP sent to go run would stop it and leave the server running.
// SIGTERM or Ctrl-C drains the server (see -shutdown-grace); a second one
// stops it at once.
//
// docs/gatehouse.md in the repository says where each part is documented.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
	"github.com/gatehouse-go/gatehouse/internal/cli"
	"github.com/gatehouse-go/gatehouse/internal/demo"
	"github.com/gatehouse-go/gatehouse/internal/logbatch"
	"github.com/gatehouse-go/gatehouse/internal/serving"
)

func main() {
	// Buffered for a stop and a second stop (or a SIGHUP) that come before
	// run reads them: signal.Notify drops what does not fit.
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(signals)

	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, signals, nil); err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse:", err)
		os.Exit(exitCode(err))
	}
}

// options are the command's flags.
type options struct {
	addr         string
	configPath   string
	demoUpstream bool
	redisURL     string
	redisDown    redisDown
	redisTimeout time.Duration
	dbURL        string
	usageFlush   time.Duration
	logLevel     slog.Level
	logFlush     time.Duration
	adminAddr    string
	adminPublic  bool
	adminHosts   adminHosts
	grace        time.Duration

	mint      bool
	name      string
	products  string
	perMinute int
	perDay    int
	owner     string
	windows   string
}

// usageHead starts gatehouse -h: the command's forms, then its flags.
const usageHead = `Usage of gatehouse:
  gatehouse [flags]         serve the gateway
  gatehouse keys COMMAND    manage the keys of a database (gatehouse keys lists the commands)
  gatehouse usage -db URL   print or export the keys' usage (gatehouse usage -h lists its flags)
  gatehouse config          print the built-in demo configuration as a file, a start for -config
  gatehouse version         print the version it was built from
Flags:
`

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := cli.FlagSet("gatehouse", stderr)
	fs.Usage = func() {
		io.WriteString(stderr, usageHead)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&o.configPath, "config", "", "configuration file (JSON); empty: the built-in demo configuration. SIGHUP reloads it")
	fs.BoolVar(&o.demoUpstream, "demo-upstream", true, "serve the built-in demo upstream on a loopback port for demo: URLs")
	fs.StringVar(&o.redisURL, "redis", "", "Redis URL (redis://127.0.0.1:6379/0) to share rate limits between replicas; empty: in memory")
	fs.Var(&o.redisDown, "redis-down", "with -redis, while Redis fails: closed (503), open (no limits) or local:SHARE (each replica enforces SHARE of each limit, such as local:1/3 for three replicas, and goes back to Redis by itself)")
	fs.DurationVar(&o.redisTimeout, "redis-timeout", redisDefaultTimeout, "with -redis, how long one rate-limit decision (and /health's PING under -redis-down closed) waits for Redis before the -redis-down policy decides")
	fs.StringVar(&o.dbURL, "db", "", "key database (sqlite:PATH or postgres://…); empty: the configuration's keys. See: gatehouse keys")
	fs.DurationVar(&o.usageFlush, "usage-flush", sqlstore.DefaultUsageFlushInterval, "with -db, how often each key's usage is added to the database (and at shutdown); a crash (SIGKILL) loses at most this much of it. 0: usage is not recorded. See: gatehouse usage")
	fs.StringVar(&o.adminAddr, "admin-addr", "", "address of the admin listener (/metrics and a live page), such as 127.0.0.1:9090; empty: none")
	fs.BoolVar(&o.adminPublic, "admin-public", false, "let -admin-addr be an address that is not loopback")
	fs.Var(&o.adminHosts, "admin-hosts", "host names the admin listener answers besides IP addresses and localhost, comma-separated (such as the name a proxy in front of it uses); any other Host gets 421")
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "log level: DEBUG, INFO, WARN or ERROR")
	fs.DurationVar(&o.logFlush, "log-flush", logbatch.DefaultFlush, "write the log to stderr in batches, each line at most this much later (one write(2) a batch, not a line); a crash (SIGKILL) loses at most this much of the log, SIGTERM and Ctrl-C nothing. 0: each line as it is logged")
	fs.DurationVar(&o.grace, "shutdown-grace", defaultGrace, "on SIGTERM or Ctrl-C, how long in-flight requests get to finish; then they are cut (a call waiting on an upstream answers the upstream's JSON 503) and the server has "+shutdownWrite.String()+" more to write the answers. A second signal stops at once. 0: cut at once")
	fs.BoolVar(&o.mint, "mint", false, "mint a new API key, print it and its config entry, and exit")
	fs.StringVar(&o.name, "name", "", "with -mint: the key's name")
	fs.StringVar(&o.products, "products", "", "with -mint (required): comma-separated product slugs the key may call, or * for every product")
	fs.IntVar(&o.perMinute, "per-minute", 0, "with -mint: requests per minute (0: the configured default)")
	fs.IntVar(&o.perDay, "per-day", 0, "with -mint: requests per day (0: the configured default)")
	fs.StringVar(&o.owner, "owner", "", "with -mint: the key's owner, whose allowance in \"owners\" its keys share")
	fs.StringVar(&o.windows, "windows", "", "with -mint: further windows as PERIOD=LIMIT, comma-separated: 1h=1000,720h=100000")
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	if o.logFlush < 0 {
		return nil, fmt.Errorf("-log-flush %v: must not be negative (0 writes each line as it is logged)", o.logFlush)
	}
	if o.redisTimeout <= 0 {
		return nil, fmt.Errorf("-redis-timeout %v: must be above 0", o.redisTimeout)
	}
	if o.usageFlush < 0 {
		return nil, fmt.Errorf("-usage-flush %v: must not be negative (0 records no usage)", o.usageFlush)
	}
	if o.grace < 0 {
		return nil, fmt.Errorf("-shutdown-grace %v: must not be negative (0 cuts in-flight requests at once)", o.grace)
	}
	if len(o.adminHosts) > 0 && o.adminAddr == "" {
		return nil, errors.New("-admin-hosts names the host names of the admin listener: give -admin-addr too")
	}
	if o.redisDown != (redisDown{}) && o.redisURL == "" {
		return nil, errors.New("-redis-down is a policy for -redis: without it the limits are in memory, which does not fail")
	}
	return o, nil
}

// run serves until ctx is done or a stop signal (SIGINT, SIGTERM) comes on
// signals, then shuts down gracefully (see shutdown); any other signal (SIGHUP,
// or nil) reloads the configuration. ready, if not nil, is called with the
// listening address. A stop signal during the start-up, or during a keys
// command, cancels what it is doing.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, signals <-chan os.Signal, ready func(addr string)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	endWatch := cancelOnStop(signals, cancel)
	defer endWatch()
	if len(args) > 0 && args[0] == "version" {
		return versionCommand(args[1:], stdout)
	}
	if len(args) > 0 && args[0] == "keys" {
		return keysCommand(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "config" {
		return configCommand(args[1:], stdout)
	}
	if len(args) > 0 && args[0] == "usage" {
		return usageCommand(ctx, args[1:], stdout, stderr)
	}
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg, err := loadConfig(o.configPath)
	if err != nil {
		return err
	}
	if o.mint {
		return mint(stdout, o, cfg)
	}

	// The log, one line a request, is written in batches: one write(2) per
	// -log-flush, not per line. Deferred first, the Close runs last, once the
	// server has shut down and everything else has stopped, so that every
	// line is on stderr when run returns.
	logs := logbatch.New(stderr, logbatch.Config{Flush: o.logFlush})
	defer logs.Close()
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: o.logLevel}))

	var demoBase string
	if o.demoUpstream {
		base, stop, err := demo.Serve()
		if err != nil {
			return err
		}
		defer stop()
		demoBase = base
	}

	gw, err := newGateway(ctx, cfg, o, demoBase, logger)
	if err != nil {
		return err
	}
	defer gw.Close()
	stopAdmin, err := serveAdmin(ctx, o, gw, stdout, logger)
	if err != nil {
		return err
	}
	defer stopAdmin()

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	srv := newServer(gw.Handler(), logger)
	// Every request's context is cut here when the shutdown's grace is over.
	requests, cut := context.WithCancel(context.Background())
	defer cut()
	srv.BaseContext = func(net.Listener) context.Context { return requests }
	addr := ln.Addr().String()
	printBanner(stdout, addr, o.configPath != "", o.configPath == "" && o.dbURL == "")
	if ready != nil {
		ready(addr)
	}

	reload := func() {
		next, err := loadConfig(o.configPath)
		if err == nil {
			err = gw.Apply(next)
		}
		if err != nil {
			logger.Error("reload failed; the previous configuration stays", "err", err)
			return
		}
		logger.Info("configuration reloaded", "keys", len(next.Keys), "products", len(next.Products))
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if endWatch() { // from here the loop reads the signals
		reload() // one came during the start-up
	}
	for {
		select {
		case err := <-served:
			return err
		case s := <-signals:
			if isStop(s) {
				return shutdown(srv, gw, cut, o.grace, signals, logger)
			}
			reload()
		case <-ctx.Done():
			return shutdown(srv, gw, cut, o.grace, signals, logger)
		}
	}
}

// newServer returns the gateway's http.Server with the timeouts above.
func newServer(h http.Handler, logger *slog.Logger) *http.Server {
	s := serving.NewServer(h)
	s.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	return s
}

// printBanner writes where the gateway listens, its pid and how to stop it,
// and with a configuration file (reloadable) how to reload it: without one
// the gateway serves the built-in demo and there is nothing to reload. With
// showDemo, the demo's keys follow.
func printBanner(w io.Writer, addr string, reloadable, showDemo bool) {
	fmt.Fprintf(w, "gatehouse listening on http://%s\n", addr)
	// The pid of this process, not of go run: SIGHUP to go run kills it and
	// leaves this server running on its own.
	pid := os.Getpid()
	if reloadable {
		fmt.Fprintf(w, "pid %d: reload the configuration with  kill -HUP %d  (stop: Ctrl-C or kill %d)\n", pid, pid, pid)
	} else {
		fmt.Fprintf(w, "pid %d: stop with Ctrl-C or kill %d\n", pid, pid)
	}
	if !showDemo {
		return
	}
	demo.PrintKeys(w, addr)
}
