package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gatehouse-go/gatehouse/auth"
)

// TestReloadIsAtomic reloads between two configurations in a loop while
// requests run, over real sockets. In A, product p requires Alpha and is
// answered by upstream X, and only-a exists; in B, p requires Beta and is
// answered by Y, and only-a does not exist. Every answer must come from one
// configuration: a request checked against A's product and sent to B's
// handler (or the reverse) would show as Y answering an Alpha-only body, X a
// Beta-only one, or 503 for only-a (A's catalog, B's handlers).
func TestReloadIsAtomic(t *testing.T) {
	upstreamSaying := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, `{"from":"`+name+`"}`)
		}))
	}
	x, y := upstreamSaying("X"), upstreamSaying("Y")
	defer x.Close()
	defer y.Close()
	plain, k := auth.NewKey()
	keys := fmt.Sprintf(`"limits": {"per_minute": 100000000, "per_day": 1000000000}, "keys": [{"id": "key_test", "hash": %q, "products": ["*"]}]`, k.HashHex())
	parse := func(s string) *config {
		c, err := parseConfig([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := parse(fmt.Sprintf(`{%s, "products": [
		{"slug": "p", "active": true, "required": ["Alpha"], "upstream": {"url": %q}},
		{"slug": "only-a", "active": true, "required": [], "upstream": {"url": %q}}]}`, keys, x.URL, x.URL))
	b := parse(fmt.Sprintf(`{%s, "products": [
		{"slug": "p", "active": true, "required": ["Beta"], "upstream": {"url": %q}}]}`, keys, y.URL))
	gw, err := newGateway(context.Background(), a, &options{}, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	srv := httptest.NewServer(gw.Handler())
	defer srv.Close()

	type call struct {
		path, body string
		allowed    map[string]bool // "status body"
	}
	missing := func(f string) string {
		return `400 {"error":"Missing required input field: ` + f + `","request_id":"r"}` + "\n"
	}
	calls := []call{
		{"/api/p", `{"inputs":{"Alpha":1}}`, map[string]bool{`200 {"from":"X"}`: true, missing("Beta"): true}},
		{"/api/p", `{"inputs":{"Beta":1}}`, map[string]bool{`200 {"from":"Y"}`: true, missing("Alpha"): true}},
		{"/api/only-a", `{"inputs":{}}`, map[string]bool{`200 {"from":"X"}`: true, `404 {"error":"Product not found","request_id":"r"}` + "\n": true}},
	}

	stop := make(chan struct{})
	var reloads atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			next := a
			if i%2 == 0 {
				next = b
			}
			if err := gw.Apply(next); err != nil {
				t.Error(err)
				return
			}
			reloads.Add(1)
		}
	})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	var requests, mismatched atomic.Int64
	// The workers run until there have been enough requests and reloads to
	// show a mix-up, however slowly the machine runs them: counted, not timed.
	// Each worker's bound ends the test should the reloads stall.
	enough := func() bool { return requests.Load() >= 400 && reloads.Load() >= 200 }
	var workers sync.WaitGroup
	for w := range 8 {
		workers.Go(func() {
			for i := 0; i < 3000 && !enough(); i++ {
				c := calls[(w+i)%len(calls)]
				req, _ := http.NewRequest("POST", srv.URL+c.path, strings.NewReader(c.body))
				req.Header.Set("X-API-Key", plain)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Request-ID", "r")
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				requests.Add(1)
				if got := fmt.Sprintf("%d %s", resp.StatusCode, body); !c.allowed[got] {
					if mismatched.Add(1) <= 5 {
						t.Errorf("%s %s: %q: an answer no single configuration gives", c.path, c.body, got)
					}
				}
			}
		})
	}
	workers.Wait()
	close(stop)
	wg.Wait()
	t.Logf("%d requests, %d reloads, %d mismatched", requests.Load(), reloads.Load(), mismatched.Load())
	if reloads.Load() < 100 || requests.Load() < 100 {
		t.Errorf("%d reloads, %d requests: too few to show anything", reloads.Load(), requests.Load())
	}
}
