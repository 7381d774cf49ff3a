package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A class is one kind of request in the mix: how to build it and which
// statuses the contract allows for it.
type class struct {
	name    string
	weight  int
	allowed []int
	// build returns the request's method, path, headers and body; r is the
	// worker's own random source.
	build func(r *rand.Rand) (method, path string, h http.Header, body []byte)
	// max200, if not nil, bounds the number of 200s the class may get after
	// elapsed (a key over its limit must not get more than its limit).
	max200 func(elapsed time.Duration) int
}

func (c *class) allows(status int) bool { return slices.Contains(c.allowed, status) }

// result is what one request got.
type result struct {
	class   int
	status  int // 0: no answer
	err     string
	latency time.Duration
	writes  atomic.Int32 // how many times the slot was written: must be 1
}

// report is the outcome of one load run.
type report struct {
	label    string
	classes  []*class
	sent     int
	answered int
	elapsed  time.Duration
	results  []result
	failures []string
}

// bounds are the limits of one run.
type bounds struct {
	requests    int
	duration    time.Duration
	concurrency int
}

// drive sends up to b.requests requests drawn from classes (by weight) to base
// with b.concurrency workers, and stops after b.duration whatever is left. It
// never sends a request it does not wait for: each worker finishes its
// request before it looks at the clock again.
func drive(ctx context.Context, client *http.Client, base, label string, classes []*class, b bounds, seed uint64) *report {
	results := make([]result, b.requests)
	var next atomic.Int64
	ctx, cancel := context.WithTimeout(ctx, b.duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range b.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(seed, uint64(w)))
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= b.requests {
					return
				}
				one(client, base, classes, pickClass(rnd, classes), rnd, &results[i], time.Time{})
			}
		}()
	}
	wg.Wait()
	return finish(label, classes, results[:min(int(next.Load()), b.requests)], time.Since(start))
}

// pickClass draws the index of a class of classes, by weight.
func pickClass(rnd *rand.Rand, classes []*class) int {
	total := 0
	for _, c := range classes {
		total += c.weight
	}
	pick := rnd.IntN(total)
	ci := 0
	for ; pick >= classes[ci].weight; ci++ {
		pick -= classes[ci].weight
	}
	return ci
}

// finish checks the results of the requests a run sent, in elapsed, and
// returns its report: every request recorded once and answered, with a
// status and shape its class allows, and no class over its 200s.
func finish(label string, classes []*class, results []result, elapsed time.Duration) *report {
	rep := &report{label: label, classes: classes, elapsed: elapsed, sent: len(results), results: results}
	for i := range rep.results {
		r := &rep.results[i]
		if n := r.writes.Load(); n != 1 {
			rep.fail(fmt.Sprintf("request %d: recorded %d times, want once", i, n))
			continue
		}
		if r.status == 0 {
			rep.fail(fmt.Sprintf("request %d (%s): no answer: %s", i, classes[r.class].name, r.err))
			continue
		}
		rep.answered++
		c := classes[r.class]
		if !c.allows(r.status) {
			rep.fail(fmt.Sprintf("request %d (%s): status %d, allowed %v", i, c.name, r.status, c.allowed))
		} else if r.err != "" {
			rep.fail(fmt.Sprintf("request %d (%s): status %d: %s", i, c.name, r.status, r.err))
		}
	}
	if rep.answered != rep.sent {
		rep.fail(fmt.Sprintf("%d requests sent, %d answered", rep.sent, rep.answered))
	}
	for ci, c := range classes {
		if c.max200 == nil {
			continue
		}
		n := rep.count(ci, http.StatusOK)
		if limit := c.max200(rep.elapsed); n > limit {
			rep.fail(fmt.Sprintf("%s: %d answers 200, its limit allows at most %d", c.name, n, limit))
		}
	}
	return rep
}

// one sends one request of class ci and records it in res. Its latency
// counts from from, the time it was due (an open load's schedule), or, if
// from is zero, from when it is sent.
func one(client *http.Client, base string, classes []*class, ci int, rnd *rand.Rand, res *result, from time.Time) {
	method, path, h, body := classes[ci].build(rnd)
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		panic(err) // the tool built a bad request: a bug here, not in the gateway
	}
	req.Header = h
	if from.IsZero() {
		from = time.Now()
	}
	resp, err := client.Do(req)
	res.class = ci
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	res.latency = time.Since(from)
	if err != nil {
		res.err = err.Error()
	} else {
		res.status = resp.StatusCode
		res.err = checkShape(resp)
	}
	res.writes.Add(1)
}

// checkShape checks what every answer must carry: a JSON body, and on a 429 a
// Retry-After.
func checkShape(resp *http.Response) string {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "application/json" {
		return fmt.Sprintf("Content-Type %q, want application/json", resp.Header.Get("Content-Type"))
	}
	if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
		return "429 without Retry-After"
	}
	return ""
}

func (r *report) fail(msg string) { r.failures = append(r.failures, msg) }

func (r *report) count(ci, status int) int {
	n := 0
	for i := range r.results {
		if r.results[i].class == ci && r.results[i].status == status {
			n++
		}
	}
	return n
}

// throughput is the answered requests a second.
func (r *report) throughput() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.answered) / r.elapsed.Seconds()
}

// percentiles returns the p50 and p99 latency of the answers of class ci (-1:
// every class).
func (r *report) percentiles(ci int) (p50, p99 time.Duration) {
	q := r.quantiles(ci, 0.50, 0.99)
	return q[0], q[1]
}

// quantiles returns the latency of the answers of class ci (-1: every class)
// at each quantile of qs (0.999: p99.9); zeros if none was answered.
func (r *report) quantiles(ci int, qs ...float64) []time.Duration {
	var ls []time.Duration
	for i := range r.results {
		if res := &r.results[i]; res.status != 0 && (ci < 0 || res.class == ci) {
			ls = append(ls, res.latency)
		}
	}
	out := make([]time.Duration, len(qs))
	if len(ls) == 0 {
		return out
	}
	slices.Sort(ls)
	for i, q := range qs {
		out[i] = ls[min(len(ls)-1, int(q*float64(len(ls))))]
	}
	return out
}

// print writes the run's figures and at most 20 of its failures.
func (r *report) print(w io.Writer) {
	p50, p99 := r.percentiles(-1)
	fmt.Fprintf(w, "%s: %d sent, %d answered in %v: %.0f req/s, p50 %v, p99 %v\n",
		r.label, r.sent, r.answered, r.elapsed.Round(time.Millisecond), r.throughput(), round(p50), round(p99))
	for ci, c := range r.classes {
		counts := map[int]int{}
		n := 0
		for i := range r.results {
			if r.results[i].class == ci {
				counts[r.results[i].status]++
				n++
			}
		}
		if n == 0 {
			continue
		}
		var parts []string
		for _, s := range slices.Sorted(maps.Keys(counts)) {
			label := fmt.Sprint(s)
			if s == 0 {
				label = "none"
			}
			parts = append(parts, fmt.Sprintf("%s×%d", label, counts[s]))
		}
		c50, c99 := r.percentiles(ci)
		fmt.Fprintf(w, "  %-14s %6d  allowed %-17s got %-28s p50 %-9v p99 %v\n",
			c.name, n, fmt.Sprint(c.allowed), strings.Join(parts, " "), round(c50), round(c99))
	}
	for i, f := range r.failures {
		if i == 20 {
			fmt.Fprintf(w, "  … and %d more failures\n", len(r.failures)-20)
			break
		}
		fmt.Fprintf(w, "  FAIL %s\n", f)
	}
}

func round(d time.Duration) time.Duration {
	switch {
	case d > 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}
