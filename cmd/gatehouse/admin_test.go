package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
	"github.com/gatehouse-go/gatehouse/internal/demo"
)

// adminURL is the admin page's address that the gateway printed.
func (g *gatewayUnderTest) adminURL(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`admin page on (http://[^ ]+/)`).FindStringSubmatch(g.stdout.String())
	if m == nil {
		t.Fatalf("no admin address in the banner: %q", g.stdout.String())
	}
	return m[1]
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// calc sends one premium-calculator call with the demo key of label.
func (g *gatewayUnderTest) calc(t *testing.T, label string) int {
	t.Helper()
	return g.call(t, "POST", "/api/premium-calculator", map[string]string{
		"Authorization": "Bearer " + key(label), "Content-Type": "application/json",
	}, `{"inputs":{"Premium":1200,"Age":42}}`).status
}

// readState reads the admin listener's /state.json.
func readState(t *testing.T, admin string) (adminState, string) {
	t.Helper()
	status, body := get(t, admin+"state.json")
	var st adminState
	if err := json.Unmarshal([]byte(body), &st); status != 200 || err != nil {
		t.Fatalf("state.json %d %q: %v", status, body, err)
	}
	return st, body
}

// tinyMinute reads key_demo_tiny's minute window from /state.json.
func tinyMinute(t *testing.T, admin string) windowState {
	t.Helper()
	st, body := readState(t, admin)
	for _, k := range st.Keys {
		if k.ID == "key_demo_tiny" {
			return k.Minute
		}
	}
	t.Fatalf("key_demo_tiny not in %q", body)
	return windowState{}
}

// TestAdminStateAndMetrics: the admin listener's state reads the keys'
// windows without spending them, and /metrics counts the gateway's requests.
func TestAdminStateAndMetrics(t *testing.T) {
	g := start(t, "-admin-addr", "127.0.0.1:0")
	admin := g.adminURL(t)
	for range 3 { // reading the state spends nothing
		if w := tinyMinute(t, admin); w != (windowState{Limit: 2, Remaining: 2}) {
			t.Fatalf("tiny's minute before any call: %+v, want 2 of 2", w)
		}
	}
	if codes := []int{g.calc(t, "tiny"), g.calc(t, "tiny"), g.calc(t, "tiny")}; codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Fatalf("tiny's calls: %v, want 200 200 429", codes)
	}
	if w := tinyMinute(t, admin); w.Limit != 2 || w.Remaining != 0 || w.ResetMs <= 0 || w.ResetMs > 60_000 {
		t.Fatalf("tiny's minute after two calls: %+v, want 0 of 2, full again within a minute", w)
	}
	status, metrics := get(t, admin+"metrics")
	for _, want := range []string{
		`gatehouse_requests_total{code="200",product="premium-calculator"} 2`,
		`gatehouse_requests_total{code="429",product="premium-calculator"} 1`,
		`gatehouse_upstream_requests_total{class="2xx",product="premium-calculator"} 2`,
		`gatehouse_key_checks_total{result="valid"} 3`,
		`gatehouse_ratelimit_decisions_total{result="passed",window="none"} 2`,
		`gatehouse_ratelimit_decisions_total{result="refused",window="minute"} 1`,
	} {
		if status != 200 || !strings.Contains(metrics, want) {
			t.Errorf("/metrics (%d) lacks %s", status, want)
		}
	}
	if strings.Contains(metrics, key("tiny")) || strings.Contains(metrics, "key_demo_tiny") {
		t.Error("/metrics names a key")
	}
	resp, err := http.Get(admin)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); resp.StatusCode != 200 || csp != "default-src 'self'; frame-ancestors 'none'" {
		t.Errorf("GET / = %d, CSP %q", resp.StatusCode, csp)
	}
}

// TestAdminLoopbackOnly: an address that is not loopback is refused unless
// -admin-public says so; without -admin-addr there is no admin listener.
func TestAdminLoopbackOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := run(ctx, []string{"-addr", "127.0.0.1:0", "-admin-addr", "0.0.0.0:0", "-log-level", "ERROR"},
		io.Discard, io.Discard, nil, func(string) {
			t.Error("the gateway started with a public admin address")
			cancel()
		})
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") || !strings.Contains(err.Error(), "-admin-public") {
		t.Errorf("run with a public admin address: %v", err)
	}
	g := start(t)
	if strings.Contains(g.stdout.String(), "admin page") {
		t.Errorf("an admin listener without -admin-addr: %q", g.stdout.String())
	}
}

// TestRates: the page's requests per second are the mean of the last five
// complete seconds, by status.
func TestRates(t *testing.T) {
	now := time.Unix(1000, 0)
	r := rates{now: func() time.Time { return now }}
	for range 10 {
		r.add(200)
	}
	r.add(429)
	if got := r.perSecond(); len(got) != 0 {
		t.Fatalf("the current second counted: %v", got)
	}
	now = now.Add(time.Second)
	r.add(200)
	if got := r.perSecond(); len(got) != 2 || got[0] != (statusRate{200, 2}) || got[1] != (statusRate{429, 0.2}) {
		t.Fatalf("a second later: %v, want 200 at 2/s, 429 at 0.2/s", got)
	}
	now = now.Add(5 * time.Second)
	if got := r.perSecond(); len(got) != 1 || got[0] != (statusRate{200, 0.2}) {
		t.Fatalf("five seconds later: %v, want only the later 200 at 0.2/s", got)
	}
	now = now.Add(time.Hour)
	if got := r.perSecond(); len(got) != 0 {
		t.Fatalf("an hour later: %v, want nothing", got)
	}
}

// chromium returns the path of Debian's chromium, or skips (fails with
// GATEHOUSE_REQUIRE_CHROMIUM=1).
// adminGateway returns the demo configuration's gateway, with an admin
// listener and its keys in the database at dbURL ("": the configuration's),
// in front of the demo upstream; both are closed when t ends. With a
// database it records usage with -usage-flush 1h: the rows are written when
// the test flushes, or at the end.
func adminGateway(t *testing.T, dbURL string) *gateway {
	t.Helper()
	up := httptest.NewServer(demo.Upstream(demo.Secret))
	t.Cleanup(up.Close)
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	gw, err := newGateway(context.Background(), cfg, &options{adminAddr: "127.0.0.1:0", dbURL: dbURL, usageFlush: time.Hour}, up.URL, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	return gw
}

func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("GATEHOUSE_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("chromium not found and GATEHOUSE_REQUIRE_CHROMIUM=1")
	}
	t.Skip("chromium not found")
	return ""
}

// headless runs chromium headless on url with extra flags, bounded in time,
// and returns its standard output.
func headless(t *testing.T, bin, url string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=3000"}, extra...)
	out, err := exec.CommandContext(ctx, bin, append(args, url)...).Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", extra, err)
	}
	return string(out)
}

var tinyMinuteBar = regexp.MustCompile(`data-key="key_demo_tiny"[^>]*>.*?data-window="minute" data-remaining="(\d+)" data-limit="(\d+)".*?class="count">([^<]*)<`)

// TestAdminPageInChromium: a real browser loads the admin page, whose script
// draws every demo key from /state.json; then, while a page is open, two calls
// with the tiny key drain its minute bar, and the script moves the bar in
// place from 2 of 2 to 0 of 2. With GATEHOUSE_UPDATE_SCREENSHOT=1 it also
// writes docs/admin.png.
func TestAdminPageInChromium(t *testing.T) {
	bin := chromium(t)
	gw := adminGateway(t, "")
	// The rates' clock, in seconds: the screenshot's traffic is counted in
	// one second, then shown from the next, however long the browser takes.
	var rateSec atomic.Int64
	rateSec.Store(time.Now().Unix())
	gw.admin.rates.now = func() time.Time { return time.Unix(rateSec.Load(), 0) }
	gwSrv := httptest.NewServer(gw.Handler())
	defer gwSrv.Close()
	g := &gatewayUnderTest{base: gwSrv.URL}
	// The second poll of a page armed to drain makes the tiny key's two calls
	// before it reads the state: the page then has drawn the bar full once,
	// and must move it.
	var polls, armed atomic.Int32
	adminSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/state.json" && armed.Load() == 1 && polls.Add(1) == 2 {
			g.calc(t, "tiny")
			g.calc(t, "tiny")
		}
		gw.admin.handler().ServeHTTP(w, r)
	}))
	defer adminSrv.Close()
	admin := adminSrv.URL + "/"

	dom := headless(t, bin, admin, "--dump-dom")
	for _, k := range demo.Keys() {
		if !strings.Contains(dom, `data-key="`+k.ID+`"`) {
			t.Errorf("the page does not show %s", k.ID)
		}
	}
	if !strings.Contains(dom, `<span id="key-source">served from the configuration · </span>`) {
		t.Error("the page does not say its keys are the configuration's")
	}
	m := tinyMinuteBar.FindStringSubmatch(dom)
	if m == nil || m[1] != "2" || m[2] != "2" || m[3] != "2 / 2" {
		t.Fatalf("tiny's minute bar before any call: %q", m)
	}
	armed.Store(1)
	dom = headless(t, bin, admin, "--dump-dom")
	if n := polls.Load(); n < 2 {
		t.Fatalf("the page polled %d times in its 3 s", n)
	}
	if m := tinyMinuteBar.FindStringSubmatch(dom); m == nil || m[1] != "0" || m[3] != "0 / 2" {
		t.Fatalf("tiny's minute bar after two calls while the page was open: %q", m)
	}

	if os.Getenv("GATEHOUSE_UPDATE_SCREENSHOT") != "1" {
		return
	}
	// Some traffic of every kind, a probe of the upstreams, and a complete
	// second of the rates' clock.
	g.call(t, "GET", "/health", nil, "")
	for range 12 {
		g.calc(t, "full")
	}
	for range 5 {
		g.calc(t, "scoped")
	}
	g.calc(t, "tiny")
	g.calc(t, "disabled")
	rateSec.Add(1)
	png := filepath.Join(t.TempDir(), "admin.png")
	headless(t, bin, admin, "--screenshot="+png, "--window-size=1200,800")
	b, err := os.ReadFile(png)
	if err != nil || len(b) < 1000 {
		t.Fatalf("screenshot: %d bytes, %v", len(b), err)
	}
	if err := os.WriteFile(filepath.Join(repoRoot, "docs", "admin.png"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAdminHostCheck: over a real socket, the admin listener answers a Host
// that is loopback by name, an IP literal with or without its port, or a name
// given to -admin-hosts, on every route (page, state, metrics); any other
// Host, as a page on a rebound domain would send, gets 421 in JSON and none
// of the admin's content.
func TestAdminHostCheck(t *testing.T) {
	g := start(t, "-admin-addr", "127.0.0.1:0", "-admin-hosts", "Admin.Internal.example, ops.example.")
	admin := g.adminURL(t)
	port := strings.TrimSuffix(admin[strings.LastIndex(admin, ":")+1:], "/")
	const refused = `{"error":"Misdirected request: the admin listener does not answer this host name (add it with -admin-hosts)"}` + "\n"
	for _, tt := range []struct {
		host string
		ok   bool
	}{
		{"evil.example", false},
		{"evil.example:" + port, false},
		{"127.0.0.1.evil.example", false},
		{"localhost.evil.example", false},
		{"internal.example", false},
		{"localhost", true},
		{"LOCALHOST:" + port, true},
		{"localhost.:" + port, true},
		{"127.0.0.1:" + port, true},
		{"127.0.0.1", true},
		{"[::1]:" + port, true},
		{"[::1]", true},
		{"192.0.2.7:" + port, true},
		{"admin.internal.example", true},
		{"ADMIN.internal.example:" + port, true},
		{"ops.example", true},
	} {
		for _, path := range []string{"", "state.json", "metrics", "admin.js"} {
			req, err := http.NewRequest("GET", admin+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tt.host
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("Host %q: %v", tt.host, err)
			}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
			resp.Body.Close()
			switch {
			case tt.ok && resp.StatusCode != 200:
				t.Errorf("Host %q, /%s: %d %q, want 200", tt.host, path, resp.StatusCode, b)
			case !tt.ok && (resp.StatusCode != http.StatusMisdirectedRequest || string(b) != refused ||
				resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "no-store"):
				t.Errorf("Host %q, /%s: %d %s %q, want 421 %q", tt.host, path, resp.StatusCode, resp.Header.Get("Content-Type"), b, refused)
			}
		}
	}
}

// TestAdminHostsFlag: -admin-hosts takes host names only, and only with
// -admin-addr.
func TestAdminHostsFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-admin-hosts", "ops.example"}, "-admin-hosts names the host names of the admin listener: give -admin-addr too"},
		{[]string{"-admin-addr", "127.0.0.1:0", "-admin-hosts", "ops.example:9090"}, `invalid value "ops.example:9090" for flag -admin-hosts: "ops.example:9090" is not a host name (no port, scheme or path)`},
		{[]string{"-admin-addr", "127.0.0.1:0", "-admin-hosts", "a.example,,b.example"}, `invalid value "a.example,,b.example" for flag -admin-hosts: an empty host name`},
		{[]string{"-admin-addr", "127.0.0.1:0", "-admin-hosts", "http://ops.example"}, `invalid value "http://ops.example" for flag -admin-hosts: "http://ops.example" is not a host name (no port, scheme or path)`},
	} {
		_, err := parseFlags(tt.args, io.Discard)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%v: %v, want %q", tt.args, err, tt.want)
		}
	}
}

// pageKeys is the data-key of each key row of a page's DOM, in order.
var pageKeyRows = regexp.MustCompile(`<tr data-key="([^"]+)"( class="inactive")?`)

// TestAdminDBKeys: with -db, the admin page lists the database's keys, the
// ones the gateway serves, and none of the configuration's: /state.json and
// the page in Chromium name exactly the database's keys, a key disabled in
// the database shows inactive at the next poll, and a call with a key drains
// its bar.
func TestAdminDBKeys(t *testing.T) {
	bin := chromium(t)
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			url := dbURLs(t)[kind]()
			plain, first := parseNewKey(t, keysCLI(t, "create", "-db", url, "-name", "ci", "-owner", "acme", "-products", "premium-calculator", "-per-minute", "5", "-per-day", "100"))
			_, second := parseNewKey(t, keysCLI(t, "create", "-db", url, "-name", "web", "-owner", "globex", "-products", "*"))
			_, third := parseNewKey(t, keysCLI(t, "create", "-db", url, "-name", "batch", "-owner", "acme", "-products", "*"))
			want := []string{first, second, third}
			slices.Sort(want)

			g := start(t, "-db", url, "-admin-addr", "127.0.0.1:0")
			admin := g.adminURL(t)
			if r := g.call(t, "POST", "/api/premium-calculator", map[string]string{"X-API-Key": plain, "Content-Type": "application/json"}, quoteBody); r.status != 200 {
				t.Fatalf("the database's key: %d %s", r.status, r.body)
			}
			keysCLI(t, "disable", "-db", url, second)
			st, body := readState(t, admin)
			var ids []string
			for _, k := range st.Keys {
				ids = append(ids, k.ID)
				if k.Active == (k.ID == second) {
					t.Errorf("%s active %v, want %v", k.ID, k.Active, k.ID != second)
				}
				if k.ID == first && (k.Minute.Limit != 5 || k.Minute.Remaining != 4 || k.Day.Limit != 100 || k.Day.Remaining != 99) {
					t.Errorf("the key used once: minute %+v, day %+v, want 4 of 5 and 99 of 100", k.Minute, k.Day)
				}
				if k.ID == third && (k.Minute.Limit != 60 || k.Minute.Remaining != 60 || k.Day.Limit != 10000) {
					t.Errorf("a key without limits: minute %+v, day %+v, want the defaults, 60 and 10000", k.Minute, k.Day)
				}
			}
			if !slices.Equal(ids, want) || st.KeysTotal != 3 || st.KeySource != "database" || st.KeysError != "" {
				t.Errorf("state.json keys %v of %d from the %q (error %q), want the database's %v", ids, st.KeysTotal, st.KeySource, st.KeysError, want)
			}
			for _, d := range demo.Keys() {
				if strings.Contains(body, d.ID) {
					t.Errorf("state.json names the configuration's %s", d.ID)
				}
			}

			dom := headless(t, bin, admin, "--dump-dom")
			var rows []string
			for _, m := range pageKeyRows.FindAllStringSubmatch(dom, -1) {
				rows = append(rows, m[1])
				if (m[2] != "") != (m[1] == second) {
					t.Errorf("the page's row of %s: %q", m[1], m[0])
				}
			}
			if !slices.Equal(rows, want) || !strings.Contains(dom, `<span id="key-source">served from the database · </span>`) {
				t.Errorf("the page's key rows %v, want the database's %v, served from the database", rows, want)
			}
		})
	}
}

// keysNote is the note under the page's keys table.
var keysNote = regexp.MustCompile(`<p id="keys-note" class="([^"]*)">([^<]*)</p>`)

// TestAdminDBKeysBoundedAndDown: the page shows at most maxKeys of the
// database's keys, the first by ID, and says how many there are; when the
// database cannot be listed, state.json says so, in words that do not name
// the database, and so does the page.
func TestAdminDBKeysBoundedAndDown(t *testing.T) {
	bin := chromium(t)
	url := "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	var ids []string
	for range 3 {
		_, id := parseNewKey(t, keysCLI(t, "create", "-db", url, "-owner", "acme", "-products", "*"))
		ids = append(ids, id)
	}
	slices.Sort(ids)
	gw := adminGateway(t, url)
	gw.admin.maxKeys = 2
	adminSrv := httptest.NewServer(gw.admin.handler())
	defer adminSrv.Close()
	admin := adminSrv.URL + "/"

	st, _ := readState(t, admin)
	if len(st.Keys) != 2 || st.Keys[0].ID != ids[0] || st.Keys[1].ID != ids[1] || st.KeysTotal != 3 || st.KeysError != "" {
		t.Errorf("state with 3 keys, at most 2 shown: %+v, want %v of 3", st, ids[:2])
	}
	dom := headless(t, bin, admin, "--dump-dom")
	if m := keysNote.FindStringSubmatch(dom); m == nil || m[1] != "note" || m[2] != "the first 2 of 3 keys, by id" {
		t.Errorf("the page's note on 2 of 3 keys: %q", m)
	}
	if rows := pageKeyRows.FindAllStringSubmatch(dom, -1); len(rows) != 2 {
		t.Errorf("the page shows %d keys, want 2", len(rows))
	}

	db, err := sqlstore.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DROP TABLE gatehouse_keys`); err != nil {
		t.Fatal(err)
	}
	st, body := readState(t, admin)
	if len(st.Keys) != 0 || st.KeysTotal != 0 || st.KeySource != "database" || st.KeysError != msgKeysUnavailable ||
		!strings.Contains(body, `"keys":[],"keys_total":0,"key_source":"database","keys_error":"the key database does not answer: its keys cannot be shown",`) {
		t.Errorf("state with the keys table gone: %s", body)
	}
	dom = headless(t, bin, admin, "--dump-dom")
	if m := keysNote.FindStringSubmatch(dom); m == nil || m[1] != "note bad" || m[2] != msgKeysUnavailable {
		t.Errorf("the page's note with the keys table gone: %q", m)
	}
}

// demoDegraded is the demo's /health: its broken, misconfigured and
// overloaded upstreams fail their probes as they fail their calls.
const demoDegraded = `{"status":"degraded","upstreams":{"broken-calculator":"down","misconfigured-calculator":"down","overloaded-calculator":"down"}}` + "\n"

// upstreamRows matches each upstream row of the page's DOM.
var upstreamRows = regexp.MustCompile(`<tr data-upstream="[^"]*">.*?</tr>`)

// TestAdminUpstreamHealth: the page's upstream health is the gateway's own.
// The demo's failing upstreams fail their probes, so /health names them and
// state.json and the page in Chromium show them down beside the healthy one;
// failed calls open the breakers of the broken and the overloaded one, which
// the page shows open. The inactive product, never probed nor called, shows
// inactive.
func TestAdminUpstreamHealth(t *testing.T) {
	bin := chromium(t)
	gw := adminGateway(t, "")
	gwSrv := httptest.NewServer(gw.Handler())
	defer gwSrv.Close()
	g := &gatewayUnderTest{base: gwSrv.URL}
	// fail makes five calls to each of the broken and the overloaded
	// product: their breakers' threshold. Made again before each state is
	// read, they keep the breakers open whatever time the browser takes: past
	// a cool-down, the first is the half-open probe, and fails.
	fail := func() {
		for _, product := range []string{"broken-calculator", "overloaded-calculator"} {
			for range 5 {
				if got := g.call(t, "POST", "/api/"+product, map[string]string{"X-API-Key": key("full"), "Content-Type": "application/json"}, quoteBody); got.status != 500 && got.status != 503 {
					t.Errorf("%s: %d %s", product, got.status, got.body)
				}
			}
		}
	}
	var failing atomic.Bool
	adminSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/state.json" && failing.Load() {
			fail()
		}
		gw.admin.handler().ServeHTTP(w, r)
	}))
	defer adminSrv.Close()
	admin := adminSrv.URL + "/"

	if got := g.call(t, "GET", "/health", nil, ""); got.status != 200 || got.body != demoDegraded {
		t.Errorf("/health: %d %q, want 200 %q", got.status, got.body, demoDegraded)
	}
	check := func(when, breaker string) {
		t.Helper()
		want := []upstreamState{
			{"broken-calculator", "down", breaker},
			{"misconfigured-calculator", "down", "closed"},
			{"overloaded-calculator", "down", breaker},
			{"premium-calculator", "ok", "closed"},
			{"retired-calculator", "inactive", "closed"},
		}
		if st, _ := readState(t, admin); !slices.Equal(st.Upstreams, want) {
			t.Errorf("%s: state.json upstreams %+v, want %+v", when, st.Upstreams, want)
		}
		pill := func(s string) string {
			class := s
			if s == "inactive" {
				class = "other"
			}
			return `<span class="pill ` + class + `">` + s + `</span>`
		}
		var wantRows []string
		for _, u := range want {
			wantRows = append(wantRows, `<tr data-upstream="`+u.Name+`"><td>`+u.Name+`</td><td>`+pill(u.Health)+`</td><td>`+pill(u.Breaker)+`</td></tr>`)
		}
		if rows := upstreamRows.FindAllString(headless(t, bin, admin, "--dump-dom"), -1); !slices.Equal(rows, wantRows) {
			t.Errorf("%s: the page's upstreams\n%s\nwant\n%s", when, strings.Join(rows, "\n"), strings.Join(wantRows, "\n"))
		}
	}
	check("probed", "closed")
	failing.Store(true)
	check("after failed calls", "open")
}
