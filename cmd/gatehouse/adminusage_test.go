package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
	"github.com/gatehouse-go/gatehouse/internal/testclock"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// usageDay is the day of the usage fixture, and usageNow the admin's clock
// in it.
var (
	usageDay = time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	usageNow = usageDay.Add(14*time.Hour + 30*time.Minute)
)

// usageFixture is a gateway on a SQLite key database of three keys, ci
// (100 a day), web (the default 10,000) and batch (50), whose usage rows
// were written by a recorder on a test clock: ci's 3 requests at 09:05 and
// one of cost 5 at 14:10, web's one at 00:00, and rows outside the day or of
// a key that is not served, which the page leaves out; flushed at 14:29:59.5.
// The admin's clock reads usageNow. ids are the keys' ids by name.
type usageFixture struct {
	gw    *gateway
	admin string // the admin listener's URL, with its final slash
	ids   map[string]string
}

func newUsageFixture(t *testing.T) usageFixture {
	t.Helper()
	url := "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	ids := map[string]string{}
	for _, k := range []struct{ name, perDay string }{{"ci", "100"}, {"web", "0"}, {"batch", "50"}} {
		_, ids[k.name] = parseNewKey(t, keysCLI(t, "create", "-db", url, "-name", k.name, "-owner", "acme", "-products", "*", "-per-day", k.perDay))
	}
	gw := adminGateway(t, url)
	gw.admin.now = func() time.Time { return usageNow }

	db, err := sqlstore.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := testclock.New(usageDay)
	u, err := sqlstore.NewUsage(db, sqlstore.UsageConfig{FlushInterval: -1, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	at := func(d time.Duration) { clk.Set(usageDay.Add(d)) }
	at(-time.Minute) // the day before
	for range 4 {
		u.Record(ids["ci"], "acme", "premium-calculator", 200, 1)
	}
	at(0)
	u.Record(ids["web"], "acme", "premium-calculator", 500, 1)
	at(9*time.Hour + 5*time.Minute)
	u.Record(ids["ci"], "acme", "premium-calculator", 200, 1)
	u.Record(ids["ci"], "acme", "premium-calculator", 200, 1)
	u.Record(ids["ci"], "acme", "premium-calculator", 404, 1)
	at(10 * time.Hour)
	u.Record("key_0000000000000000", "acme", "premium-calculator", 200, 1) // not served
	at(14*time.Hour + 10*time.Minute)
	u.Record(ids["ci"], "acme", "pdf-calculator", 200, 5)
	at(24 * time.Hour) // the day after
	u.Record(ids["web"], "acme", "premium-calculator", 200, 1)
	at(14*time.Hour + 29*time.Minute + 59*time.Second + 500*time.Millisecond)
	if err := u.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	gw.admin.usage.recorder = u

	srv := httptest.NewServer(gw.admin.handler())
	t.Cleanup(srv.Close)
	return usageFixture{gw: gw, admin: srv.URL + "/", ids: ids}
}

// sortedNames are the fixture's key names in the order of their ids.
func (f usageFixture) sortedNames() []string {
	names := []string{"ci", "web", "batch"}
	slices.SortFunc(names, func(x, y string) int { return strings.Compare(f.ids[x], f.ids[y]) })
	return names
}

// TestAdminUsageJSON: /usage.json gives, for each served key, the requests
// of each hour of the admin clock's UTC day and the day's requests and cost
// units, from the database's rows only (not the day before or after, nor a
// key not served), beside its per-day allowance, and the time of the
// gateway's last flush in whole seconds. It lists at most maxKeys keys, the
// first by id, with the total.
func TestAdminUsageJSON(t *testing.T) {
	f := newUsageFixture(t)
	objects := map[string]string{
		"ci":    `{"id":"` + f.ids["ci"] + `","name":"ci","per_day":100,"requests":4,"cost":8,"hours":[0,0,0,0,0,0,0,0,0,3,0,0,0,0,1,0,0,0,0,0,0,0,0,0]}`,
		"web":   `{"id":"` + f.ids["web"] + `","name":"web","per_day":10000,"requests":1,"cost":1,"hours":[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}`,
		"batch": `{"id":"` + f.ids["batch"] + `","name":"batch","per_day":50,"requests":0,"cost":0,"hours":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}`,
	}
	names := f.sortedNames()
	var keys []string
	for _, n := range names {
		keys = append(keys, objects[n])
	}
	head := `{"day":"2026-03-10","flushed":"2026-03-10T14:29:59Z","flush_every_ms":3600000,"keys":[`
	if status, body := get(t, f.admin+"usage.json"); status != 200 || body != head+strings.Join(keys, ",")+`],"keys_total":3}`+"\n" {
		t.Errorf("usage.json: %d\n%s\nwant\n%s", status, body, head+strings.Join(keys, ",")+`],"keys_total":3}`)
	}
	for _, secret := range []string{"ila_", "hash"} {
		if _, body := get(t, f.admin+"usage.json"); strings.Contains(body, secret) {
			t.Errorf("usage.json has %q: %s", secret, body)
		}
	}

	f.gw.admin.maxKeys = 2
	want := head + strings.Join(keys[:2], ",") + `],"keys_total":3}` + "\n"
	if status, body := get(t, f.admin+"usage.json"); status != 200 || body != want {
		t.Errorf("usage.json with at most 2 keys: %d\n%s\nwant\n%s", status, body, want)
	}
}

// TestAdminUsageRecorded: the gateway's own recorder feeds the page: calls
// through the gateway, once it has flushed, are the key's usage in
// /usage.json, in the hour they were made, and the flush's time is said.
func TestAdminUsageRecorded(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	plain, id := parseNewKey(t, keysCLI(t, "create", "-db", url, "-name", "ci", "-owner", "acme", "-products", "premium-calculator", "-per-day", "100"))
	gw := adminGateway(t, url)
	gwSrv := httptest.NewServer(gw.Handler())
	defer gwSrv.Close()
	adminSrv := httptest.NewServer(gw.admin.handler())
	defer adminSrv.Close()
	g := &gatewayUnderTest{base: gwSrv.URL}

	before := time.Now().UTC()
	for _, product := range []string{"premium-calculator", "premium-calculator", "retired-calculator"} {
		g.call(t, "POST", "/api/"+product, map[string]string{"X-API-Key": plain, "Content-Type": "application/json"}, quoteBody)
	}
	var st usageState
	read := func() {
		t.Helper()
		status, body := get(t, adminSrv.URL+"/usage.json")
		st = usageState{}
		if err := json.Unmarshal([]byte(body), &st); status != 200 || err != nil {
			t.Fatalf("usage.json %d %q: %v", status, body, err)
		}
	}
	read()
	if len(st.Keys) != 1 || st.Keys[0].Requests != 0 || !st.Flushed.IsZero() || st.FlushEveryMs != 3_600_000 || st.Error != "" {
		t.Errorf("before a flush: %+v, want no usage and no flush yet", st)
	}
	if err := gw.admin.usage.recorder.(*sqlstore.Usage).Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	read()
	after := time.Now().UTC()
	if before.Truncate(24*time.Hour) != after.Truncate(24*time.Hour) {
		t.Skip("the UTC day changed during the test")
	}
	if len(st.Keys) != 1 || st.Keys[0].ID != id || st.Keys[0].PerDay != 100 || st.Keys[0].Requests != 3 || st.Keys[0].Cost != 3 {
		t.Fatalf("after a flush: %+v, want 3 requests of ci", st)
	}
	hours := st.Keys[0].Hours
	n := hours[before.Hour()]
	if after.Hour() != before.Hour() { // the calls may be on either side of the hour
		n += hours[after.Hour()]
	}
	if n != 3 {
		t.Errorf("hours %v: %d requests in the hours of the calls, want 3", hours, n)
	}
	if st.Flushed.Before(before.Truncate(time.Second)) || st.Flushed.After(after) || st.Day != before.Format(time.DateOnly) {
		t.Errorf("flushed %v, day %s: want between %v and %v, that day", st.Flushed, st.Day, before, after)
	}
	assertMetrics(t, gw.admin, // the recorder's counts, on /metrics
		"gatehouse_usage_recorded_total 3",
		"gatehouse_usage_dropped_total 0",
		"gatehouse_usage_pending_rows 0",
		"gatehouse_usage_flushes_total 1",
		"gatehouse_usage_failed_flushes_total 0")
}

// TestUsageMetricsDropped: requests the recorder could not keep, because
// MaxPending rows were already waiting, are counted on /metrics, where an
// operator can alert on them, and so are the rows waiting.
func TestUsageMetricsDropped(t *testing.T) {
	db, err := sqlstore.Open("sqlite:" + filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	u, err := sqlstore.NewUsage(db, sqlstore.UsageConfig{MaxPending: 1, FlushInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	a := &admin{reg: prometheus.NewRegistry()}
	if err := a.countUsage(u); err != nil {
		t.Fatal(err)
	}
	u.Record("key_a", "acme", "quote", 200, 1)
	u.Record("key_b", "acme", "quote", 200, 1) // a second row: past MaxPending
	u.Record("key_a", "acme", "quote", 200, 1) // the waiting row: kept
	assertMetrics(t, a,
		"gatehouse_usage_recorded_total 3",
		"gatehouse_usage_dropped_total 1",
		"gatehouse_usage_pending_rows 1",
		"gatehouse_usage_flushes_total 0",
		"gatehouse_usage_failed_flushes_total 0")
}

// assertMetrics fails t unless a's /metrics has each of lines.
func assertMetrics(t *testing.T, a *admin, lines ...string) {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range lines {
		if !strings.Contains(rec.Body.String(), "\n"+line+"\n") {
			t.Errorf("/metrics lacks %q:\n%s", line, rec.Body.String())
		}
	}
}

// TestAdminUsageOff: without -db, /usage.json says usage needs a key
// database, and lists no key rather than zeros; with -db and -usage-flush 0
// it says the gateway records none; when the database cannot be read, it
// says so, in words that do not name it.
func TestAdminUsageOff(t *testing.T) {
	gw := adminGateway(t, "")
	gw.admin.now = func() time.Time { return usageNow }
	srv := httptest.NewServer(gw.admin.handler())
	defer srv.Close()
	want := `{"day":"2026-03-10","keys":[],"keys_total":0,"error":"usage is recorded only in a key database: start the gateway with -db to see it"}` + "\n"
	if status, body := get(t, srv.URL+"/usage.json"); status != 200 || body != want {
		t.Errorf("usage.json without -db: %d %q, want %q", status, body, want)
	}

	url := "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	keysCLI(t, "create", "-db", url, "-owner", "acme", "-products", "*")
	g := start(t, "-db", url, "-usage-flush", "0", "-admin-addr", "127.0.0.1:0")
	status, body := get(t, g.adminURL(t)+"usage.json")
	var st usageState
	if err := json.Unmarshal([]byte(body), &st); status != 200 || err != nil || st.Error != msgUsageNotRecorded || len(st.Keys) != 0 || strings.Contains(body, `"flush`) {
		t.Errorf("usage.json with -usage-flush 0: %d %s", status, body)
	}

	f := newUsageFixture(t)
	if _, err := f.gw.admin.usage.db.Exec(`DROP TABLE gatehouse_usage`); err != nil {
		t.Fatal(err)
	}
	want = `{"day":"2026-03-10","flush_every_ms":3600000,"keys":[],"keys_total":0,"error":"the key database does not answer: usage cannot be shown"}` + "\n"
	if status, body := get(t, f.admin+"usage.json"); status != 200 || body != want {
		t.Errorf("usage.json with the usage table gone: %d %q, want %q", status, body, want)
	}
}

// usageRow matches a key's row of the page's usage table; usageBar each of
// its bars.
var (
	usageRow  = regexp.MustCompile(`<tr data-usage-key="([^"]+)">.*?</tr>`)
	usageBar  = regexp.MustCompile(`<rect data-hour="(\d+)" data-count="(\d+)"`)
	usageUsed = regexp.MustCompile(`<td class="used"[^>]*>([^<]*)</td>`)
	usageNote = regexp.MustCompile(`<p id="usage-note" class="([^"]*)">([^<]*)</p>`)
)

// TestAdminUsageInChromium: in a real browser, the page's usage table has a
// row per key, in id order, whose 24 bars carry exactly the key's requests
// of each hour, beside "used / per day" in cost units; its note says the
// day and the time of the last flush. Without -db, the page says usage needs
// a key database, and shows no row.
func TestAdminUsageInChromium(t *testing.T) {
	bin := chromium(t)
	f := newUsageFixture(t)
	dom := headless(t, bin, f.admin, "--dump-dom")
	hours := map[string]map[int]int{"ci": {9: 3, 14: 1}, "web": {0: 1}, "batch": {}}
	used := map[string]string{"ci": "8 / 100", "web": "1 / 10000", "batch": "0 / 50"}
	rows := usageRow.FindAllStringSubmatch(dom, -1)
	var ids []string
	for _, n := range f.sortedNames() {
		ids = append(ids, f.ids[n])
	}
	if len(rows) != 3 {
		t.Fatalf("the page's usage rows: %d, want 3\n%s", len(rows), dom)
	}
	for i, n := range f.sortedNames() {
		row := rows[i]
		if row[1] != f.ids[n] {
			t.Errorf("usage row %d is %s, want %s (%s): rows by id %v", i, row[1], f.ids[n], n, ids)
			continue
		}
		bars := usageBar.FindAllStringSubmatch(row[0], -1)
		if len(bars) != 24 {
			t.Errorf("%s: %d bars, want 24", n, len(bars))
			continue
		}
		for h, b := range bars {
			if want := strconv.Itoa(h) + " " + strconv.Itoa(hours[n][h]); b[1]+" "+b[2] != want {
				t.Errorf("%s's bar %d: hour %s count %s, want %s", n, h, b[1], b[2], want)
			}
		}
		if m := usageUsed.FindStringSubmatch(row[0]); m == nil || m[1] != used[n] {
			t.Errorf("%s used: %q, want %q", n, m, used[n])
		}
	}
	const note = "2026-03-10, from the key database, as of this gateway's last flush, 14:29:59 UTC (flushed every 3600 s)"
	if m := usageNote.FindStringSubmatch(dom); m == nil || m[1] != "note" || m[2] != note {
		t.Errorf("the usage note: %q, want %q", m, note)
	}

	gw := adminGateway(t, "")
	srv := httptest.NewServer(gw.admin.handler())
	defer srv.Close()
	dom = headless(t, bin, srv.URL+"/", "--dump-dom")
	if m := usageNote.FindStringSubmatch(dom); m == nil || m[1] != "note" || m[2] != msgUsageNoDatabase {
		t.Errorf("the usage note without -db: %q, want %q", m, msgUsageNoDatabase)
	}
	if rows := usageRow.FindAllString(dom, -1); len(rows) != 0 {
		t.Errorf("usage rows without -db: %q", rows)
	}
}
