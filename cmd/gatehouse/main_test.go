package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/internal/demo"
	"github.com/gatehouse-go/gatehouse/internal/redistest"
	"github.com/gatehouse-go/gatehouse/internal/syncbuf"
)

// gatewayUnderTest is a running gateway.
type gatewayUnderTest struct {
	base   string
	hup    chan os.Signal
	stop   context.CancelFunc
	done   chan error
	stdout *syncbuf.Buffer
	stderr *syncbuf.Buffer
}

// start runs the gateway with args on a free loopback port until the test ends.
func start(t *testing.T, args ...string) *gatewayUnderTest {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	g := &gatewayUnderTest{hup: make(chan os.Signal, 1), stop: cancel, done: make(chan error, 1), stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}}
	ready := make(chan string, 1)
	go func() {
		g.done <- run(ctx, append([]string{"-addr", "127.0.0.1:0", "-log-level", "ERROR"}, args...), g.stdout, g.stderr, g.hup, func(addr string) { ready <- addr })
	}()
	select {
	case addr := <-ready:
		g.base = "http://" + addr
	case err := <-g.done:
		t.Fatalf("the gateway did not start: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the gateway did not start within a minute")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-g.done; err != nil {
			t.Errorf("the gateway stopped with %v", err)
		}
	})
	return g
}

type reply struct {
	status int
	header http.Header
	body   string
}

func (g *gatewayUnderTest) call(t *testing.T, method, path string, headers map[string]string, body string) reply {
	t.Helper()
	req, _ := http.NewRequest(method, g.base+path, strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

func key(label string) string {
	if k := demo.Plaintext(label); k != "" {
		return k
	}
	panic("no demo key " + label)
}

// TestWalkthrough: every status of the contract's table from the demo gateway,
// over a real socket (TestREADMEWalkthrough runs the README's own steps).
func TestWalkthrough(t *testing.T) {
	g := start(t)
	if !strings.Contains(g.stdout.String(), key("full")) {
		t.Errorf("the banner does not print the demo keys: %q", g.stdout.String())
	}
	const good = `{"inputs":{"Premium":1200,"Age":42}}`
	bearer := func(k string) map[string]string {
		return map[string]string{"Authorization": "Bearer " + k, "Content-Type": "application/json", "X-Request-ID": "walk"}
	}
	apiKey := func(k string) map[string]string {
		return map[string]string{"X-API-Key": k, "Content-Type": "application/json", "X-Request-ID": "walk"}
	}
	errBody := func(msg string) string { return `{"error":"` + msg + `","request_id":"walk"}` + "\n" }
	tests := []struct {
		name       string
		method     string
		path       string
		headers    map[string]string
		body       string
		wantStatus int
		wantBody   string
		wantHeader map[string]string
	}{
		{"200 success", "POST", "/api/premium-calculator", bearer(key("full")), good, 200,
			`{"response_data":{"outputs":{"AnnualPremium":1200,"MonthlyPremium":100}},"status":200}` + "\n",
			map[string]string{"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "59", "X-RateLimit-Daily-Limit": "10000", "X-RateLimit-Daily-Remaining": "9999"}},
		{"200 pdf", "POST", "/api/premium-calculator?format=pdf", apiKey(key("full")), good, 200, "",
			map[string]string{"Content-Type": "application/pdf", "Content-Disposition": `attachment; filename="quote.pdf"`}},
		{"401 no key", "POST", "/api/premium-calculator", map[string]string{"X-Request-ID": "walk"}, good, 401, errBody("No API key provided"), nil},
		{"401 bad format", "POST", "/api/premium-calculator", bearer("ila_not-a-real-key"), good, 401, errBody("Invalid or inactive API key"), nil},
		{"401 disabled", "POST", "/api/premium-calculator", apiKey(key("disabled")), good, 401, errBody("Invalid or inactive API key"), nil},
		{"401 expired", "POST", "/api/premium-calculator", apiKey(key("expired")), good, 401, errBody("Invalid or inactive API key"), nil},
		{"403 not scoped", "POST", "/api/broken-calculator", apiKey(key("tiny")), good, 403, errBody("Your API key does not have access to this product"),
			map[string]string{"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "1"}},
		{"404 unknown product", "POST", "/api/no-such-calculator", apiKey(key("full")), good, 404, errBody("Product not found"), nil},
		{"404 inactive product", "POST", "/api/retired-calculator", apiKey(key("full")), good, 404, errBody("Product not found"), nil},
		{"400 missing field", "POST", "/api/premium-calculator", apiKey(key("full")), `{"inputs":{"Age":42}}`, 400, errBody("Missing required input field: Premium"), nil},
		{"400 no inputs", "POST", "/api/premium-calculator", apiKey(key("full")), `{"Premium":1200}`, 400, errBody("Missing inputs object"), nil},
		{"400 not json", "POST", "/api/premium-calculator", apiKey(key("full")), `not json`, 400, errBody("Request body is not valid JSON"), nil},
		{"200 tiny", "POST", "/api/premium-calculator", apiKey(key("tiny")), good, 200, "", map[string]string{"X-RateLimit-Remaining": "0"}},
		{"429 tiny", "POST", "/api/premium-calculator", apiKey(key("tiny")), good, 429, errBody("Rate limit exceeded"),
			map[string]string{"Retry-After": "30", "X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Daily-Limit": "1000", "X-RateLimit-Daily-Remaining": "998"}},
		{"500 broken upstream", "POST", "/api/broken-calculator", apiKey(key("full")), good, 500, errBody("Internal server error"), nil},
		{"502 upstream auth", "POST", "/api/misconfigured-calculator", apiKey(key("full")), good, 502, errBody("Upstream service authentication failed"), nil},
		{"503 upstream overloaded", "POST", "/api/overloaded-calculator", apiKey(key("full")), good, 503, errBody("Upstream service temporarily unavailable"),
			map[string]string{"Retry-After": "7"}},
		{"405 wrong method", "GET", "/api/premium-calculator", map[string]string{"X-Request-ID": "walk"}, "", 405, errBody("Method not allowed"), map[string]string{"Allow": "POST"}},
		{"404 unknown route", "GET", "/nowhere", map[string]string{"X-Request-ID": "walk"}, "", 404, errBody("Not found"), nil},
		{"health", "GET", "/health", nil, "", 200, demoDegraded, nil},
	}
	for _, tt := range tests {
		got := g.call(t, tt.method, tt.path, tt.headers, tt.body)
		if got.status != tt.wantStatus {
			t.Errorf("%s: status %d, want %d (%s)", tt.name, got.status, tt.wantStatus, got.body)
		}
		if tt.wantBody != "" && got.body != tt.wantBody {
			t.Errorf("%s: body %q, want %q", tt.name, got.body, tt.wantBody)
		}
		if tt.wantStatus >= 400 && got.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: Content-Type %q", tt.name, got.header.Get("Content-Type"))
		}
		for k, v := range tt.wantHeader {
			if g := got.header.Get(k); g != v {
				t.Errorf("%s: %s = %q, want %q", tt.name, k, g, v)
			}
		}
		if strings.Contains(got.body, "demo-upstream-secret") || strings.Contains(got.body, "internal detail") ||
			strings.Contains(got.body, "stack trace") || strings.Contains(got.body, "queue depth") {
			t.Errorf("%s: the answer leaks an upstream secret or body: %q", tt.name, got.body)
		}
	}
}

// writeConfig writes a configuration with one key and one product whose
// upstream is upstreamURL, and returns its path and the key.
func writeConfig(t *testing.T, dir, upstreamURL string, disabled bool) (string, string) {
	t.Helper()
	plain, k := auth.NewKey()
	return writeConfigWithKey(t, dir, upstreamURL, plain, k.HashHex(), disabled)
}

func writeConfigWithKey(t *testing.T, dir, upstreamURL, plain, hash string, disabled bool) (string, string) {
	t.Helper()
	cfg := map[string]any{
		"keys": []map[string]any{{"id": "key_test", "hash": hash, "products": []string{"calc"}, "disabled": disabled}},
		"products": []map[string]any{{"slug": "calc", "active": true, "required": []string{},
			"upstream": map[string]any{"url": upstreamURL}}},
	}
	b, _ := json.Marshal(cfg)
	path := filepath.Join(dir, "gateway.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, plain
}

// TestReload: SIGHUP applies a changed configuration without a restart (a key
// disabled is refused at once), and a broken file leaves the old one in place.
func TestReload(t *testing.T) {
	g, dir, path, plain, upURL := startReloadable(t)
	h := map[string]string{"X-API-Key": plain, "Content-Type": "application/json"}

	// A broken file: logged, and the configuration in force stays.
	os.WriteFile(path, []byte(`{"keys": [`), 0o600)
	g.hup <- nil
	waitFor(t, func() bool { return strings.Contains(g.stderr.String(), "reload failed") })
	if got := g.call(t, "POST", "/api/calc", h, `{"inputs":{}}`); got.status != 200 {
		t.Errorf("after a broken reload: %d, want the old configuration's 200", got.status)
	}

	// The administrator disables the key: refused on the next request.
	hash := auth.HashKey(plain)
	writeConfigWithKey(t, dir, upURL, plain, fmt.Sprintf("%x", hash[:]), true)
	g.hup <- nil
	waitFor(t, func() bool { return g.call(t, "POST", "/api/calc", h, `{"inputs":{}}`).status == 401 })
}

// TestReloadDuringStartup: a SIGHUP that comes while the gateway starts (here,
// as soon as it listens, as an administrator's `kill -HUP` right after the
// banner would) is not lost: the gateway reloads once it reads signals.
func TestReloadDuringStartup(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"status":200}`) }))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	path, plain := writeConfig(t, dir, up.URL, false)
	hash := auth.HashKey(plain)

	ctx, cancel := context.WithCancel(t.Context())
	signals := make(chan os.Signal, 1)
	done := make(chan error, 1)
	ready := make(chan string, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-log-level", "ERROR", "-config", path, "-demo-upstream=false"},
			&syncbuf.Buffer{}, &syncbuf.Buffer{}, signals, func(addr string) {
				// The administrator disables the key and sends SIGHUP
				// before the gateway's loop reads signals.
				writeConfigWithKey(t, dir, up.URL, plain, fmt.Sprintf("%x", hash[:]), true)
				signals <- syscall.SIGHUP
				ready <- addr
			})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the gateway stopped with %v", err)
		}
	})
	var g gatewayUnderTest
	select {
	case addr := <-ready:
		g.base = "http://" + addr
	case err := <-done:
		t.Fatalf("the gateway did not start: %v", err)
	}
	h := map[string]string{"X-API-Key": plain, "Content-Type": "application/json"}
	waitFor(t, func() bool { return g.call(t, "POST", "/api/calc", h, `{"inputs":{}}`).status == 401 })
}

// startReloadable starts the gateway on a configuration file, in a new
// directory, whose one key calls an upstream answering {"status":200}, and
// checks that the key gets 200. It returns the gateway, the directory, the
// file, the key and the upstream's URL, for a test to rewrite the file.
func startReloadable(t *testing.T) (g *gatewayUnderTest, dir, path, plain, upURL string) {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"status":200}`) }))
	t.Cleanup(up.Close)
	dir = t.TempDir()
	path, plain = writeConfig(t, dir, up.URL, false)
	g = start(t, "-config", path, "-demo-upstream=false")
	h := map[string]string{"X-API-Key": plain, "Content-Type": "application/json"}
	if got := g.call(t, "POST", "/api/calc", h, `{"inputs":{}}`); got.status != 200 {
		t.Fatalf("before reload: %d %s", got.status, got.body)
	}
	return g, dir, path, plain, up.URL
}

// waitFor polls cond until it holds: the reload is asynchronous. The minute
// it allows only ends a test whose condition never comes, however busy the
// machine.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestGracefulShutdown: a request in flight when the server is told to stop
// is answered in full; a new connection afterwards is refused.
func TestGracefulShutdown(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet { // the probe of a /health that got in before the listener closed
			return
		}
		close(arrived)
		<-release
		io.WriteString(w, `{"status":200,"response_data":{"outputs":{"done":true}}}`)
	}))
	defer up.Close()
	path, plain := writeConfig(t, t.TempDir(), up.URL, false)

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-config", path, "-demo-upstream=false", "-log-level", "ERROR"},
			io.Discard, io.Discard, nil, func(a string) { ready <- a })
	}()
	base := "http://" + <-ready

	type result struct {
		status int
		body   string
		err    error
	}
	inflight := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("POST", base+"/api/calc", strings.NewReader(`{"inputs":{}}`))
		req.Header.Set("X-API-Key", plain)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			inflight <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		inflight <- result{status: resp.StatusCode, body: string(b)}
	}()
	<-arrived
	cancel() // SIGTERM
	// The listener closes at once: a new request cannot get in.
	waitFor(t, func() bool {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		_, err := c.Get(base + "/health")
		return err != nil
	})
	close(release)
	r := <-inflight
	if r.err != nil || r.status != 200 || r.body != `{"status":200,"response_data":{"outputs":{"done":true}}}` {
		t.Errorf("in-flight request: %v %d %q, want it answered in full", r.err, r.status, r.body)
	}
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

func TestMint(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-mint", "-name", "Alice", "-products", "a, b", "-per-minute", "30"}, &out, io.Discard, nil, nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "key (shown once, give it to the caller): ila_") {
		t.Fatalf("mint printed %q", out.String())
	}
	plain := strings.TrimPrefix(lines[0], "key (shown once, give it to the caller): ")
	var entry keyConfig
	if err := json.Unmarshal([]byte(lines[2]), &entry); err != nil {
		t.Fatalf("config entry %q: %v", lines[2], err)
	}
	h := auth.HashKey(plain)
	if entry.Hash != fmt.Sprintf("%x", h[:]) || entry.Name != "Alice" || entry.PerMinute != 30 ||
		strings.Join(entry.Products, ",") != "a,b" || !strings.HasPrefix(entry.ID, "key_") {
		t.Errorf("entry = %+v", entry)
	}
	if strings.Contains(lines[2], plain) {
		t.Error("the config entry holds the plaintext key")
	}
	// The entry pastes into a configuration as it is.
	if _, err := parseConfig([]byte(`{"keys":[` + lines[2] + `],"products":[]}`)); err != nil {
		t.Errorf("the printed entry does not parse: %v", err)
	}
}

func TestParseConfigRefuses(t *testing.T) {
	for name, cfg := range map[string]string{
		"unknown field":   `{"keys":[],"products":[],"limit":{}}`,
		"bad hash":        `{"keys":[{"id":"k","hash":"abc"}]}`,
		"duplicate key":   `{"keys":[{"id":"k","hash":"` + strings.Repeat("a", 64) + `"},{"id":"k","hash":"` + strings.Repeat("b", 64) + `"}]}`,
		"no upstream":     `{"products":[{"slug":"p","active":true}]}`,
		"bad duration":    `{"products":[{"slug":"p","upstream":{"url":"http://127.0.0.1:1","timeout":"soon"}}]}`,
		"not json":        `{`,
		"product no slug": `{"products":[{"upstream":{"url":"http://127.0.0.1:1"}}]}`,
		"bad proxy":       `{"failed_key_throttle":{"client_header":"X-Forwarded-For","trusted_proxies":["10.0.0.0/33"]}}`,
		"throttle typo":   `{"failed_key_throttle":{"attempt":3}}`,
		"negative per":    `{"failed_key_throttle":{"per":"-1m"}}`,
	} {
		if _, err := parseConfig([]byte(cfg)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestRedisReplicas: two gateways started with -redis on one Redis share the
// tiny key's 2 a minute. Skipped without redis-server on PATH, unless
// GATEHOUSE_REQUIRE_REDIS=1.
func TestRedisReplicas(t *testing.T) {
	rs := redistest.Start(t)
	// A decision may wait a minute: a busy machine is never what fails it.
	a, b := start(t, "-redis", rs.URL, "-redis-timeout", "1m"), start(t, "-redis", rs.URL, "-redis-timeout", "1m")
	h := map[string]string{"X-API-Key": key("tiny"), "Content-Type": "application/json"}
	body := `{"inputs":{"Premium":1200,"Age":42}}`
	var got []int
	for _, g := range []*gatewayUnderTest{a, b, a, b} {
		got = append(got, g.call(t, "POST", "/api/premium-calculator", h, body).status)
	}
	if fmt.Sprint(got) != "[200 200 429 429]" {
		t.Errorf("statuses across two replicas = %v, want [200 200 429 429]", got)
	}
}

// TestFailedKeyThrottleConfig: failed_key_throttle in the configuration turns
// the throttle on: over a socket, the third guess from 127.0.0.1 gets 429 with
// Retry-After, and the valid key still gets through. Without it (every other
// test), guesses get 401 however many there are.
func TestFailedKeyThrottleConfig(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"status":200}`) }))
	defer up.Close()
	plain, k := auth.NewKey()
	cfg := fmt.Sprintf(`{
		"failed_key_throttle": {"attempts": 2, "per": "1m", "client_header": "X-Forwarded-For", "trusted_proxies": ["10.0.0.1"]},
		"keys": [{"id": "key_test", "hash": %q, "products": ["calc"]}],
		"products": [{"slug": "calc", "active": true, "required": [], "upstream": {"url": %q}}]
	}`, k.HashHex(), up.URL)
	path := filepath.Join(t.TempDir(), "gateway.json")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g := start(t, "-config", path, "-demo-upstream=false")
	post := func(key string, forwardedFor string) reply {
		h := map[string]string{"X-API-Key": key, "Content-Type": "application/json"}
		if forwardedFor != "" {
			h["X-Forwarded-For"] = forwardedFor
		}
		return g.call(t, "POST", "/api/calc", h, `{"inputs":{}}`)
	}
	if got := post(plain, ""); got.status != 200 {
		t.Fatalf("valid key: %d %s", got.status, got.body)
	}
	for i := range 2 {
		guess, _ := auth.NewKey()
		// 127.0.0.1 is not a trusted proxy: its X-Forwarded-For is ignored,
		// so a new forged address each time does not escape.
		if got := post(guess, fmt.Sprintf("203.0.113.%d", i)); got.status != 401 {
			t.Fatalf("guess %d: %d %s", i+1, got.status, got.body)
		}
	}
	guess, _ := auth.NewKey()
	got := post(guess, "203.0.113.99")
	if got.status != 429 || got.header.Get("Retry-After") != "30" || !strings.HasPrefix(got.body, `{"error":"Rate limit exceeded"`) {
		t.Errorf("third guess: %d Retry-After %q %s", got.status, got.header.Get("Retry-After"), got.body)
	}
	if got := post(plain, ""); got.status != 200 {
		t.Errorf("valid key from the throttled address: %d %s", got.status, got.body)
	}
}

// TestInProcessProduct: a product whose URL is "inprocess:calculate" is
// answered by the demo calculation in the gateway's own process, behind the
// same checks; an unknown in-process name stops the start-up.
func TestInProcessProduct(t *testing.T) {
	plain, k := auth.NewKey()
	write := func(url string) string {
		cfg := fmt.Sprintf(`{
			"keys": [{"id": "key_test", "hash": %q, "products": ["local"]}],
			"products": [{"slug": "local", "active": true, "required": ["Premium", "Age"], "upstream": {"url": %q}}]
		}`, k.HashHex(), url)
		path := filepath.Join(t.TempDir(), "gateway.json")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	g := start(t, "-config", write("inprocess:calculate"), "-demo-upstream=false")
	h := map[string]string{"X-API-Key": plain, "Content-Type": "application/json"}
	got := g.call(t, "POST", "/api/local", h, `{"inputs":{"Premium":1200,"Age":60}}`)
	want := `{"response_data":{"outputs":{"AnnualPremium":1500,"MonthlyPremium":125}},"status":200}` + "\n"
	if got.status != 200 || got.body != want || got.header.Get("X-RateLimit-Remaining") != "59" {
		t.Errorf("in-process product: %d %q %v", got.status, got.body, got.header)
	}
	if got := g.call(t, "POST", "/api/local", h, `{"inputs":{"Premium":1200}}`); got.status != 400 {
		t.Errorf("missing input: %d %s", got.status, got.body)
	}

	err := run(t.Context(), []string{"-addr", "127.0.0.1:0", "-config", write("inprocess:nope"), "-demo-upstream=false"}, io.Discard, io.Discard, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `no in-process handler "nope"`) {
		t.Errorf("unknown in-process handler: %v", err)
	}
}
