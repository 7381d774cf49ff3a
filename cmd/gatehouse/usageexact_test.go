package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
	"github.com/gatehouse-go/gatehouse/internal/pgtest"
)

// usageKey is a key of the exactness tests, with the plaintext its callers
// send.
type usageKey struct{ plain, id, owner string }

// charged is what callers got for the requests a key was charged for: by
// key id, product and status class.
type charged map[[3]string]int64

// usageKeys creates the keys of the exactness tests in the database at url:
// two of acme and two of globex, one of them without pdf (403) and one with
// a low limit (429).
func usageKeys(t *testing.T, url string) []usageKey {
	t.Helper()
	var keys []usageKey
	for _, k := range []struct{ owner, products, perMinute string }{
		{"acme", "calc,pdf", "10000"}, {"acme", "calc,pdf", "30"}, {"globex", "calc,pdf", "10000"}, {"globex", "calc", "10000"},
	} {
		plain, id := parseNewKey(t, keysCLI(t, "create", "-db", url, "-owner", k.owner, "-products", k.products, "-per-minute", k.perMinute, "-per-day", "100000"))
		keys = append(keys, usageKey{plain, id, k.owner})
	}
	return keys
}

// callers sends, from 8 goroutines, n requests each over the gateways at
// bases, the keys and the products calc (200), pdf (the upstream's 422, or
// 403) and nope (404), and adds to got each answer but 401 and 429, the
// requests a key is not charged for. A request that gets no answer, or 503,
// fails t.
func callers(t *testing.T, bases []string, keys []usageKey, n int, got charged) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	products := []string{"calc", "pdf", "nope"}
	for c := range 8 {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			for i := range n {
				k := keys[(c+i)%len(keys)]
				product := products[(c+2*i)%len(products)]
				req, _ := http.NewRequest("POST", bases[(c+i)%len(bases)]+"/api/"+product, strings.NewReader(`{"inputs":{}}`))
				req.Header.Set("X-API-Key", k.plain)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case 401, 429:
					continue
				case 503:
					t.Errorf("%s: 503", product)
				}
				mu.Lock()
				got[[3]string{k.id, product, fmt.Sprintf("%dxx", resp.StatusCode/100)}]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// written is the usage rows of the database at url, in the form of charged.
func written(t *testing.T, url string) (charged, map[string]int64) {
	t.Helper()
	db, err := sqlstore.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	from := time.Now().Add(-48 * time.Hour)
	rows, err := sqlstore.ReadUsage(context.Background(), db, sqlstore.UsageQuery{By: sqlstore.UsageByKey, From: from, To: from.Add(96 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	got, cost := charged{}, map[string]int64{}
	for _, r := range rows {
		got[[3]string{r.KeyID, r.Product, r.Status}] += r.Requests
		cost[r.Product] += r.Cost
	}
	return got, cost
}

// checkExact fails t unless the rows of the database at url are, key by key,
// product by product and status class by status class, what the callers
// got, at each product's cost (pdf 5, the others 1).
func checkExact(t *testing.T, url string, want charged) {
	t.Helper()
	got, cost := written(t, url)
	if !maps.Equal(got, want) {
		for k := range want {
			if got[k] != want[k] {
				t.Errorf("%v: %d written, callers got %d", k, got[k], want[k])
			}
		}
		for k, n := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%v: %d written, callers got none", k, n)
			}
		}
	}
	wantCost := map[string]int64{}
	var total int64
	for k, n := range want {
		wantCost[k[1]] += n * map[string]int64{"calc": 1, "pdf": 5, "nope": 1}[k[1]]
		total += n
	}
	if !maps.Equal(cost, wantCost) {
		t.Errorf("cost by product: %v written, want %v", cost, wantCost)
	}
	t.Logf("%d charged requests, written exactly", total)
}

// stopGracefully sends p SIGTERM and fails t unless it exits 0.
func stopGracefully(t *testing.T, p *process) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.exitCode(t); code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, p.stderr.String())
	}
}

// TestUsageExactTwoGatewaysPostgres: two gateway processes on one
// PostgreSQL, 8 concurrent callers over four keys of two owners and three
// products with mixed answers (200, 422, 403, 404, 429), PostgreSQL stopped
// once both gateways have failed a flush and restarted after more calls:
// once both have shut down gracefully, the usage rows are exactly what the
// callers got, key by key, product by product and status class by status
// class, and the cost by product.
func TestUsageExactTwoGatewaysPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	bin := buildBinary(t)
	keys := usageKeys(t, pg.URL)
	cfg := usageConfig(t, usageUpstream(t))
	var gws []*process
	var bases []string
	for range 2 {
		p := startBinary(t, bin, "-config", cfg, "-db", pg.URL, "-demo-upstream=false", "-usage-flush", "100ms", "-log-level", "WARN")
		gws = append(gws, p)
		bases = append(bases, p.base)
	}
	got := charged{}
	callers(t, bases, keys, 60, got) // every key is now cached by both gateways
	pg.Stop()
	callers(t, bases, keys, 60, got)
	for _, p := range gws {
		p.waitLine(t, "sqlstore: usage flush failed; counts kept in memory")
	}
	callers(t, bases, keys, 60, got)
	pg.Restart()
	callers(t, bases, keys, 60, got)
	for _, p := range gws {
		stopGracefully(t, p)
	}
	checkExact(t, pg.URL, got)
}

// TestUsageExactSQLite: one gateway on SQLite, the same callers: after its
// graceful shutdown, the rows are exactly what the callers got.
func TestUsageExactSQLite(t *testing.T) {
	url := dbURLs(t)["sqlite"]()
	bin := buildBinary(t)
	keys := usageKeys(t, url)
	p := startBinary(t, bin, "-config", usageConfig(t, usageUpstream(t)), "-db", url, "-demo-upstream=false", "-usage-flush", "100ms", "-log-level", "WARN")
	got := charged{}
	callers(t, []string{p.base}, keys, 120, got)
	stopGracefully(t, p)
	checkExact(t, url, got)
}

// TestUsageLostToSIGKILL measures what a SIGKILL loses: the counts recorded
// since the last flush, at most one -usage-flush interval of them. With an
// hour's interval, the requests answered before a SIGKILL (within the first
// interval) are all lost, while a SIGTERM writes them; with 200ms, once the
// first calls are in the database, those are kept and at most the calls
// after them are lost.
func TestUsageLostToSIGKILL(t *testing.T) {
	bin := buildBinary(t)
	cfg := usageConfig(t, usageUpstream(t))
	kill := func(p *process) {
		t.Helper()
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		p.exitCode(t)
	}
	count := func(c charged) (n int64) {
		for _, v := range c {
			n += v
		}
		return n
	}

	url := dbURLs(t)["sqlite"]()
	keys := usageKeys(t, url)
	p := startBinary(t, bin, "-config", cfg, "-db", url, "-demo-upstream=false", "-usage-flush", "1h")
	got := charged{}
	callers(t, []string{p.base}, keys, 10, got)
	kill(p)
	if w, _ := written(t, url); count(w) != 0 {
		t.Errorf("an hour's interval, SIGKILL: %d written, want none", count(w))
	}
	t.Logf("an hour's interval: SIGKILL lost all %d requests of the interval", count(got))

	p = startBinary(t, bin, "-config", cfg, "-db", url, "-demo-upstream=false", "-usage-flush", "200ms")
	first := charged{}
	callers(t, []string{p.base}, keys, 10, first)
	deadline := time.Now().Add(time.Minute)
	for {
		if w, _ := written(t, url); maps.Equal(w, first) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first calls were not written within a minute")
		}
		time.Sleep(50 * time.Millisecond) // polling the database for a flush that comes every 200ms
	}
	then := charged{}
	callers(t, []string{p.base}, keys, 10, then)
	kill(p)
	w, _ := written(t, url)
	lost := count(first) + count(then) - count(w)
	if count(w) < count(first) || lost < 0 {
		t.Errorf("200ms interval, SIGKILL: %d written, want between %d and %d", count(w), count(first), count(first)+count(then))
	}
	t.Logf("200ms interval: SIGKILL lost %d of the %d requests answered since the last flush seen", lost, count(then))
}
