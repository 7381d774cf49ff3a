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
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
)

// usageCLI runs gatehouse usage with args and returns its output, failing t
// on an error.
func usageCLI(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), append([]string{"usage"}, args...), &out, &errOut, nil, nil); err != nil {
		t.Fatalf("usage %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// TestUsageCommand: gatehouse usage prints the usage rows of a database
// exactly, as CSV, JSON lines or Stripe meter events, by key, owner or
// product, hourly or summed, filtered (by key, owner, product or status
// class: -class 2xx bills Stripe for the 2xx answers only); the same bytes
// twice; and refuses a request it cannot answer with the reason.
func TestUsageCommand(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	db, err := openDB(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 11, 28, 12, 30, 0, 0, time.UTC)
	u, err := sqlstore.NewUsage(db, sqlstore.UsageConfig{FlushInterval: -1, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	u.Record("key_1", "acme", "calc", 200, 2)
	u.Record("key_1", "acme", "calc", 200, 2)
	u.Record("key_2", "acme", "calc", 404, 1)
	u.Record("key_3", "globex", "pdf", 500, 5)
	now = now.Add(time.Hour)
	u.Record("key_1", "acme", "pdf", 200, 5)
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	customers := filepath.Join(t.TempDir(), "customers.json")
	if err := os.WriteFile(customers, []byte(`{"acme":"cus_A","globex":"cus_G"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	span := []string{"-db", url, "-from", "2026-11-28", "-to", "2026-11-29"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "period,key_id,owner,product,status,requests,cost\n,,acme,calc,2xx,2,4\n,,acme,calc,4xx,1,1\n,,acme,pdf,2xx,1,5\n,,globex,pdf,5xx,1,5\n"},
		{[]string{"-by", "product"}, "period,key_id,owner,product,status,requests,cost\n,,,calc,2xx,2,4\n,,,calc,4xx,1,1\n,,,pdf,2xx,1,5\n,,,pdf,5xx,1,5\n"},
		{[]string{"-by", "key", "-hourly", "-owner", "acme", "-format", "jsonl"}, `{"period":"2026-11-28T12:00:00Z","key_id":"key_1","owner":"acme","product":"calc","status":"2xx","requests":2,"cost":4}
{"period":"2026-11-28T12:00:00Z","key_id":"key_2","owner":"acme","product":"calc","status":"4xx","requests":1,"cost":1}
{"period":"2026-11-28T13:00:00Z","key_id":"key_1","owner":"acme","product":"pdf","status":"2xx","requests":1,"cost":5}
`},
		{[]string{"-by", "key", "-key", "key_3", "-from", "2026-11-28T12:00:00Z", "-to", "2026-11-28T13:00:00Z"}, "period,key_id,owner,product,status,requests,cost\n,key_3,globex,pdf,5xx,1,5\n"},
		{[]string{"-format", "stripe", "-customers", customers, "-event", "units"}, `{"event_name":"units","identifier":"gatehouse-46d6e7d97581200226c3cbb12e61345d","payload":{"stripe_customer_id":"cus_A","value":"5"},"timestamp":1795867200}
{"event_name":"units","identifier":"gatehouse-d3e21a2475fd699d27254ab969736f27","payload":{"stripe_customer_id":"cus_G","value":"5"},"timestamp":1795867200}
{"event_name":"units","identifier":"gatehouse-1525133536cf230c7f9a6e03c8b0f54c","payload":{"stripe_customer_id":"cus_A","value":"5"},"timestamp":1795870800}
`},
		{[]string{"-by", "product", "-class", "2xx,4xx"}, "period,key_id,owner,product,status,requests,cost\n,,,calc,2xx,2,4\n,,,calc,4xx,1,1\n,,,pdf,2xx,1,5\n"},
		{[]string{"-format", "stripe", "-customers", customers, "-event", "units", "-class", "2xx"}, `{"event_name":"units","identifier":"gatehouse-46d6e7d97581200226c3cbb12e61345d","payload":{"stripe_customer_id":"cus_A","value":"4"},"timestamp":1795867200}
{"event_name":"units","identifier":"gatehouse-1525133536cf230c7f9a6e03c8b0f54c","payload":{"stripe_customer_id":"cus_A","value":"5"},"timestamp":1795870800}
`},
		{[]string{"-format", "stripe", "-customers", customers, "-value", "requests", "-product", "calc"}, `{"event_name":"gatehouse_units","identifier":"gatehouse-819989ba61003473d5d8b306504c1f9d","payload":{"stripe_customer_id":"cus_A","value":"3"},"timestamp":1795867200}
`},
	} {
		args := append(append([]string{}, span...), c.args...)
		got := usageCLI(t, args...)
		if got != c.want {
			t.Errorf("usage %s:\n%s\nwant:\n%s", strings.Join(c.args, " "), got, c.want)
		}
		if again := usageCLI(t, args...); again != got {
			t.Errorf("usage %s twice: %q, then %q", strings.Join(c.args, " "), got, again)
		}
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-from", "2026-11-28", "-to", "2026-11-29"}, "usage: -db URL is required"},
		{[]string{"-db", url, "-to", "2026-11-29"}, "usage: -from is required"},
		{[]string{"-db", url, "-from", "yesterday", "-to", "2026-11-29"}, `usage: -from "yesterday": want RFC 3339 (2026-11-28T12:00:00Z) or a day (2026-11-28)`},
		{[]string{"-db", url, "-from", "2026-11-29", "-to", "2026-11-28"}, "usage: -from must be before -to"},
		{append(span, "-by", "hour"), `usage: -by "hour": want key, owner or product`},
		{append(span, "-format", "xml"), `usage: -format "xml": want csv, jsonl or stripe`},
		{append(span, "-format", "stripe"), "usage: -format stripe needs -customers FILE, the owners' Stripe customers"},
		{append(span, "-format", "stripe", "-customers", customers, "-value", "bytes"), `usage: -value "bytes": want cost or requests`},
		{append(span, "extra"), "usage: unexpected arguments: extra"},
		{append(span, "-class", "6xx"), `usage: -class "6xx": want status classes, comma-separated: 1xx, 2xx, 3xx, 4xx or 5xx`},
		{append(span, "-class", "2xx,"), `usage: -class "2xx,": want status classes, comma-separated: 1xx, 2xx, 3xx, 4xx or 5xx`},
		{append(span, "-class", "2XX"), `usage: -class "2XX": want status classes, comma-separated: 1xx, 2xx, 3xx, 4xx or 5xx`},
	} {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"usage"}, c.args...), &out, io.Discard, nil, nil)
		if err == nil || err.Error() != c.want || out.Len() != 0 {
			t.Errorf("usage %s: %v, printed %q; want %s", strings.Join(c.args, " "), err, out.String(), c.want)
		}
	}
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"usage", "-h"}, io.Discard, &stderr, nil, nil); err != nil || !strings.HasPrefix(stderr.String(), usageCmdHead+"  -by string\n") {
		t.Errorf("usage -h: %v\n%s", err, stderr.String())
	}
}

// usageConfig writes a gateway configuration of the products calc (cost 1),
// pdf (cost 5, whose upstream answers 422) on the upstream at upURL, and
// returns its path.
func usageConfig(t *testing.T, upURL string) string {
	t.Helper()
	cfg := map[string]any{
		"products": []map[string]any{
			{"slug": "calc", "active": true, "required": []string{}, "upstream": map[string]any{"url": upURL + "/calc"}},
			{"slug": "pdf", "active": true, "required": []string{}, "cost": 5, "upstream": map[string]any{"url": upURL + "/pdf"}},
		},
	}
	b, _ := json.Marshal(cfg)
	path := filepath.Join(t.TempDir(), "gateway.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// usageUpstream answers 200 on /calc and 422 on /pdf.
func usageUpstream(t *testing.T) string {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/pdf" {
			w.WriteHeader(http.StatusUnprocessableEntity)
		}
		io.WriteString(w, `{}`)
	}))
	t.Cleanup(up.Close)
	return up.URL
}

// TestGatewayRecordsUsage: a gateway with -db records each charged request
// (200, the upstream's 422, 404 for an unknown product) and none refused
// (401, 429), and writes them at its graceful shutdown, long before its
// -usage-flush interval: gatehouse usage then prints exactly them.
func TestGatewayRecordsUsage(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	plainA, idA := parseNewKey(t, keysCLI(t, "create", "-db", url, "-owner", "acme", "-products", "calc,pdf", "-per-minute", "100", "-per-day", "1000"))
	plainB, idB := parseNewKey(t, keysCLI(t, "create", "-db", url, "-owner", "globex", "-products", "calc", "-per-minute", "2", "-per-day", "1000"))
	g := start(t, "-config", usageConfig(t, usageUpstream(t)), "-db", url, "-demo-upstream=false", "-usage-flush", "1h")
	for _, c := range []struct {
		key, product string
		status       int
	}{
		{plainA, "calc", 200}, {plainA, "calc", 200}, {plainA, "pdf", 422}, {plainA, "nope", 404},
		{plainB, "calc", 200}, {plainB, "calc", 200}, {plainB, "calc", 429}, {"ila_unknown", "calc", 401},
	} {
		r := g.call(t, "POST", "/api/"+c.product, map[string]string{"X-API-Key": c.key, "Content-Type": "application/json"}, `{"inputs":{}}`)
		if r.status != c.status {
			t.Fatalf("%s: %d %s, want %d", c.product, r.status, r.body, c.status)
		}
	}
	g.stop()
	err := <-g.done
	g.done <- err // for start's cleanup
	if err != nil {
		t.Fatal(err)
	}
	day := time.Now().UTC().Truncate(24 * time.Hour)
	got := usageCLI(t, "-db", url, "-by", "key", "-from", day.Add(-24*time.Hour).Format(time.RFC3339), "-to", day.Add(48*time.Hour).Format(time.RFC3339))
	rows := []string{
		fmt.Sprintf(",%s,acme,calc,2xx,2,2", idA), fmt.Sprintf(",%s,acme,nope,4xx,1,1", idA), fmt.Sprintf(",%s,acme,pdf,4xx,1,5", idA),
		fmt.Sprintf(",%s,globex,calc,2xx,2,2", idB),
	}
	if idB < idA {
		rows = append(rows[3:], rows[:3]...)
	}
	if want := "period,key_id,owner,product,status,requests,cost\n" + strings.Join(rows, "\n") + "\n"; got != want {
		t.Errorf("usage after shutdown:\n%s\nwant:\n%s", got, want)
	}
}
