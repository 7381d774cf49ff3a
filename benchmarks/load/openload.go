package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Caps on the open load's flags.
const (
	maxRate              = 1_000_000
	minOpenPointDuration = 100 * time.Millisecond
	maxOpenPointDuration = time.Minute
)

// openReport is the report of an open-load run: the rate it was asked for,
// and how many requests were held past their due time because the cap of
// requests in flight was reached (their latency still counts from it).
type openReport struct {
	*report
	rate float64
	held int
}

// openDrive sends requests drawn from classes (by weight) to base at rate a
// second on a fixed schedule: request i is due at start + i/rate, and is sent
// then whether or not the requests before it were answered, so that a slow
// server does not slow the load down (no coordinated omission). Its latency
// counts from its due time, not from when it was sent: a request the pacer
// sent late (the machine busy, or b.concurrency requests already in flight,
// the cap; it then waits for one to return) carries the delay in its latency.
// The schedule holds min(b.requests, rate × b.duration) requests; the run
// ends when each is answered or has failed (the client's timeout bounds it),
// or at once if ctx is done, with what was sent.
func openDrive(ctx context.Context, client *http.Client, base, label string, classes []*class, rate float64, b bounds, seed uint64) *openReport {
	n := min(b.requests, int(rate*b.duration.Seconds()))
	results := make([]result, n)
	slots := make(chan struct{}, b.concurrency)
	var wg sync.WaitGroup
	timer := time.NewTimer(0)
	defer timer.Stop()
	held, sent := 0, 0
	start := time.Now()
pace:
	for i := range n {
		due := start.Add(time.Duration(float64(i) * float64(time.Second) / rate))
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				break pace
			}
		}
		select {
		case slots <- struct{}{}:
		default:
			held++
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				break pace
			}
		}
		sent++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			rnd := rand.New(rand.NewPCG(seed, uint64(i)))
			one(client, base, classes, pickClass(rnd, classes), rnd, &results[i], due)
		}()
	}
	wg.Wait()
	return &openReport{report: finish(label, classes, results[:sent], time.Since(start)), rate: rate, held: held}
}

// print writes the open load's figures (p99.9, the requests held), then the
// report's (per class, and at most 20 failures).
func (r *openReport) print(w io.Writer) {
	q := r.quantiles(-1, 0.50, 0.99, 0.999)
	fmt.Fprintf(w, "%s: open load at %.0f req/s: %d sent (%d held by the cap on requests in flight), p50 %v, p99 %v, p99.9 %v\n",
		r.label, r.rate, r.sent, r.held, round(q[0]), round(q[1]), round(q[2]))
	r.report.print(w)
}

// loadAvg returns the machine's load averages over 1, 5 and 15 minutes, from
// /proc/loadavg: how much else ran beside the measurement.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// openPoint is one server's figures at one rate over the trials: the sums of
// the requests sent, answered, held and answered 503, and the p50, p99 and
// p99.9 of each trial, in nanoseconds.
type openPoint struct {
	sent, answered, held, n503 int
	q                          [3][]float64
}

// add counts the trial rep in.
func (p *openPoint) add(rep *openReport) {
	p.sent += rep.sent
	p.answered += rep.answered
	p.held += rep.held
	p.n503 += rep.count(0, http.StatusServiceUnavailable)
	for i, d := range rep.quantiles(-1, 0.50, 0.99, 0.999) {
		p.q[i] = append(p.q[i], float64(d))
	}
}

// median is the median over the trials of quantile i (0: p50, 1: p99, 2:
// p99.9), rounded for printing.
func (p *openPoint) median(i int) time.Duration { return round(time.Duration(median(p.q[i]))) }

// parsePercents reads -open-percents: a comma-separated list of percents of
// capacity, each above 0 and at most 100, in increasing order.
func parsePercents(s string) ([]float64, error) {
	var ps []float64
	for f := range strings.SplitSeq(s, ",") {
		p, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || math.IsNaN(p) || p <= 0 || p > 100 {
			return nil, fmt.Errorf("-open-percents %q: want percents of capacity above 0 and at most 100, such as 25,50,75,90", s)
		}
		if len(ps) > 0 && p <= ps[len(ps)-1] {
			return nil, fmt.Errorf("-open-percents %q: want increasing percents", s)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// openProduct is the product -open-compare's gateways serve, on the bare
// upstream the bare proxy also stands in front of.
const openProduct = "premium-calculator"

// writeOpenConfig writes to dir the configuration at inProcessConfigPath (the
// tool's keys) with one product, openProduct, whose upstream is the bare
// server at upstream, and returns its path.
func writeOpenConfig(inProcessConfigPath, dir, upstream string) (string, error) {
	data, err := os.ReadFile(inProcessConfigPath)
	if err != nil {
		return "", err
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		return "", err
	}
	cfg["products"] = []any{map[string]any{"slug": openProduct, "active": true, "required": []string{"Premium", "Age"},
		"upstream": map[string]any{"url": upstream + "/api/" + openProduct}}}
	if data, err = json.MarshalIndent(cfg, "", "  "); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "load-open-config.json")
	return path, os.WriteFile(path, data, 0o600)
}

// openCompare measures latency under an open load: it starts a bare net/http
// server (the upstream), a bare httputil.ReverseProxy in front of it, a
// gateway of bin in front of it, and with -redis-compare the same gateway on
// a redis-server it starts; takes the proxy's capacity (its median closed-loop
// throughput over three runs of o.bounds); then, at each of o.openPercents of
// it, drives each server with an open load for o.openDuration, in three
// interleaved trials (so that a burst of other work on the machine lands on
// every server alike), and prints each one's median over the trials of the
// p50, p99 and p99.9 of every answer, and its 503s (an "open-point" line
// each, which cmd/openreport reads), and the median ratio of the gateways'
// p99 to the proxy's.
func openCompare(ctx context.Context, bin, inProcessConfigPath, dir string, k keys, o *options, w io.Writer) (bool, error) {
	fmt.Fprintf(w, "open-loadavg before: %s\n", loadAvg())
	defer func() { fmt.Fprintf(w, "open-loadavg after: %s\n", loadAvg()) }()
	up, err := startBare()
	if err != nil {
		return false, err
	}
	defer up.stop()
	upstream := "http://" + up.addr
	cfg, err := writeOpenConfig(inProcessConfigPath, dir, upstream)
	if err != nil {
		return false, err
	}
	proxy, err := startBare(upstream)
	if err != nil {
		return false, err
	}
	defer proxy.stop()
	gw, err := startGateway(bin, cfg, o.logLevel, "-demo-upstream=false")
	if err != nil {
		return false, err
	}
	defer gw.stop()
	// Past its capacity, or when its Redis decisions run past their budget
	// (-redis-timeout) on a busy machine, a gateway answers 503: the
	// contract's answer, counted beside the latencies rather than failed.
	valid := validClassFor(k, openProduct)
	valid.allowed = []int{http.StatusOK, http.StatusServiceUnavailable}
	classes := []*class{valid}
	servers := []*contender{
		{id: "proxy", label: "bare httputil.ReverseProxy → upstream", base: "http://" + proxy.addr, classes: classes},
		{id: "gateway", label: "gateway → upstream", base: "http://" + gw.addr, classes: classes},
	}
	if o.redisCompare {
		rs, err := startRedis()
		if err != nil {
			return false, err
		}
		defer rs.stop()
		gr, err := startGateway(bin, cfg, o.logLevel, "-demo-upstream=false", "-redis", rs.url())
		if err != nil {
			return false, err
		}
		defer gr.stop()
		servers = append(servers, &contender{id: "redis", label: "gateway on Redis → upstream", base: "http://" + gr.addr, classes: classes})
	}

	closed := newClient(o.concurrency)
	defer closed.CloseIdleConnections()
	warm := bounds{requests: min(o.requests, 1000), duration: 5 * time.Second, concurrency: o.concurrency}
	for _, c := range servers {
		drive(ctx, closed, c.base, "warm-up", c.classes, warm, o.seed)
	}
	ok := true
	var runs []float64
	for range compareTrials {
		rep := drive(ctx, closed, servers[0].base, servers[0].label+", closed loop", classes, o.bounds, o.seed)
		rep.print(w)
		ok = ok && len(rep.failures) == 0
		runs = append(runs, rep.throughput())
	}
	capacity := median(runs)
	if !ok || capacity <= 0 {
		return false, errors.New("open-compare: the bare proxy's capacity could not be measured")
	}
	fmt.Fprintf(w, "open-compare: at %v%% of capacity, -open-duration %v a trial, three trials, at most %d requests in flight\n", o.openPercents, o.openDuration, maxConcurrency)
	fmt.Fprintf(w, "open-capacity %.0f req/s: %s, closed loop at %d connections, median of %.0f\n", capacity, servers[0].label, o.concurrency, runs)

	open := newClient(maxConcurrency)
	defer open.CloseIdleConnections()
	for _, pct := range o.openPercents {
		rate := capacity * pct / 100
		got := map[string]*openPoint{}
		for trial := 1; trial <= compareTrials; trial++ {
			for _, c := range servers {
				if ctx.Err() != nil {
					return false, ctx.Err()
				}
				rep := openDrive(ctx, open, c.base, fmt.Sprintf("%s, %g%% of capacity, trial %d of %d", c.label, pct, trial, compareTrials), c.classes, rate,
					bounds{requests: maxRequests, duration: o.openDuration, concurrency: maxConcurrency}, o.seed+uint64(trial))
				rep.print(w)
				ok = ok && len(rep.failures) == 0
				if got[c.id] == nil {
					got[c.id] = &openPoint{}
				}
				got[c.id].add(rep)
			}
		}
		for _, c := range servers {
			p := got[c.id]
			fmt.Fprintf(w, "open-point server=%s percent=%g rate=%.0f trials=%d sent=%d answered=%d held=%d status503=%d p50=%v p99=%v p99.9=%v\n",
				c.id, pct, rate, len(p.q[1]), p.sent, p.answered, p.held, p.n503, p.median(0), p.median(1), p.median(2))
		}
		for _, r := range []struct{ of, name, goal string }{
			{"gateway", "gateway/bare-proxy", "1.2"},
			{"redis", "gateway-on-Redis/bare-proxy", "1.5"},
		} {
			if got[r.of] == nil {
				continue
			}
			if ratios := trialRatios(got[r.of].q[1], got["proxy"].q[1]); len(ratios) > 0 {
				fmt.Fprintf(w, "ratio %s p99 at %g%% of capacity (%.0f req/s, open load): %.2f, median of %.2f (goal ≤ %s at 50%%)\n", r.name, pct, rate, median(ratios), ratios, r.goal)
			}
		}
	}
	return ok, nil
}
