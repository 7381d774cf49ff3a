// Command load drives the gatehouse gateway with a realistic mix of traffic on
// loopback, checks that every answer is one the contract (docs/contract.md)
// allows, and prints throughput, p50/p99 latency and the count of each status
// per kind of request.
// It is bounded in requests, seconds and concurrency, and stops by itself.
//
// By default it builds the gatehouse command from cmd/gatehouse of the
// repository it is in (go build -C cmd/gatehouse; see -gateway-src), writes a
// configuration with keys it mints itself (a "bulk" key whose limits
// are never reached, a key scoped to one product, a "small" key allowed 5
// requests a minute, a disabled and an expired key), starts the gateway as a
// child process on 127.0.0.1:0 and stops it at the end. The configuration
// keeps the demo products and adds two whose upstreams the tool controls: a
// slow one (one call in ten answers after the gateway's 200 ms timeout) and a
// down one (a loopback port nobody listens on).
//
// The mix, and the statuses each kind of request may get:
//
//	valid          60%  bulk key, good body                    200
//	over-limit      8%  small key (5/min)                      200 or 429, at most 5 + 5/min 200s
//	invalid-key     8%  unknown, disabled, expired, malformed  401
//	bad-body        6%  missing field, not JSON, text/plain    400, 415
//	wrong-scope     4%  key not scoped to the product          403
//	unknown-prod    4%  unknown or inactive product            404
//	misconfigured   2%  upstream answers 401                   502
//	broken          2%  upstream answers 500                   500, or 503 once the breaker opens
//	overloaded      2%  upstream answers 503                   503
//	slow            3%  upstream sometimes too slow            200, 503
//	down            1%  upstream refuses connections           503
//
// Every answer must also be JSON, and a 429 must carry Retry-After. The tool
// exits 1 if any answer has a status its kind does not allow, if any request
// got no answer, or if the number of answers is not the number of requests
// sent; 2 on bad flags.
//
// Flags:
//
//	-requests N     requests per run (default 20000)
//	-duration D     time bound per run (default 10s, at most 5m)
//	-concurrency N  concurrent requests (default 32, at most 1024)
//	-target URL     drive an already running gateway instead (loopback only);
//	                it must run the built-in demo configuration (gatehouse
//	                without -config or -db), whose keys allow 60 a minute, so
//	                every keyed request may get 429
//	-compare        also run the valid requests alone (same count, same
//	                concurrency) against gateways and bare servers, each its
//	                own process, in three interleaved trials, and print the
//	                medians of: a gateway serving only the product in its own
//	                process ("inprocess:calculate", started for the purpose) /
//	                a bare net/http server answering the same product: the
//	                stack's whole cost, the ratio with the 0.9 target; with
//	                -log-level INFO, that gateway / a bare server writing the
//	                same request line (gatehouse.RequestLog): the stack's cost
//	                without the line's; the contract's floor (that line and
//	                the four X-RateLimit headers, nothing checked) / bare:
//	                the most any gateway of this contract can reach; the
//	                gateway / the floor: what its checks cost; the gateway
//	                under test (product behind its upstream proxy, a second
//	                hop) / the bare server; and the gateway under test / a
//	                bare httputil.ReverseProxy making the same second hop.
//	                Each server's CPU time per request, and this tool's
//	                (from /proc), are printed beside its throughput
//	-log-level L    the gateways' -log-level (default ERROR: no request log;
//	                INFO: a line per request, the gatehouse command's default)
//	-redis-compare  with -compare: also start a redis-server on loopback and a
//	                gateway on it (-redis), the product in its process as the
//	                first gateway of -compare, and print the median ratio of its
//	                throughput to the memory-backed one's, with the script
//	                calls, commands and round trips (reads) Redis counted per
//	                request (INFO stats and commandstats)
//	-usage-compare  with -compare: also start two gateways on a SQLite key
//	                database (-db), the product in their process, one
//	                recording usage (-usage-flush 10s) and one not (0), and
//	                print the median ratio of their throughputs
//	-rate R         send the mix as an open load: R requests a second on a
//	                fixed schedule, each sent when due whether or not the
//	                ones before it were answered, its latency counted from
//	                when it was due (no coordinated omission); -requests and
//	                -duration bound the schedule, -concurrency the requests
//	                in flight (a request due past it waits for one to
//	                return, and its wait counts in its latency). Default 0:
//	                closed loop, -concurrency workers each waiting for its
//	                answer
//	-open-compare   measure latency under open load: start a bare net/http
//	                server as upstream, a bare httputil.ReverseProxy and a
//	                gateway in front of it (and with -redis-compare a gateway
//	                on Redis), take the proxy's capacity (its median
//	                closed-loop throughput over three runs of -requests at
//	                -concurrency), then at each -open-percents of it send
//	                each server an open load for -open-duration, in three
//	                interleaved trials, and print the medians of its p50,
//	                p99 and p99.9, and its 503s ("open-point"
//	                lines, which cmd/openreport turns into BENCHMARKS.md's
//	                table and plot), and the gateways' p99 ÷ the proxy's. A
//	                valid request may get 200 or 503 (a gateway whose Redis
//	                decisions run past -redis-timeout answers 503), any
//	                other status fails the run
//	-open-percents L  with -open-compare: percents of capacity (default
//	                25,50,75,90)
//	-open-duration D  with -open-compare: the schedule of each trial
//	                (default 5s, 100ms to 1m)
//	-soak D         run the mix in rounds for D (at most 30m) and sample the
//	                gateway's RSS, threads and open files after each round
//	-pid N          with -target and -soak: the gateway's process id
//	-gateway PATH   a prebuilt gatehouse binary (default: build it from
//	                -gateway-src)
//	-gateway-src DIR  the gatehouse command's module directory to build
//	                the gateway from (default: ../../cmd/gatehouse from this
//	                tool's source, as the compiler recorded its path; give it
//	                for a binary built with -trimpath)
//
// The figures of docs/reliability.md come from, in benchmarks/ (a module of
// its own):
//
//	go run ./load                           # the mix: 20,000 requests, 32 at a time
//	go run ./load -compare                  # the ratio to a bare net/http server
//	./run.sh                                # all the ratios of BENCHMARKS.md (-compare -log-level INFO -redis-compare -usage-compare)
//	go run ./load -open-compare -redis-compare  # latency under an open load (run.sh too)
//	go run ./load -soak 5m                  # flatness over five minutes
//	GOWORK=off go test -race ./load         # the short run CI makes
//
// All three processes (the tool, the gateway, the demo upstream inside the
// gateway) share the machine's cores, so the figures are the machine's, not
// the gateway's alone; the tool prints them as measured.
//
// Soak: the first round, or the first fifth of the soak if longer, is warm-up;
// the sample after it is the baseline. The soak fails if, at the last round,
// the gateway's RSS exceeds 1.5 × baseline + 16 MiB, or its open files exceed
// baseline + 20, or its threads exceed baseline + 20. The gateway is a child
// process, so the tool measures what the kernel reports (RSS, threads, file
// descriptors) rather than Go's heap and goroutines: a goroutine leak shows
// as growing RSS, a connection leak as growing descriptors.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/errorsjson"
	"github.com/gatehouse-go/gatehouse/internal/cli"
	"github.com/gatehouse-go/gatehouse/internal/logbatch"
	"github.com/gatehouse-go/gatehouse/internal/serving"
)

// Caps on the flags: the tool stops by itself, whatever it is asked.
const (
	maxRequests    = 10_000_000
	maxDuration    = 5 * time.Minute
	maxConcurrency = 1024
	maxSoak        = 30 * time.Minute
)

// Soak bounds, documented above.
const (
	soakRSSFactor   = 1.5
	soakRSSSlackKB  = 16 << 10
	soakFDSlack     = 20
	soakThreadSlack = 20
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == serveBareArg {
		os.Exit(serveBare(ctx, os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// serveBareArg, as the first argument, makes the tool a bare server for
// -compare instead (see startBare); it is not for people to type.
const (
	serveBareArg  = "-internal-serve-bare"
	requestLogArg = "-request-log" // after serveBareArg: log each request
	// floorArg, after requestLogArg: also write the contract's headers.
	floorArg   = "-contract-headers"
	bareBanner = "bare server listening on http://"
)

// serveBare serves bareHandler on 127.0.0.1:0, or, given a URL, a bare
// httputil.ReverseProxy to it, until ctx is done. With requestLogArg first,
// it writes the gateway's request line for each request, as the gateway
// does at -log-level INFO: gatehouse.RequestLog inside errorsjson.RequestID,
// a text line to stderr, batched as the gatehouse command's -log-flush default. With
// floorArg next, it is the contract's floor (see contractHeaders).
func serveBare(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var h http.Handler = bareHandler()
	if len(args) > 0 && args[0] == requestLogArg {
		args = args[1:]
		if len(args) > 0 && args[0] == floorArg {
			h = contractHeaders(h)
			args = args[1:]
		}
		lines := logbatch.New(stderr, logbatch.Config{Flush: logbatch.DefaultFlush})
		defer lines.Close()
		h = errorsjson.RequestID(gatehouse.RequestLog(slog.New(slog.NewTextHandler(lines, nil)))(h))
	}
	if len(args) == 1 {
		up, err := url.Parse(args[0])
		if err != nil || checkLoopback(args[0]) != nil {
			fmt.Fprintln(stderr, "load: bare proxy: upstream must be a loopback http URL:", args[0])
			return 2
		}
		rp := httputil.NewSingleHostReverseProxy(up)
		rp.Transport = &http.Transport{MaxIdleConnsPerHost: maxConcurrency, DisableCompression: true}
		h = rp
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(stderr, "load:", err)
		return 1
	}
	// The gateway's server settings, so that the comparison is of the stack.
	s := serving.NewServer(h)
	fmt.Fprintln(stdout, bareBanner+ln.Addr().String())
	go func() {
		<-ctx.Done()
		s.Shutdown(context.Background())
	}()
	if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(stderr, "load:", err)
		return 1
	}
	return 0
}

// contractHeaders writes, before next answers, the headers the seed contract
// puts on every answer to a key: its minute's and its day's limit and what
// is left, formatted as the gateway formats them, with fixed values and no
// check behind them. Inside the request line, it is the contract's floor:
// what any gateway of this contract must write a request, at no cost of
// deciding it, so that floor ÷ bare is the most any such gateway can reach
// against a bare server, and gateway ÷ floor is what the checks cost.
// compare makes sure the gateway answers with the same header names.
func contractHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Ratelimit-Limit"] = []string{strconv.Itoa(bulkPerMinute)}
		h["X-Ratelimit-Remaining"] = []string{strconv.Itoa(bulkPerMinute - 1)}
		h["X-Ratelimit-Daily-Limit"] = []string{strconv.Itoa(bulkPerDay)}
		h["X-Ratelimit-Daily-Remaining"] = []string{strconv.Itoa(bulkPerDay - 1)}
		next.ServeHTTP(w, r)
	})
}

type options struct {
	bounds
	target  string
	compare bool
	// logLevel is the gateways' -log-level; redisCompare adds a Redis-backed
	// gateway to -compare.
	logLevel     string
	redisCompare bool
	// usageCompare adds two gateways on a SQLite key database to -compare:
	// usage recorded (-usage-flush 10s) and not (0).
	usageCompare bool
	// rate, if above 0, sends the mix as an open load (see openDrive).
	rate float64
	// openCompare measures latency under open load (see openCompare) at
	// openPercents of capacity, openDuration each.
	openCompare  bool
	openPercents []float64
	openDuration time.Duration
	soak         time.Duration
	pid          int
	gateway      string
	gatewaySrc   string
	seed         uint64
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := cli.FlagSet("load", stderr)
	fs.IntVar(&o.requests, "requests", 20000, "requests per run")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "time bound per run (at most 5m)")
	fs.IntVar(&o.concurrency, "concurrency", 32, "concurrent requests (at most 1024)")
	fs.StringVar(&o.target, "target", "", "URL of a running gateway with the demo configuration (loopback only); empty: start one")
	fs.BoolVar(&o.compare, "compare", false, "compare the gateway's throughput with a bare net/http server's")
	fs.StringVar(&o.logLevel, "log-level", "ERROR", "the gateways' -log-level: ERROR logs no request, INFO a line per request")
	fs.BoolVar(&o.redisCompare, "redis-compare", false, "with -compare or -open-compare: also measure a gateway on a redis-server the tool starts on loopback")
	fs.BoolVar(&o.usageCompare, "usage-compare", false, "with -compare: also measure two gateways on a SQLite key database, recording usage and not")
	fs.Float64Var(&o.rate, "rate", 0, "send the mix as an open load of this many requests a second (0: closed loop)")
	fs.BoolVar(&o.openCompare, "open-compare", false, "measure the latency of the gateway and a bare proxy under open loads at -open-percents of the proxy's capacity")
	percents := fs.String("open-percents", "25,50,75,90", "with -open-compare: percents of capacity, increasing")
	fs.DurationVar(&o.openDuration, "open-duration", 5*time.Second, "with -open-compare: the length of each trial's schedule (100ms to 1m)")
	fs.DurationVar(&o.soak, "soak", 0, "run the mix in rounds for this long (at most 30m), sampling the gateway process")
	fs.IntVar(&o.pid, "pid", 0, "with -target and -soak: the gateway's process id")
	fs.StringVar(&o.gateway, "gateway", "", "a prebuilt gatehouse binary (default: build it from -gateway-src)")
	fs.StringVar(&o.gatewaySrc, "gateway-src", defaultGatewaySource(), "the directory of the gatehouse command's module (cmd/gatehouse of a clone) to build the gateway from")
	fs.Uint64Var(&o.seed, "seed", uint64(time.Now().UnixNano()), "seed of the mix")
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	switch {
	case o.requests < 1 || o.requests > maxRequests:
		return nil, fmt.Errorf("-requests must be 1..%d", maxRequests)
	case o.duration <= 0 || o.duration > maxDuration:
		return nil, fmt.Errorf("-duration must be positive and at most %v", maxDuration)
	case o.concurrency < 1 || o.concurrency > maxConcurrency:
		return nil, fmt.Errorf("-concurrency must be 1..%d", maxConcurrency)
	case o.soak < 0 || o.soak > maxSoak:
		return nil, fmt.Errorf("-soak must be at most %v", maxSoak)
	case o.redisCompare && (!o.compare && !o.openCompare || o.target != ""):
		return nil, errors.New("-redis-compare is a part of -compare or -open-compare, on gateways the tool starts (not with -target)")
	case o.usageCompare && (!o.compare || o.target != ""):
		return nil, errors.New("-usage-compare is a part of -compare, on gateways the tool starts (not with -target)")
	case math.IsNaN(o.rate) || o.rate < 0 || o.rate > maxRate:
		return nil, fmt.Errorf("-rate must be 0 (closed loop) or a rate up to %d requests a second", maxRate)
	case o.rate > 0 && o.soak > 0:
		return nil, errors.New("-rate is for one run of the mix, not -soak")
	case o.openCompare && o.target != "":
		return nil, errors.New("-open-compare runs on gateways the tool starts (not with -target)")
	case o.openDuration < minOpenPointDuration || o.openDuration > maxOpenPointDuration:
		return nil, fmt.Errorf("-open-duration must be %v to %v", minOpenPointDuration, maxOpenPointDuration)
	}
	var err error
	if o.openPercents, err = parsePercents(*percents); err != nil {
		return nil, err
	}
	switch strings.ToUpper(o.logLevel) {
	case "DEBUG", "INFO", "WARN", "ERROR":
	default:
		return nil, fmt.Errorf("-log-level %q: want DEBUG, INFO, WARN or ERROR", o.logLevel)
	}
	if o.target != "" {
		if err := checkLoopback(o.target); err != nil {
			return nil, err
		}
		o.target = strings.TrimSuffix(o.target, "/")
	}
	return o, nil
}

// run is the command; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "load:", err)
		return 2
	}
	ok, err := load(ctx, o, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "load:", err)
		return 1
	}
	if !ok {
		fmt.Fprintln(stdout, "FAIL")
		return 1
	}
	fmt.Fprintln(stdout, "PASS")
	return 0
}

// load sets up the gateway (or takes -target), runs what o asks and reports
// whether every check passed.
func load(ctx context.Context, o *options, w io.Writer) (bool, error) {
	base, k, own, pid := o.target, demoKeys(), false, o.pid
	var gw *process
	var bin, inProcessConfig string // for -compare's own gateway
	var dir string
	if o.target == "" {
		var err error
		dir, err = os.MkdirTemp("", "gatehouse-load-")
		if err != nil {
			return false, err
		}
		defer os.RemoveAll(dir)
		bin = o.gateway
		if bin == "" {
			if bin, err = buildGateway(ctx, o.gatewaySrc, dir); err != nil {
				return false, err
			}
		}
		setup, err := writeConfig(dir, bin)
		if err != nil {
			return false, err
		}
		defer setup.Close()
		inProcessConfig = setup.inProcessConfigPath
		gw, err = startGateway(bin, setup.configPath, o.logLevel)
		if err != nil {
			return false, err
		}
		defer gw.stop()
		base, k, own, pid = "http://"+gw.addr, setup.keys, true, gw.cmd.Process.Pid
		fmt.Fprintf(w, "gateway: %s (pid %d), in-memory store, -log-level %s\n", base, pid, o.logLevel)
	} else {
		fmt.Fprintf(w, "gateway: %s (-target: demo configuration assumed)\n", base)
	}
	fmt.Fprintf(w, "bounds: %d requests, %v, %d at a time (per run); seed %d\n", o.requests, o.duration, o.concurrency, o.seed)
	client := newClient(o.concurrency)
	defer client.CloseIdleConnections()

	ok := true
	if o.soak > 0 {
		if pid == 0 {
			return false, errors.New("-soak with -target needs -pid")
		}
		ok = soak(ctx, client, base, k, own, o, pid, gw, w)
	} else if o.rate > 0 {
		rep := openDrive(ctx, client, base, "mix", mix(k, own), o.rate, o.bounds, o.seed)
		rep.print(w)
		ok = len(rep.failures) == 0
	} else {
		rep := drive(ctx, client, base, "mix", mix(k, own), o.bounds, o.seed)
		rep.print(w)
		ok = len(rep.failures) == 0
	}
	if o.compare {
		var local, onRedis *process
		if own {
			// The stack alone: a gateway of its own, answering the product in
			// its process, with no upstream and no other traffic behind it.
			l, err := startGateway(bin, inProcessConfig, o.logLevel, "-demo-upstream=false")
			if err != nil {
				return false, err
			}
			defer l.stop()
			local = l
		}
		if o.redisCompare {
			// The same gateway with its rate limits in Redis, on a
			// redis-server on loopback.
			rs, err := startRedis()
			if err != nil {
				return false, err
			}
			defer rs.stop()
			r, err := startGateway(bin, inProcessConfig, o.logLevel, "-demo-upstream=false", "-redis", rs.url())
			if err != nil {
				return false, err
			}
			defer r.stop()
			r.redis = rs
			onRedis = r
			fmt.Fprintf(w, "redis-compare: redis-server on %s\n", rs.addr)
		}
		var usage *usagePair
		if o.usageCompare {
			u, err := startUsagePair(ctx, bin, inProcessConfig, dir, o.logLevel)
			if err != nil {
				return false, err
			}
			defer u.stop()
			usage = u
		}
		ok = compare(ctx, client, base, local, onRedis, usage, k, o, w) && ok
	}
	if o.openCompare {
		open, err := openCompare(ctx, bin, inProcessConfig, dir, k, o, w)
		if err != nil {
			return false, err
		}
		ok = open && ok
	}
	if gw != nil {
		if exited, err := gw.exited(); exited {
			fmt.Fprintf(w, "FAIL gateway exited during the run: %v\n%s", err, gw.stderr)
			ok = false
		}
	}
	return ok, ctx.Err()
}

func newClient(concurrency int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil, // loopback: never through a proxy from the environment
			MaxIdleConns:        concurrency,
			MaxIdleConnsPerHost: concurrency,
			DisableCompression:  true,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		},
		// A request the gateway never answers is a failure, not a hang.
		Timeout: 30 * time.Second,
	}
}

// compare runs the valid requests alone, the same number at the same
// concurrency, against the gateway (its product in its process, and behind its
// upstream proxy), against a bare net/http server that answers the product
// itself, and against a bare httputil.ReverseProxy in front of such a server
// (the same two hops as the proxied gateway, without the stack), and prints
// the ratios. With request lines on, it also measures a bare server writing
// the same line, and the contract's floor (see contractHeaders). onRedis, if
// set, is local's configuration with its limits in Redis, measured beside
// local.
func compare(ctx context.Context, client *http.Client, base string, local, onRedis *process, usage *usagePair, k keys, o *options, w io.Writer) bool {
	proxied := []*class{validClass(k)}
	inProcess := []*class{validClassFor(k, inProcessProduct)}
	// The servers, in the order each trial measures them.
	var servers []*contender
	var started []*process
	defer func() {
		for _, p := range started {
			p.stop()
		}
	}()
	add := func(id, label string, p *process, classes []*class) {
		servers = append(servers, &contender{id: id, label: label, base: "http://" + p.addr, pid: p.cmd.Process.Pid, classes: classes, redis: p.redis})
	}
	addBare := func(id, label string, args ...string) bool {
		p, err := startBare(args...)
		if err != nil {
			fmt.Fprintln(w, "FAIL compare:", err)
			return false
		}
		started = append(started, p)
		add(id, label, p, proxied)
		return true
	}
	if local != nil {
		add("local", "gateway, product in process (valid key only)", local, inProcess)
	}
	if onRedis != nil {
		add("redis", "gateway on Redis, product in process (valid key only)", onRedis, inProcess)
	}
	if usage != nil {
		dbKey := []*class{validClassFor(keys{bulk: usage.key}, inProcessProduct)}
		add("usageOff", "gateway on SQLite keys, usage off, product in process (valid key only)", usage.off, dbKey)
		add("usageOn", "gateway on SQLite keys, usage on, product in process (valid key only)", usage.on, dbKey)
	}
	if !addBare("bare", "bare net/http") {
		return false
	}
	if o.requestLines() && (!addBare("bareLog", "bare net/http with the request line", requestLogArg) ||
		!addBare("floor", "the contract's floor: bare net/http with the request line and the contract's headers", requestLogArg, floorArg)) {
		return false
	}
	servers = append(servers, &contender{id: "upstream", label: "gateway, product upstream (valid key only)", base: base, classes: proxied})
	if !addBare("proxy", "bare httputil.ReverseProxy → upstream", byID(servers, "bare").base) {
		return false
	}

	// Warm each up (connections, the gateway's upstream pool) before measuring.
	warm := bounds{requests: min(o.requests, 1000), duration: 5 * time.Second, concurrency: o.concurrency}
	for _, c := range servers {
		drive(ctx, client, c.base, "warm-up", c.classes, warm, o.seed)
	}
	if l, f := byID(servers, "local"), byID(servers, "floor"); l != nil && f != nil {
		if err := sameHeaderNames(ctx, client, l.base, f.base, k); err != nil {
			fmt.Fprintln(w, "FAIL compare: the contract's floor is not the gateway's answer:", err)
			return false
		}
	}
	// Three trials, interleaved, so that a burst of other work on the machine
	// lands on every server alike; the ratios are the medians.
	ok := true
	throughput := make(map[string][]float64, len(servers))
	var redisScripts, redisCommands, redisTrips []float64 // per request answered, each trial
	for trial := 1; trial <= compareTrials && ctx.Err() == nil; trial++ {
		fmt.Fprintf(w, "compare, trial %d of %d:\n", trial, compareTrials)
		for _, c := range servers {
			var before redisCounts
			var countErr error
			if c.redis != nil {
				before, countErr = c.redis.counts()
			}
			rep := measure(w, c.pid, func() *report {
				return drive(ctx, client, c.base, c.label, c.classes, o.bounds, o.seed)
			})
			if c.redis != nil && countErr == nil && rep.answered > 0 {
				if after, err := c.redis.counts(); err == nil {
					n := float64(rep.answered)
					// Less the INFO of the first reading, counted by the second.
					scripts := float64(after.scripts-before.scripts) / n
					commands, trips := float64(after.commands-before.commands-1)/n, float64(after.reads-before.reads-1)/n
					redisScripts, redisCommands, redisTrips = append(redisScripts, scripts), append(redisCommands, commands), append(redisTrips, trips)
					fmt.Fprintf(w, "  Redis per request: %.3f script calls (%.3f commands with those they make), %.3f round trips\n", scripts, commands, trips)
				}
			}
			ok = ok && len(rep.failures) == 0
			throughput[c.id] = append(throughput[c.id], rep.throughput())
		}
	}
	redisNote := "Redis per request: not measured"
	if len(redisTrips) > 0 {
		redisNote = fmt.Sprintf("Redis per request: %.3f script calls (%.3f commands with those they make), %.3f round trips, medians",
			median(redisScripts), median(redisCommands), median(redisTrips))
	}
	for _, r := range []struct{ of, to, name, note string }{
		{"local", "bare", "gateway/bare throughput, product in process", fmt.Sprintf("target ≥ 0.90, -log-level %s; each a process serving only the product: the stack's cost", o.logLevel)},
		{"local", "bareLog", "gateway/bare-with-the-request-line throughput, product in process", "both write the same line a request: the stack's cost without the line's"},
		{"floor", "bare", "contract-floor/bare throughput", "the line and the four X-RateLimit headers, nothing checked: the most any gateway of this contract can reach against bare"},
		{"local", "floor", "gateway/contract-floor throughput, product in process", "both write the same line and headers: what the checks cost"},
		{"redis", "local", "gateway-on-Redis/gateway-in-memory throughput, product in process", redisNote + "; decisions in flight at once share a round trip to a redis-server on loopback"},
		{"usageOn", "usageOff", "gateway-usage-on/gateway-usage-off throughput, product in process", "keys in SQLite; usage counted in memory, written every 10 s"},
		{"upstream", "bare", "gateway/bare throughput, product upstream", "the gateway makes a second hop the bare server does not"},
		{"upstream", "proxy", "gateway/bare-proxy throughput", "both make the second hop: the stack's cost in front of a proxy"},
	} {
		if ratios := trialRatios(throughput[r.of], throughput[r.to]); len(ratios) > 0 {
			fmt.Fprintf(w, "ratio %s: %.2f, median of %.2f (%s)\n", r.name, median(ratios), ratios, r.note)
		}
	}
	return ok
}

const compareTrials = 3

// contender is a server compare measures: id names it in the ratios, label
// in the reports; pid, if not 0, is its process, whose CPU time is reported.
type contender struct {
	id, label, base string
	pid             int
	classes         []*class
	redis           *redisServer // the Redis it keeps its limits in, whose counts are reported
}

// byID returns the contender of servers named id, or nil.
func byID(servers []*contender, id string) *contender {
	for _, c := range servers {
		if c.id == id {
			return c
		}
	}
	return nil
}

// trialRatios returns of[i]/to[i] for each trial i that both measured, with
// a throughput above zero.
func trialRatios(of, to []float64) []float64 {
	var r []float64
	for i := range min(len(of), len(to)) {
		if of[i] > 0 && to[i] > 0 {
			r = append(r, of[i]/to[i])
		}
	}
	return r
}

// sameHeaderNames sends the same valid request to the gateway at gateway and
// to the contract's floor at floor, and returns an error unless both answer
// 200 with the same header names and as long a body: the floor's ratio
// holds only while it writes what the gateway writes.
func sameHeaderNames(ctx context.Context, client *http.Client, gateway, floor string, k keys) error {
	method, path, h, body := validClassFor(k, inProcessProduct).build(rand.New(rand.NewPCG(1, 2)))
	answer := func(base string) ([]string, int, error) {
		req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
		if err != nil {
			return nil, 0, err
		}
		req.Header = h
		resp, err := client.Do(req)
		if err != nil {
			return nil, 0, err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil {
			return nil, 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, 0, fmt.Errorf("%s answered %d, want 200", base, resp.StatusCode)
		}
		return slices.Sorted(maps.Keys(resp.Header)), int(n), nil
	}
	gw, gwLen, err := answer(gateway)
	if err != nil {
		return err
	}
	fl, flLen, err := answer(floor)
	if err != nil {
		return err
	}
	if !slices.Equal(gw, fl) || gwLen != flLen {
		return fmt.Errorf("the gateway answers with headers %q and %d bytes, the floor with %q and %d", gw, gwLen, fl, flLen)
	}
	return nil
}

// measure runs drive, prints its report and, if pid is known, the CPU time
// the server process pid and this tool spent per request answered. The
// tool's own counts: it shares the machine's cores with the server, so an
// answer that costs it more to read lowers the server's throughput too.
func measure(w io.Writer, pid int, drive func() *report) *report {
	var before time.Duration
	if pid != 0 {
		before, _ = cpuTime(pid)
	}
	selfBefore, selfErr := cpuTime(os.Getpid())
	rep := drive()
	rep.print(w)
	selfAfter, _ := cpuTime(os.Getpid())
	if pid != 0 {
		after, err := cpuTime(pid)
		if n := time.Duration(rep.answered); err == nil && selfErr == nil && n > 0 {
			fmt.Fprintf(w, "  CPU per request: server %v, this tool %v\n", (after-before)/n, (selfAfter-selfBefore)/n)
		}
	}
	return rep
}

// requestLines reports whether the gateways write a line a request: at
// -log-level INFO or DEBUG.
func (o *options) requestLines() bool {
	switch strings.ToUpper(o.logLevel) {
	case "DEBUG", "INFO":
		return true
	}
	return false
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// soak runs the mix in rounds until o.soak has passed and samples the gateway
// process after each; see the package comment for the bounds.
func soak(ctx context.Context, client *http.Client, base string, k keys, own bool, o *options, pid int, gw *process, w io.Writer) bool {
	start := time.Now()
	warmUp := max(o.soak/5, time.Nanosecond)
	ok := true
	var baseline, last procSample
	haveBaseline := false
	fmt.Fprintf(w, "%5s %8s %7s %8s %9s %5s %8s %7s %4s\n", "round", "elapsed", "sent", "req/s", "p99", "fail", "rss_MiB", "threads", "fds")
	for n := 1; ctx.Err() == nil; n++ {
		left := o.soak - time.Since(start)
		if left <= 0 {
			break
		}
		b := o.bounds
		b.duration = min(b.duration, left)
		rep := drive(ctx, client, base, fmt.Sprintf("round %d", n), mix(k, own), b, o.seed+uint64(n))
		if gw != nil {
			if exited, err := gw.exited(); exited {
				fmt.Fprintf(w, "FAIL gateway exited: %v\n%s", err, gw.stderr)
				return false
			}
		}
		s, err := sampleProc(pid)
		if err != nil {
			fmt.Fprintln(w, "FAIL sample:", err)
			return false
		}
		_, p99 := rep.percentiles(-1)
		mark := ""
		if !haveBaseline && time.Since(start) >= warmUp {
			baseline, haveBaseline, mark = s, true, "  ← baseline (after warm-up)"
		}
		last = s
		fmt.Fprintf(w, "%5d %8v %7d %8.0f %9v %5d %8.1f %7d %4d%s\n", n, time.Since(start).Round(time.Second),
			rep.sent, rep.throughput(), round(p99), len(rep.failures), float64(s.rssKB)/1024, s.threads, s.fds, mark)
		if len(rep.failures) > 0 {
			rep.print(w)
			ok = false
		}
	}
	if !haveBaseline {
		fmt.Fprintln(w, "soak too short: no round after warm-up")
		return false
	}
	fmt.Fprintf(w, "flatness, last round vs baseline: rss %.2f× (%.1f → %.1f MiB), threads %+d (%d → %d), fds %+d (%d → %d)\n",
		float64(last.rssKB)/float64(baseline.rssKB), float64(baseline.rssKB)/1024, float64(last.rssKB)/1024,
		last.threads-baseline.threads, baseline.threads, last.threads,
		last.fds-baseline.fds, baseline.fds, last.fds)
	if float64(last.rssKB) > soakRSSFactor*float64(baseline.rssKB)+soakRSSSlackKB {
		fmt.Fprintf(w, "FAIL rss grew past %.1f× baseline + %d MiB\n", soakRSSFactor, soakRSSSlackKB>>10)
		ok = false
	}
	if last.fds > baseline.fds+soakFDSlack {
		fmt.Fprintf(w, "FAIL open files grew by more than %d\n", soakFDSlack)
		ok = false
	}
	if last.threads > baseline.threads+soakThreadSlack {
		fmt.Fprintf(w, "FAIL threads grew by more than %d\n", soakThreadSlack)
		ok = false
	}
	return ok
}
