package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-go/gatehouse/auth"
)

// TestConfigCostsAndOwners: the configuration's product cost and format
// costs, a key's owner and windows, and the owners' allowances reach the
// running gateway: a pdf of cost 10 spends 10, and the second key of an owner
// with 12 a day between them is refused once the first has spent them, with
// the owner's window in the draft headers.
func TestConfigCostsAndOwners(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"status":200}`) }))
	defer up.Close()
	plainA, a := auth.NewKey()
	plainB, b := auth.NewKey()
	cfg := `{
  "keys": [
    {"id": "key_a", "hash": "` + a.HashHex() + `", "products": ["calc"], "per_minute": 600, "per_day": 1000, "owner": "acme",
     "windows": [{"limit": 500, "per": "1h"}]},
    {"id": "key_b", "hash": "` + b.HashHex() + `", "products": ["calc"], "per_minute": 600, "per_day": 1000, "owner": "acme"}
  ],
  "products": [{"slug": "calc", "active": true, "required": [], "upstream": {"url": "` + up.URL + `"},
    "cost": 2, "format_costs": {"pdf": 10}}],
  "owners": {"acme": {"per_day": 12}}
}`
	path := filepath.Join(t.TempDir(), "gateway.json")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g := start(t, "-config", path, "-demo-upstream=false")
	call := func(key, target string) reply {
		return g.call(t, "POST", target, map[string]string{"X-API-Key": key, "Content-Type": "application/json", "X-Request-ID": "req-costs"}, `{"inputs":{}}`)
	}
	r := call(plainA, "/api/calc?format=pdf")
	if r.status != 200 || r.header.Get("X-RateLimit-Daily-Remaining") != "990" ||
		r.header.Get("RateLimit-Policy") != `"minute";q=600;w=60, "day";q=1000;w=86400, "hour";q=500;w=3600, "owner-day";q=12;w=86400` {
		t.Errorf("pdf: %d daily remaining %q policy %q; want 200, 990 and the key's hour and the owner's day",
			r.status, r.header.Get("X-RateLimit-Daily-Remaining"), r.header.Get("RateLimit-Policy"))
	}
	r = call(plainB, "/api/calc")
	if r.status != 200 || r.header.Get("X-RateLimit-Daily-Remaining") != "998" {
		t.Errorf("b, cost 2: %d daily remaining %q; want 200, 998", r.status, r.header.Get("X-RateLimit-Daily-Remaining"))
	}
	r = call(plainB, "/api/calc")
	if r.status != 429 || r.body != `{"error":"Rate limit exceeded","request_id":"req-costs"}`+"\n" || r.header.Get("X-RateLimit-Daily-Remaining") != "998" ||
		r.header.Get("RateLimit-Policy") != `"minute";q=600;w=60, "day";q=1000;w=86400, "owner-day";q=12;w=86400` {
		t.Errorf("b once acme's 12 are spent: %d %q daily remaining %q policy %q; want 429, nothing spent, the owner's day",
			r.status, r.body, r.header.Get("X-RateLimit-Daily-Remaining"), r.header.Get("RateLimit-Policy"))
	}
}

// TestParseConfigRefusesCostsAndWindows: each wrong cost, window or owner is
// refused with an error that names where it is.
func TestParseConfigRefusesCostsAndWindows(t *testing.T) {
	hash := strings.Repeat("a", 64)
	product := func(extra string) string {
		return `{"products":[{"slug":"p","upstream":{"url":"http://127.0.0.1:1"}` + extra + `}]}`
	}
	key := func(extra string) string {
		return `{"keys":[{"id":"k","hash":"` + hash + `","products":["p"]` + extra + `}]}`
	}
	for cfg, want := range map[string]string{
		product(`,"cost":-1`):                                                   `config: product "p": cost: -1 is outside 0 to 1048576`,
		product(`,"cost":2000000`):                                              `config: product "p": cost: 2000000 is outside 0 to 1048576`,
		product(`,"format_costs":{"pfd":10}`):                                   `config: product "p": format_costs: unknown format "pfd" (the formats are json, pdf, both)`,
		product(`,"format_costs":{"pdf":0}`):                                    `config: product "p": format_costs: pdf costs 0: a cost is at least 1`,
		product(`,"format_costs":{"pdf":"ten"}`):                                `config: json: cannot unmarshal string into Go struct field productConfig.products.format_costs of type int`,
		key(`,"windows":[{"limit":0,"per":"1h"}]`):                              `config: key "k": windows[0] (0 per 1h0m0s): `,
		key(`,"windows":[{"limit":5,"per":"1ms"}]`):                             `config: key "k": windows[0] (5 per 1ms): `,
		key(`,"windows":[{"limit":5,"per":"1y"}]`):                              `config: time: unknown unit "y" in duration "1y"`,
		key(`,"windows":[{"limit":5,"per":"1m"}]`):                              `config: key "k": windows: ratelimit: invalid limits: a further window of 1m0s`,
		key(`,"windows":[{"limit":5,"per":"1h"},{"limit":6,"per":"60m"}]`):      `config: key "k": windows: ratelimit: invalid limits: two windows of 1h0m0s`,
		`{"owners":{"acme":{"per_day":5,"windows":[{"limit":1,"per":"24h"}]}}}`: `config: owner "acme": windows: ratelimit: invalid limits: a further window of 24h0m0s`,
		key(`,"per_minute":-1`):                                                 `config: key "k": per_minute and per_day must not be negative`,
		key(`,"window":[]`):                                                     `config: json: unknown field "window"`,
		`{"owners":{"acme":{}}}`:                                                `config: owner "acme": no limit: set per_minute, per_day or windows (or leave the owner out)`,
		`{"owners":{"acme":{"per_day":-5}}}`:                                    `config: owner "acme": per_minute and per_day must not be negative`,
		`{"owners":{"acme":{"windows":[{"limit":1,"per":"800h"}]}}}`:            `config: owner "acme": windows[0] (1 per 800h0m0s): `,
		`{"owners":{"acme":{"per_dya":5}}}`:                                     `config: json: unknown field "per_dya"`,
	} {
		_, err := parseConfig([]byte(cfg))
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s:\n got %v\nwant %s…", cfg, err, want)
		}
	}
	ok := `{"keys":[{"id":"k","hash":"` + hash + `","products":["p"],"owner":"nobody","windows":[{"limit":5,"per":"720h"}]}],` +
		`"products":[{"slug":"p","upstream":{"url":"http://127.0.0.1:1"},"cost":0,"format_costs":{"json":1,"pdf":10,"both":11}}],` +
		`"owners":{"acme":{"per_minute":1},"globex":{"windows":[{"limit":1,"per":"1s"}]}}}`
	if _, err := parseConfig([]byte(ok)); err != nil {
		t.Errorf("a valid configuration (an owner without an allowance, every format) is refused: %v", err)
	}
}

// TestMintOwnerAndWindows: -mint -owner -windows prints an entry with both,
// which pastes into a configuration; a bad -windows is refused.
func TestMintOwnerAndWindows(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-mint", "-products", "a", "-owner", "acme", "-windows", "1h=1000, 720h=100000"}, &out, io.Discard, nil, nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("mint printed %q", out.String())
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(lines[2]), &entry); err != nil {
		t.Fatal(err)
	}
	if entry["owner"] != "acme" {
		t.Errorf("owner = %v, want acme", entry["owner"])
	}
	if w, _ := json.Marshal(entry["windows"]); string(w) != `[{"limit":1000,"per":"1h0m0s"},{"limit":100000,"per":"720h0m0s"}]` {
		t.Errorf("windows = %s", w)
	}
	if _, err := parseConfig([]byte(`{"keys":[` + lines[2] + `],"products":[]}`)); err != nil {
		t.Errorf("the printed entry does not parse: %v", err)
	}
	for _, bad := range []string{"1h", "1h=x", "soon=5", "1h=0", "1ms=5"} {
		if err := run(context.Background(), []string{"-mint", "-products", "a", "-windows", bad}, io.Discard, io.Discard, nil, nil); err == nil || !strings.HasPrefix(err.Error(), "-windows: ") {
			t.Errorf("-windows %q: %v, want a -windows error", bad, err)
		}
	}
}

// TestKeysCLIWindows: keys create and update set a key's windows in the
// database, show prints them, -windows none removes them, and a window the
// rate limiter would refuse is refused.
func TestKeysCLIWindows(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	_, id := parseNewKey(t, keysCLI(t, "create", "-db", url, "-owner", "acme", "-products", "a", "-windows", "1h=1000,720h=100000"))
	if show := keysCLI(t, "show", "-db", url, id); !strings.Contains(show, "owner: acme\n") || !strings.Contains(show, "windows: 1h0m0s=1000,720h0m0s=100000\n") {
		t.Errorf("show:\n%s", show)
	}
	if up := keysCLI(t, "update", "-db", url, id, "-windows", "10s=5"); !strings.Contains(up, "windows: 10s=5\n") {
		t.Errorf("update -windows 10s=5:\n%s", up)
	}
	if up := keysCLI(t, "update", "-db", url, id, "-name", "x"); !strings.Contains(up, "windows: 10s=5\n") {
		t.Errorf("update without -windows changed them:\n%s", up)
	}
	if up := keysCLI(t, "update", "-db", url, id, "-windows", "none"); !strings.Contains(up, "windows: none\n") {
		t.Errorf("update -windows none:\n%s", up)
	}
	for _, args := range [][]string{
		{"create", "-db", url, "-owner", "acme", "-products", "a", "-windows", "1h=0"},
		{"create", "-db", url, "-owner", "acme", "-products", "a", "-windows", "1h"},
		{"update", "-db", url, id, "-windows", "800h=5"},
	} {
		if err := run(context.Background(), append([]string{"keys"}, args...), io.Discard, io.Discard, nil, nil); err == nil {
			t.Errorf("keys %v: no error", args)
		}
	}
}

// TestKeysCLIOwnerLimits: keys owner-limits sets, shows, lists and deletes an
// owner's allowance in the database, and a gateway on that database makes
// two keys of the owner share it: the second key is refused once the first
// has spent it, with the owner's window in the draft headers.
func TestKeysCLIOwnerLimits(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	if out := keysCLI(t, "owner-limits", "-db", url, "acme", "-per-day", "3", "-windows", "1h=2"); out != "owner: acme\nper-minute: 0\nper-day: 3\nwindows: 1h0m0s=2\n" {
		t.Errorf("set printed %q", out)
	}
	if out := keysCLI(t, "owner-limits", "-db", url, "acme"); out != "owner: acme\nper-minute: 0\nper-day: 3\nwindows: 1h0m0s=2\n" {
		t.Errorf("show printed %q", out)
	}
	keysCLI(t, "owner-limits", "-db", url, "globex", "-per-minute", "7")
	if out := keysCLI(t, "owner-limits", "-db", url); out != "OWNER   PER-MINUTE  PER-DAY  WINDOWS\nacme    0           3        1h0m0s=2\nglobex  7           0        none\n" {
		t.Errorf("list printed %q", out)
	}
	if out := keysCLI(t, "owner-limits", "-db", url, "globex", "-delete"); out != "deleted the allowance of globex\n" {
		t.Errorf("delete printed %q", out)
	}
	for _, args := range [][]string{
		{"owner-limits", "-db", url, "globex"},                    // deleted
		{"owner-limits", "-db", url, "acme", "-per-day", "0"},     // no limit left
		{"owner-limits", "-db", url, "acme", "-windows", "1ms=1"}, // not a whole second
		{"owner-limits", "-db", url, "-per-day", "5"},             // no owner
		{"owner-limits", "-db", url, "a", "b"},
	} {
		if err := run(context.Background(), append([]string{"keys"}, args...), io.Discard, io.Discard, nil, nil); err == nil {
			t.Errorf("keys %v: no error", args)
		}
	}

	plainA, _ := parseNewKey(t, keysCLI(t, "create", "-db", url, "-owner", "acme", "-products", "calc", "-per-minute", "60", "-per-day", "1000"))
	plainB, _ := parseNewKey(t, keysCLI(t, "create", "-db", url, "-owner", "acme", "-products", "calc", "-per-minute", "60", "-per-day", "1000"))
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"status":200}`) }))
	defer up.Close()
	cfgPath, _ := writeConfig(t, t.TempDir(), up.URL, false)
	g := start(t, "-config", cfgPath, "-db", url, "-demo-upstream=false")
	call := func(key string) reply {
		return g.call(t, "POST", "/api/calc", map[string]string{"X-API-Key": key, "Content-Type": "application/json", "X-Request-ID": "req-owner"}, `{"inputs":{}}`)
	}
	policy := `"minute";q=60;w=60, "day";q=1000;w=86400, "owner-day";q=3;w=86400, "owner-hour";q=2;w=3600`
	for i, key := range []string{plainA, plainB} {
		if r := call(key); r.status != 200 || r.header.Get("RateLimit-Policy") != policy {
			t.Errorf("call %d: %d policy %q, want 200 and %s", i, r.status, r.header.Get("RateLimit-Policy"), policy)
		}
	}
	r := call(plainB)
	if r.status != 429 || r.body != `{"error":"Rate limit exceeded","request_id":"req-owner"}`+"\n" || r.header.Get("RateLimit-Policy") != policy ||
		r.header.Get("X-RateLimit-Daily-Remaining") != "999" {
		t.Errorf("b once acme's hour is spent: %d %q policy %q daily remaining %q; want 429, the owner's windows, nothing spent",
			r.status, r.body, r.header.Get("RateLimit-Policy"), r.header.Get("X-RateLimit-Daily-Remaining"))
	}
}

// TestDatabaseOwnerLimits: with -db, an owner's allowance set by the CLI is
// shared by its keys in the gateway (gatehouse.Config.Owners is the
// database's OwnerRates): acme may make 2 requests a day, its second key's
// second request is refused with the owner's window in the headers.
func TestDatabaseOwnerLimits(t *testing.T) {
	url := dbURLs(t)["sqlite"]()
	keysCLI(t, "migrate", "-db", url)
	keysCLI(t, "owner-limits", "-db", url, "acme", "-per-day", "2")
	var plains []string
	for range 2 {
		plain, _ := parseNewKey(t, keysCLI(t, "create", "-db", url, "-owner", "acme", "-products", "premium-calculator", "-per-minute", "100", "-per-day", "1000"))
		plains = append(plains, plain)
	}
	g := start(t, "-db", url)
	call := func(plain string) reply {
		return g.call(t, "POST", "/api/premium-calculator", map[string]string{"X-API-Key": plain, "Content-Type": "application/json", "X-Request-ID": "own"}, quoteBody)
	}
	for i, plain := range plains {
		if r := call(plain); r.status != 200 {
			t.Fatalf("key %d, first request: %d %s", i, r.status, r.body)
		}
	}
	r := call(plains[1])
	if r.status != 429 || r.body != `{"error":"Rate limit exceeded","request_id":"own"}`+"\n" {
		t.Fatalf("third request of acme: %d %q, want 429", r.status, r.body)
	}
	// The key's own windows pass; the owner's day is spent: the next of its
	// two tokens is back in 12 h. (The key's resets follow the real clock, so
	// only the owner's item of RateLimit is held exactly.)
	for name, want := range map[string]string{
		"Retry-After":                 "43200",
		"RateLimit-Policy":            `"minute";q=100;w=60, "day";q=1000;w=86400, "owner-day";q=2;w=86400`,
		"X-RateLimit-Limit":           "100",
		"X-RateLimit-Remaining":       "99",
		"X-RateLimit-Daily-Limit":     "1000",
		"X-RateLimit-Daily-Remaining": "999",
	} {
		if got := r.header.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if got := r.header.Get("RateLimit"); !strings.HasSuffix(got, `, "owner-day";r=0;t=86400`) {
		t.Errorf("RateLimit %q, want the owner's day spent", got)
	}
}
