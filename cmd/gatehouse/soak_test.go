package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/internal/downport"
)

// soakKind is one kind of request of the soak's mix and the answers the
// contract allows for it, each as "status body" with the request id "soak".
type soakKind struct {
	name    string
	weight  int
	request func(r *rand.Rand) (path, key, contentType, body string)
	allowed func(status int, body string) bool
}

// soakMix is the realistic mix of benchmarks/load (docs/reliability.md):
// mostly forwarded successes with keys whose limits never run out, then every
// way a caller gets an error, over the demo products and one whose upstream is
// down. keys are bulk (every product, limits never reached), scoped
// (premium-calculator only), small (premium-calculator, 5 a minute) and the
// invalid ones (unknown, disabled, expired, malformed, none).
func soakMix(bulk, scoped, small string, invalid []string) []soakKind {
	errBody := func(msg string) string { return `{"error":"` + msg + `","request_id":"soak"}` + "\n" }
	is := func(want ...string) func(int, string) bool {
		return func(status int, body string) bool {
			got := fmt.Sprintf("%d %s", status, body)
			for _, w := range want {
				if got == w {
					return true
				}
			}
			return false
		}
	}
	valid := `{"inputs":{"Premium":1200,"Age":42}}`
	const quote = `{"response_data":{"outputs":{"AnnualPremium":1200,"MonthlyPremium":100}},"status":200}` + "\n"
	unavailable := "503 " + errBody("Upstream service temporarily unavailable")
	return []soakKind{
		{"valid", 60, func(*rand.Rand) (string, string, string, string) {
			return "/api/premium-calculator", bulk, "application/json", valid
		}, is("200 " + quote)},
		{"over-limit", 8, func(*rand.Rand) (string, string, string, string) {
			return "/api/premium-calculator", small, "application/json", valid
		}, is("200 "+quote, "429 "+errBody("Rate limit exceeded"))},
		{"invalid-key", 8, func(r *rand.Rand) (string, string, string, string) {
			return "/api/premium-calculator", invalid[r.IntN(len(invalid))], "application/json", valid
		}, is("401 "+errBody("Invalid or inactive API key"), "401 "+errBody("No API key provided"))},
		{"bad-body", 6, func(r *rand.Rand) (string, string, string, string) {
			if r.IntN(6) == 0 {
				return "/api/premium-calculator", bulk, "text/plain", valid
			}
			bodies := []string{`{"inputs":{"Premium":1200}}`, `{"inputs":[]}`, `{}`, `{"inputs":{"Premium":1200,`, `not json`}
			return "/api/premium-calculator", bulk, "application/json", bodies[r.IntN(len(bodies))]
		}, is("415 "+errBody("Content-Type must be application/json"), "400 "+errBody("Missing required input field: Age"),
			"400 "+errBody("inputs must be a JSON object"), "400 "+errBody("Missing inputs object"), "400 "+errBody("Request body is not valid JSON"))},
		{"wrong-scope", 4, func(*rand.Rand) (string, string, string, string) {
			return "/api/broken-calculator", scoped, "application/json", valid
		}, is("403 " + errBody("Your API key does not have access to this product"))},
		{"unknown-product", 4, func(r *rand.Rand) (string, string, string, string) {
			return "/api/" + []string{"no-such-calculator", "retired-calculator"}[r.IntN(2)], bulk, "application/json", valid
		}, is("404 " + errBody("Product not found"))},
		{"misconfigured", 2, func(*rand.Rand) (string, string, string, string) {
			return "/api/misconfigured-calculator", bulk, "application/json", valid
		}, is("502 " + errBody("Upstream service authentication failed"))},
		// The upstream answers 500; after 5 in a row the breaker opens and
		// the gateway answers 503 itself for its cool-down.
		{"broken", 2, func(*rand.Rand) (string, string, string, string) {
			return "/api/broken-calculator", bulk, "application/json", valid
		}, is("500 "+errBody("Internal server error"), unavailable)},
		{"overloaded", 2, func(*rand.Rand) (string, string, string, string) {
			return "/api/overloaded-calculator", bulk, "application/json", valid
		}, is(unavailable)},
		{"down", 1, func(*rand.Rand) (string, string, string, string) {
			return "/api/down-calculator", bulk, "application/json", valid
		}, is(unavailable)},
	}
}

// writeSoakConfig writes the demo configuration with keys of the soak's own
// and a product whose upstream is down, and returns its path and the keys.
func writeSoakConfig(t *testing.T) (path, bulk, scoped, small string, invalid []string) {
	t.Helper()
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	mint := func(id string, products []string, perMinute, perDay int) (string, keyConfig) {
		plain, k := auth.NewKey()
		return plain, keyConfig{ID: id, Hash: k.HashHex(), Products: products, PerMinute: perMinute, PerDay: perDay}
	}
	var entries [5]keyConfig
	bulk, entries[0] = mint("soak_bulk", []string{"*"}, 1_000_000_000, 1_000_000_000)
	scoped, entries[1] = mint("soak_scoped", []string{"premium-calculator"}, 1_000_000_000, 1_000_000_000)
	small, entries[2] = mint("soak_small", []string{"premium-calculator"}, 5, 1000)
	disabled, d := mint("soak_disabled", []string{"*"}, 0, 0)
	d.Disabled = true
	entries[3] = d
	expired, e := mint("soak_expired", []string{"*"}, 0, 0)
	e.ExpiresAt = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	entries[4] = e
	unknown, _ := auth.NewKey()
	cfg.Keys = entries[:]
	hold, addr, err := downport.Reserve()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hold.Close() })
	down := "http://" + addr + "/calculate" // refuses every connection
	cfg.Products = append(cfg.Products, productConfig{Slug: "down-calculator", Active: true, Required: []string{},
		Upstream: upstreamConfig{URL: down, HealthURL: "demo:/healthz", DialTimeout: duration(time.Second), RetryAfter: duration(time.Second)}})
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "soak.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, bulk, scoped, small, []string{unknown, disabled, expired, "ila_short", "not-a-key", ""}
}

// TestSoakFlat runs the gateway in this process and drives it in rounds with
// the realistic mix (forwarded successes throughout, every error of the
// contract), asserting every answer's status and body for its kind, and
// sampling the gateway's goroutines and the heap after a GC between rounds.
// After a warm-up round, the goroutines other than connections' must be
// exactly those after it, the connections' within what the keep-alive pools
// can hold (their number depends on how requests overlapped, which a busy
// machine changes), and the heap flat. Every round must forward successes, so a leak on
// the forwarded path is exercised all along. GATEHOUSE_SOAK=3m runs it for
// that long (at most 30m) and prints every round; by default it runs 4 short
// rounds.
func TestSoakFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("soak")
	}
	duration := time.Duration(0)
	if v := os.Getenv("GATEHOUSE_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("GATEHOUSE_SOAK=%q: %v", v, err)
		}
		duration = min(d, 30*time.Minute)
	}
	path, bulk, scoped, small, invalid := writeSoakConfig(t)
	// The gateway's goroutines (its server's, its demo upstream's, its
	// proxies' connections) carry the label of this run: they are the ones
	// counted, not those of other tests still ending, nor the client's.
	owner := fmt.Sprintf("%p", t)
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels(soakLabel, owner)))
	// Logging off: the upstream failures of the mix are logged at ERROR, and
	// start keeps stderr in memory, which would grow with the soak's length.
	g := start(t, "-config", path, "-log-level", "ERROR+4")
	pprof.SetGoroutineLabels(context.Background())
	mix := soakMix(bulk, scoped, small, invalid)
	var pick []int // kind index by weight
	for i, k := range mix {
		for range k.weight {
			pick = append(pick, i)
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()

	began := time.Now()
	var small200 atomic.Int64
	round := func(seed uint64) (n int, perKind []int64) {
		perKind = make([]int64, len(mix))
		var counts = make([]atomic.Int64, len(mix))
		var failed atomic.Int64
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(seed, uint64(w)))
				for range 250 { // 8 × 250 = 2,000 requests a round
					i := pick[r.IntN(len(pick))]
					k := mix[i]
					path, key, ct, body := k.request(r)
					req, _ := http.NewRequest("POST", g.base+path, strings.NewReader(body))
					if key != "" {
						req.Header.Set("X-API-Key", key)
					}
					req.Header.Set("Content-Type", ct)
					req.Header.Set("X-Request-ID", "soak")
					resp, err := client.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if !k.allowed(resp.StatusCode, string(b)) {
						if failed.Add(1) <= 5 {
							t.Errorf("%s (%s): %d %q, not an answer the contract gives", k.name, path, resp.StatusCode, b)
						}
					}
					if resp.StatusCode == 200 {
						counts[i].Add(1)
						if k.name == "over-limit" {
							small200.Add(1)
						}
					}
				}
			})
		}
		wg.Wait()
		for i := range counts {
			perKind[i] = counts[i].Load()
		}
		return 2000, perKind
	}
	sample := func() (soakGoroutines, uint64) {
		runtime.GC()
		runtime.GC() // the second empties the pools' victim caches
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return ownedGoroutines(owner), m.HeapAlloc
	}

	round(0) // warm-up
	baseG, baseH := sample()
	rounds, requests := 0, 0
	var lastG soakGoroutines
	var lastH uint64
	for rounds < 3 || time.Since(began) < duration {
		n, ok := round(uint64(rounds + 1))
		requests += n
		rounds++
		if ok[0] < 1000 { // valid is 60% of 2,000, every one a 200
			t.Errorf("round %d: %d forwarded successes, want every valid request's (about 1,200)", rounds, ok[0])
		}
		gs, h := sample()
		if duration > 0 {
			fmt.Printf("round %d: %d requests, %d forwarded 200s, goroutines %d and %d of connections, heap %d KiB\n",
				rounds, requests, ok[0], gs.others, gs.conns, h>>10)
		}
		if gs.others != baseG.others {
			t.Errorf("round %d: the gateway's goroutines besides its connections' went from %d to %d; after the warm-up:\n%s\nnow:\n%s",
				rounds, baseG.others, gs.others, baseG.dump, gs.dump)
		}
		if gs.conns > maxSoakConnGoroutines {
			t.Errorf("round %d: %d goroutines of connections, want at most %d (the keep-alive pools')", rounds, gs.conns, maxSoakConnGoroutines)
		}
		if h > baseH*3/2+2<<20 { // measured flat (567 → 622 KiB over 468,000 requests)
			t.Errorf("round %d: heap grew from %d to %d bytes", rounds, baseH, h)
		}
		lastG, lastH = gs, h
		if t.Failed() {
			break
		}
	}
	t.Logf("%d rounds, %d requests: goroutines %d → %d, of connections %d → %d, heap %d → %d KiB",
		rounds, requests, baseG.others, lastG.others, baseG.conns, lastG.conns, baseH>>10, lastH>>10)
	// The small key's two buckets: the minute one starts full and refills 5 a
	// minute.
	if got, max := small200.Load(), int64(5+5*time.Since(began).Minutes()+1); got > max {
		t.Errorf("the 5-a-minute key got %d 200s in %v, at most %d allowed", got, time.Since(began), max)
	}
}

// soakLabel is the pprof label that marks the goroutines of TestSoakFlat's
// gateway; goroutines inherit their creator's labels.
const soakLabel = "gatehouse_soak"

// maxSoakConnGoroutines bounds the goroutines of the soak gateway's
// connections. Their number is that of the keep-alive connections the pools
// hold, which depends on how the requests overlapped, not on their number:
// the 8 workers' connections to the gateway (one goroutine each, and one
// reading ahead) and the proxies' to the demo upstream (4 products reach it;
// a reader, a writer and the upstream's server goroutine each), each pool with
// at most two connections a worker (one in use, one on its way back). A
// connection kept per request, or per few, exceeds it within a round of 2,000.
const maxSoakConnGoroutines = 2*8*2 + 4*2*8*3

// soakGoroutines are the goroutines of one owner, from a goroutine profile.
type soakGoroutines struct {
	conns  int    // of connections: a server's, a transport's, a dial
	others int    // the rest: the servers' accept loops, the log writer, run
	dump   string // the profile's records of the others
}

// connFuncs are functions of net/http that run only for one connection, on a
// goroutine of its own: a goroutine with one in its stack is a connection's.
var connFuncs = []string{
	"net/http.(*conn).serve+",
	"net/http.(*connReader).backgroundRead+",
	"net/http.(*persistConn).readLoop+",
	"net/http.(*persistConn).writeLoop+",
	"net/http.(*Transport).dialConnFor+",
	"net/http.(*persistConn).closeConnIfStillIdle+", // the idle timeout's
}

// ownedGoroutines counts the goroutines labelled soakLabel=owner, from the
// goroutine profile's text form: records of "N @ pcs", a "# labels: {...}"
// line and one "#" line a frame, separated by blank lines.
func ownedGoroutines(owner string) soakGoroutines {
	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	label := fmt.Sprintf("%q:%q", soakLabel, owner)
	var g soakGoroutines
	var dump strings.Builder
	for _, rec := range strings.Split(b.String(), "\n\n") {
		var n int
		if _, err := fmt.Sscanf(rec, "%d @", &n); err != nil || !strings.Contains(rec, label) {
			continue
		}
		conn := false
		for _, f := range connFuncs {
			conn = conn || strings.Contains(rec, f)
		}
		if conn {
			g.conns += n
			continue
		}
		g.others += n
		dump.WriteString(rec + "\n\n")
	}
	g.dump = dump.String()
	return g
}
