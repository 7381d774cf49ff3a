package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/internal/demo"
	"github.com/gatehouse-go/gatehouse/internal/downport"
)

// Limits of the keys the tool mints for its own gateway.
const (
	bulkPerMinute  = 1_000_000_000 // never the limit: the valid class measures the stack, not the limiter
	bulkPerDay     = 1_000_000_000
	smallPerMinute = 5 // spent in the first second: the over-limit class
	smallPerDay    = 1_000
)

// keys are the plaintext keys a mix uses.
type keys struct {
	bulk    string   // every product, limits never reached
	scoped  string   // premium-calculator only, limits never reached
	small   string   // premium-calculator only, smallPerMinute
	invalid []string // unknown, disabled, expired, malformed, garbage
	// limited is true when every key may be refused 429 (the demo
	// configuration of a -target gateway, whose keys allow 60 a minute).
	limited bool
}

// gatewaySetup is what the tool writes for the gateway it starts: a config
// file with its own keys, and the upstreams the config points at.
type gatewaySetup struct {
	configPath string
	// inProcessConfigPath is a configuration with the same keys and only the
	// in-process product, for the -compare gateway that measures the stack
	// alone.
	inProcessConfigPath string
	keys                keys
	slow                *http.Server
	down                io.Closer // holds the down upstream's port
}

// Close stops the slow upstream and frees the down one's port.
func (s *gatewaySetup) Close() {
	s.slow.Close()
	s.down.Close()
}

// writeConfig mints the tool's keys and writes a configuration to dir: the
// gatehouse binary bin's built-in one (see builtinConfig) with the tool's keys,
// and products that are the demo's plus a slow one (an upstream the tool serves, that
// sometimes answers after the gateway's timeout) and a down one (a loopback
// port nobody listens on).
func writeConfig(dir, bin string) (*gatewaySetup, error) {
	mint := func(id string, products []string, perMinute, perDay int, disabled bool, expires time.Time) (string, map[string]any) {
		plaintext, k := auth.NewKey()
		entry := map[string]any{"id": id, "hash": k.HashHex(), "products": products, "per_minute": perMinute, "per_day": perDay}
		if disabled {
			entry["disabled"] = true
		}
		if !expires.IsZero() {
			entry["expires_at"] = expires.Format(time.RFC3339)
		}
		return plaintext, entry
	}
	var s gatewaySetup
	var entries []map[string]any
	add := func(plaintext string, entry map[string]any) string {
		entries = append(entries, entry)
		return plaintext
	}
	s.keys.bulk = add(mint("key_load_bulk", []string{"*"}, bulkPerMinute, bulkPerDay, false, time.Time{}))
	s.keys.scoped = add(mint("key_load_scoped", []string{"premium-calculator"}, bulkPerMinute, bulkPerDay, false, time.Time{}))
	s.keys.small = add(mint("key_load_small", []string{"premium-calculator"}, smallPerMinute, smallPerDay, false, time.Time{}))
	disabled := add(mint("key_load_disabled", []string{"*"}, 0, 0, true, time.Time{}))
	expired := add(mint("key_load_expired", []string{"*"}, 0, 0, false, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)))
	unknown, _ := auth.NewKey() // well formed, checksum right, never configured
	s.keys.invalid = []string{unknown, disabled, expired, "ila_short", "not-a-key", ""}

	slowLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.slow = &http.Server{Handler: slowUpstream(), ReadHeaderTimeout: 5 * time.Second}
	go s.slow.Serve(slowLn)
	hold, downAddr, err := downport.Reserve()
	if err != nil {
		s.slow.Close()
		return nil, err
	}
	s.down = hold
	down := "http://" + downAddr // refuses every connection: an upstream that is down

	upstreamOf := func(url string) map[string]any {
		return map[string]any{
			"url": url, "health_url": "demo:/healthz",
			"dial_timeout": "1s", "response_header_timeout": "200ms", "timeout": "2s", "retry_after": "1s",
		}
	}
	cfg, err := builtinConfig(bin)
	if err != nil {
		s.Close()
		return nil, err
	}
	products := cfg["products"].([]any)
	products = append(products,
		map[string]any{"slug": "slow-calculator", "active": true, "required": []string{"Premium", "Age"}, "upstream": upstreamOf("http://" + slowLn.Addr().String() + "/calculate")},
		map[string]any{"slug": "down-calculator", "active": true, "required": []string{}, "upstream": upstreamOf(down + "/calculate")},
	)
	cfg["products"] = products
	cfg["keys"] = entries
	write := func(name string) (string, error) {
		data, err := json.MarshalIndent(cfg, "", "  ")
		if err != nil {
			return "", err
		}
		path := filepath.Join(dir, name)
		return path, os.WriteFile(path, data, 0o600)
	}
	if s.configPath, err = write("load-config.json"); err != nil {
		s.Close()
		return nil, err
	}
	// The demo product answered in the gateway's own process, alone.
	cfg["products"] = []any{map[string]any{"slug": inProcessProduct, "active": true, "required": []string{"Premium", "Age"}, "upstream": map[string]any{"url": "inprocess:calculate"}}}
	if s.inProcessConfigPath, err = write("load-inprocess-config.json"); err != nil {
		s.Close()
		return nil, err
	}
	return &s, nil
}

// builtinConfig returns the configuration the gatehouse binary bin runs
// without -config (the demo's products, limits and keys), as `gatehouse
// config` prints it: the gateway's own, so that the tool does not write the
// demo again.
func builtinConfig(bin string) (map[string]any, error) {
	out, err := exec.Command(bin, "config").Output()
	if err != nil {
		return nil, fmt.Errorf("%s config: %w", bin, err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(out, &cfg); err != nil {
		return nil, fmt.Errorf("%s config: %w", bin, err)
	}
	return cfg, nil
}

// demoKeys are the demo configuration's keys (gatehouse prints them at
// start-up), for a -target gateway that runs it.
func demoKeys() keys {
	return keys{
		bulk:    demo.Plaintext("full"),
		scoped:  demo.Plaintext("scoped"),
		small:   demo.Plaintext("tiny"),
		invalid: []string{demo.Plaintext("disabled"), demo.Plaintext("expired"), "ila_short", "not-a-key", ""},
		limited: true,
	}
}

// slowUpstream answers /calculate like the demo upstream, one call in ten
// after 300 ms: past the 200 ms response-header timeout the tool configures,
// so that call gets the gateway's 503.
func slowUpstream() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /calculate", func(w http.ResponseWriter, r *http.Request) {
		if rand.IntN(10) == 0 {
			select {
			case <-time.After(300 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		demo.Calculate(w, r)
	})
	return mux
}

// bareHandler answers POST /api/premium-calculator directly, with no gateway:
// the baseline of -compare.
func bareHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/premium-calculator", demo.Calculate)
	mux.HandleFunc("POST /api/"+inProcessProduct, demo.Calculate)
	return mux
}

func jsonHeader(key string) http.Header {
	h := http.Header{"Content-Type": {"application/json"}}
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	return h
}

func validBody(r *rand.Rand) []byte {
	return fmt.Appendf(nil, `{"inputs":{"Premium":%d,"Age":%d}}`, 100+r.IntN(5000), 18+r.IntN(70))
}

// inProcessProduct is the product the -compare gateway answers in its own
// process ("inprocess:calculate"), with no second hop.
const inProcessProduct = "inprocess-calculator"

// validClass is the valid-key traffic alone, for the demo product: the class
// -compare measures.
func validClass(k keys) *class { return validClassFor(k, "premium-calculator") }

// validClassFor is valid-key traffic for the product slug.
func validClassFor(k keys, slug string) *class {
	c := &class{
		name: "valid", weight: 1, allowed: []int{200},
		build: func(r *rand.Rand) (string, string, http.Header, []byte) {
			return "POST", "/api/" + slug, jsonHeader(k.bulk), validBody(r)
		},
	}
	if k.limited {
		c.allowed = []int{200, 429}
	}
	return c
}

// mix is the realistic mix: mostly valid traffic, then every way a caller
// gets an error, with the statuses the contract allows for each.
func mix(k keys, withOwnUpstreams bool) []*class {
	lim := func(s ...int) []int {
		if k.limited {
			s = append(s, 429)
		}
		return s
	}
	valid := validClass(k)
	valid.weight = 60
	classes := []*class{
		valid,
		{
			name: "over-limit", weight: 8, allowed: []int{200, 429},
			build: func(r *rand.Rand) (string, string, http.Header, []byte) {
				return "POST", "/api/premium-calculator", jsonHeader(k.small), validBody(r)
			},
		},
		{
			name: "invalid-key", weight: 8, allowed: []int{401},
			build: func(r *rand.Rand) (string, string, http.Header, []byte) {
				key := k.invalid[r.IntN(len(k.invalid))]
				h := jsonHeader("")
				switch {
				case key == "":
				case r.IntN(2) == 0:
					h.Set("X-API-Key", key)
				default:
					h.Set("Authorization", "Bearer "+key)
				}
				return "POST", "/api/premium-calculator", h, validBody(r)
			},
		},
		{
			name: "bad-body", weight: 6, allowed: lim(400, 415),
			build: func(r *rand.Rand) (string, string, http.Header, []byte) {
				bodies := []string{`{"inputs":{"Premium":1200}}`, `{"inputs":[]}`, `{}`, `{"inputs":{"Premium":1200,`, `not json`}
				h := jsonHeader(k.bulk)
				if r.IntN(6) == 0 {
					h.Set("Content-Type", "text/plain")
					return "POST", "/api/premium-calculator", h, validBody(r)
				}
				return "POST", "/api/premium-calculator", h, []byte(bodies[r.IntN(len(bodies))])
			},
		},
		{
			name: "wrong-scope", weight: 4, allowed: lim(403),
			build: func(r *rand.Rand) (string, string, http.Header, []byte) {
				return "POST", "/api/broken-calculator", jsonHeader(k.scoped), validBody(r)
			},
		},
		{
			name: "unknown-prod", weight: 4, allowed: lim(404),
			build: func(r *rand.Rand) (string, string, http.Header, []byte) {
				slug := []string{"no-such-calculator", "retired-calculator"}[r.IntN(2)]
				return "POST", "/api/" + slug, jsonHeader(k.bulk), validBody(r)
			},
		},
		{
			name: "misconfigured", weight: 2, allowed: lim(502),
			build: func(r *rand.Rand) (string, string, http.Header, []byte) {
				return "POST", "/api/misconfigured-calculator", jsonHeader(k.bulk), validBody(r)
			},
		},
		{
			// The upstream answers 500; after 5 in a row the breaker opens and
			// the gateway answers 503 itself for its cool-down.
			name: "broken", weight: 2, allowed: lim(500, 503),
			build: func(r *rand.Rand) (string, string, http.Header, []byte) {
				return "POST", "/api/broken-calculator", jsonHeader(k.bulk), validBody(r)
			},
		},
		{
			name: "overloaded", weight: 2, allowed: lim(503),
			build: func(r *rand.Rand) (string, string, http.Header, []byte) {
				return "POST", "/api/overloaded-calculator", jsonHeader(k.bulk), validBody(r)
			},
		},
	}
	if k.limited {
		classes[1].weight = 0 // the demo keys are all small: "valid" is already over its limit
	} else {
		classes[1].max200 = func(elapsed time.Duration) int {
			// Two token buckets: the minute one starts full and refills
			// smallPerMinute a minute.
			return min(smallPerMinute+int(float64(smallPerMinute)*elapsed.Minutes())+1, smallPerDay)
		}
	}
	if withOwnUpstreams {
		classes = append(classes,
			&class{
				name: "slow", weight: 3, allowed: []int{200, 503},
				build: func(r *rand.Rand) (string, string, http.Header, []byte) {
					return "POST", "/api/slow-calculator", jsonHeader(k.bulk), validBody(r)
				},
			},
			&class{
				name: "down", weight: 1, allowed: []int{503},
				build: func(r *rand.Rand) (string, string, http.Header, []byte) {
					return "POST", "/api/down-calculator", jsonHeader(k.bulk), validBody(r)
				},
			},
		)
	}
	var nonZero []*class
	for _, c := range classes {
		if c.weight > 0 {
			nonZero = append(nonZero, c)
		}
	}
	return nonZero
}
