package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/redistest"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// hostileReplies are replies that declare more than a reply may: each of
// RESP's lengths, far above (a terabyte's worth) and just above, nested
// aggregates, strings whose lengths add up, and a line without an end.
func hostileReplies() map[string]string {
	const huge = "68719476736"
	m := map[string]string{
		"array 10M":  "*10000000\r\n",
		"nested":     strings.Repeat("*65536\r\n", 4),
		"strings":    "*64\r\n" + strings.Repeat("$1048576\r\n"+strings.Repeat("x", 1048576)+"\r\n", 4),
		"long line":  "+" + strings.Repeat("a", maxReplyLine+1),
		"attribute":  "|" + huge + "\r\n",
		"just above": "*" + strconv.Itoa(maxReplyElems+1) + "\r\n",
	}
	for _, kind := range []struct{ name, typ string }{
		{"array", "*"}, {"string", "$"}, {"map", "%"}, {"set", "~"}, {"push", ">"},
		{"verbatim", "="}, {"blob error", "!"},
	} {
		m[kind.name] = kind.typ + huge + "\r\n"
	}
	return m
}

// TestHostileRedis: an endpoint on Redis's address that answers every command
// with a reply declaring more than the bound (`*68719476736`, a terabyte to
// go-redis, and every other of RESP's lengths) costs each decision an error
// wrapping ErrReplyTooLarge, a 503 through a fail-closed limiter and a local
// decision through a Fallback, and bounded memory: each of 20 decisions
// allocates at most 8 MiB on average, twice the bytes a reply may have (the
// strings of one reply within the bound are up to 4 MiB; the others stop at
// a length, about 80 KB a decision; unbounded, `*68719476736` is a terabyte).
func TestHostileRedis(t *testing.T) {
	const (
		decisions   = 20
		mostAlloc   = decisions * 2 * maxReplyBytes
		unavailable = `{"error":"Upstream service temporarily unavailable"}` + "\n"
	)
	limits := ratelimit.Limits{PerMinute: 90, PerDay: 900}
	replies := hostileReplies()
	names := make([]string, 0, len(replies))
	for name := range replies {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			addr := redistest.Hostile(t, []byte(replies[name]))
			store := exactURLStore(t, "redis://"+addr+"/0", Options{})
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			var bad []string
			for i := range decisions {
				_, err := store.Take(context.Background(), ratelimit.Charge{Key: "k", Limits: limits}, time.Time{})
				if !errors.Is(err, ErrReplyTooLarge) || strings.Contains(err.Error(), addr) {
					bad = append(bad, fmt.Sprintf("decision %d: error %v, want one wrapping ErrReplyTooLarge, without the address", i, err))
				}
			}
			runtime.ReadMemStats(&after)
			if got := after.TotalAlloc - before.TotalAlloc; got > mostAlloc {
				t.Errorf("%d decisions allocated %d bytes, want at most %d", decisions, got, mostAlloc)
			} else {
				t.Logf("%d decisions allocated %d bytes", decisions, got)
			}
			if len(bad) > 0 {
				t.Fatalf("%d of %d decisions: %s", len(bad), decisions, bad[0])
			}

			// Fail closed: the contract's 503.
			url, hc := limitedServer(t, store, "k", limits, 1)
			for i := range 3 {
				resp, err := hc.Post(url, "application/json", nil)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 503 || string(body) != unavailable || resp.Header.Get("Retry-After") != "1" ||
					resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("X-RateLimit-Limit") != "" {
					t.Errorf("fail closed, request %d: %d %q Retry-After %q Content-Type %q X-RateLimit-Limit %q; want 503 %q, 1, application/json, none",
						i, resp.StatusCode, body, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"), resp.Header.Get("X-RateLimit-Limit"), unavailable)
				}
			}

			// A Fallback at a third: local decisions, 30 a minute.
			fb := ratelimit.Fallback(store, ratelimit.FallbackConfig{Share: 1.0 / 3})
			url, hc = limitedServer(t, fb, "k", limits, 1)
			for i := range 3 {
				resp, err := hc.Post(url, "application/json", nil)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				h := resp.Header
				if want := strconv.Itoa(29 - i); resp.StatusCode != 200 || string(body) != limitedOKBody ||
					h.Get("X-RateLimit-Limit") != "30" || h.Get("X-RateLimit-Remaining") != want || h.Get("X-RateLimit-Daily-Limit") != "300" {
					t.Errorf("local:1/3, request %d: %d %q X-RateLimit-Limit %q -Remaining %q -Daily-Limit %q; want 200 %q, 30, %s, 300",
						i, resp.StatusCode, body, h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining"), h.Get("X-RateLimit-Daily-Limit"), limitedOKBody, want)
				}
			}
			if got := fb.LocalDecisions(); got != 3 {
				t.Errorf("LocalDecisions() = %d, want 3", got)
			}
		})
	}
}
