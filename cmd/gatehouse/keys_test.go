package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
	"github.com/gatehouse-go/gatehouse/internal/pgtest"
)

// keysCLI runs "gatehouse keys args…" through run, as the command line does, and
// returns its standard output.
func keysCLI(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), append([]string{"keys"}, args...), &out, &errOut, nil, nil); err != nil {
		t.Fatalf("keys %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// newKeyLines matches what create and rotate print: the key alone on the first
// line, then its ID.
var newKeyLines = regexp.MustCompile(`^(ila_[0-9A-Za-z]{38})\nid: (key_[0-9a-f]{16})\n$`)

func parseNewKey(t *testing.T, out string) (plaintext, id string) {
	t.Helper()
	m := newKeyLines.FindStringSubmatch(out)
	if m == nil || (auth.Format{}).Check(m[1]) != nil {
		t.Fatalf("output %q is not a key line then an id line", out)
	}
	return m[1], m[2]
}

func dbURLs(t *testing.T) map[string]func() string {
	return map[string]func() string{
		"sqlite":   func() string { return "sqlite:" + filepath.Join(t.TempDir(), "keys.db") },
		"postgres": func() string { return pgtest.Start(t).URL },
	}
}

// keyTTL is how long the gateway's key database cache serves a key it found
// (sqlstore.Config.TTL's default): changes reach it sooner only by the poll.
const keyTTL = time.Minute

const quoteBody = `{"inputs":{"Premium":1200,"Age":42}}`

// TestKeysDisabledOnTwoGateways: two gateways on one database; a key disabled
// through the CLI is refused by both once their poll of the change log has
// seen it. Each gateway cached the key at its first call, for the store's TTL
// (60 s): a refusal within half of that can only come from the poll (every
// 250 ms), however slow the machine, which the log line measures.
func TestKeysDisabledOnTwoGateways(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			url := dbURLs(t)[kind]()
			keysCLI(t, "migrate", "-db", url)
			plain, id := parseNewKey(t, keysCLI(t, "create", "-db", url, "-name", "ci", "-owner", "acme", "-products", "premium-calculator", "-per-minute", "100", "-per-day", "1000"))
			gws := []*gatewayUnderTest{start(t, "-db", url), start(t, "-db", url)}
			cached := time.Now() // before either gateway caches the key
			for i, g := range gws {
				if r := g.call(t, "POST", "/api/premium-calculator", map[string]string{"X-API-Key": plain, "Content-Type": "application/json"}, quoteBody); r.status != 200 {
					t.Fatalf("gateway %d before disable: %d %s", i, r.status, r.body)
				}
				if demo := g.call(t, "POST", "/api/premium-calculator", map[string]string{"X-API-Key": key("full"), "Content-Type": "application/json"}, quoteBody); demo.status != 401 {
					t.Errorf("gateway %d: the configuration's demo key got %d, want 401: keys come from the database", i, demo.status)
				}
			}
			start := time.Now()
			if out := keysCLI(t, "disable", "-db", url, id); out != "disabled "+id+"\n" {
				t.Errorf("disable printed %q", out)
			}
			for i, g := range gws {
				for {
					r := g.call(t, "POST", "/api/premium-calculator", map[string]string{"X-API-Key": plain, "Content-Type": "application/json"}, quoteBody)
					if r.status == 401 {
						break
					}
					if r.status != 200 {
						t.Fatalf("gateway %d: %d %s", i, r.status, r.body)
					}
					if time.Since(cached) >= keyTTL/2 {
						t.Fatalf("gateway %d still accepts the key %v after it was disabled", i, time.Since(start))
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			t.Logf("%s: both gateways refuse the key %v after the disable", kind, time.Since(start))
		})
	}
}

// TestKeysCLI walks every keys command on a SQLite file.
func TestKeysCLI(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	if out := keysCLI(t, "migrate", "-db", url); out != "schema up to date\n" {
		t.Errorf("migrate printed %q", out)
	}
	plain, id := parseNewKey(t, keysCLI(t, "create", "-db", url, "-name", "ci", "-owner", "acme", "-products", "a,b", "-per-minute", "5", "-per-day", "50", "-expires", "2030-01-02T03:04:05Z"))
	_, other := parseNewKey(t, keysCLI(t, "create", "-db", url, "-name", "web", "-owner", "globex", "-products", "*", "-per-minute", "1", "-per-day", "2"))

	show := keysCLI(t, "show", "-db", url, id)
	for _, line := range []string{"id: " + id, "owner: acme", "name: ci", "products: a,b", "per-minute: 5", "per-day: 50", "status: active", "expires: 2030-01-02T03:04:05Z", "allowance: " + id, "last-used: never", "requests: 0"} {
		if !strings.Contains(show, line+"\n") {
			t.Errorf("show lacks %q:\n%s", line, show)
		}
	}
	if strings.Contains(show, plain) || strings.Contains(show, plain[4:]) {
		t.Error("show prints the key")
	}
	list := keysCLI(t, "list", "-db", url, "-owner", "acme")
	if !strings.Contains(list, id) || strings.Contains(list, other) || !strings.HasPrefix(list, "ID ") {
		t.Errorf("list -owner acme:\n%s", list)
	}
	if list := keysCLI(t, "list", "-db", url); !strings.Contains(list, id) || !strings.Contains(list, other) {
		t.Errorf("list:\n%s", list)
	}
	up := keysCLI(t, "update", "-db", url, id, "-name", "ci2", "-products", "c", "-per-day", "70", "-expires", "never")
	for _, line := range []string{"name: ci2", "products: c", "per-minute: 5", "per-day: 70", "expires: never"} {
		if !strings.Contains(up, line+"\n") {
			t.Errorf("update output lacks %q:\n%s", line, up)
		}
	}
	if out := keysCLI(t, "disable", "-db", url, id); out != "disabled "+id+"\n" {
		t.Errorf("disable printed %q", out)
	}
	if !strings.Contains(keysCLI(t, "show", "-db", url, id), "status: disabled\n") {
		t.Error("disable did not disable")
	}
	if out := keysCLI(t, "enable", "-db", url, id); out != "enabled "+id+"\n" {
		t.Errorf("enable printed %q", out)
	}
	newPlain, newID := parseNewKey(t, keysCLI(t, "rotate", "-db", url, id, "-overlap", "1h"))
	if newPlain == plain || newID == id {
		t.Error("rotate did not mint a new key")
	}
	if !strings.Contains(keysCLI(t, "show", "-db", url, newID), "allowance: "+id+"\n") {
		t.Error("the rotated key does not share the old key's allowance")
	}
	if out := keysCLI(t, "delete", "-db", url, id); out != "deleted "+id+"\n" {
		t.Errorf("delete printed %q", out)
	}

	var out, errOut bytes.Buffer
	for _, args := range [][]string{
		{"show", "-db", url, id},                 // deleted
		{"show", "-db", url},                     // no ID
		{"create", "-name", "x"},                 // no -db
		{"rotate", "-db", url, newID},            // no -overlap
		{"create", "-db", url, "-products", "a"}, // no owner
		{"frobnicate", "-db", url},
	} {
		if err := run(context.Background(), append([]string{"keys"}, args...), &out, &errOut, nil, nil); err == nil {
			t.Errorf("keys %v: no error", args)
		}
	}
}

// TestKeysCLIEscapesStoredText: a name, owner or product stored with control
// characters (written by something other than the Admin API, which refuses
// them) is printed by show, list and owner-limits as a quoted Go string, so
// that no control character reaches the terminal; create refuses such a name.
func TestKeysCLIEscapesStoredText(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	_, id := parseNewKey(t, keysCLI(t, "create", "-db", url, "-name", "ci", "-owner", "acme", "-products", "quote", "-per-minute", "5", "-per-day", "50"))
	keysCLI(t, "owner-limits", "-db", url, "acme", "-per-day", "3")
	db, err := sqlstore.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`UPDATE gatehouse_keys SET name = 'ci' || char(27) || '[2J' || char(7), owner = 'acme' || char(27) || ']0;x' || char(7), products = '["quote\u001b"]'`,
		`UPDATE gatehouse_owner_limits SET owner = 'acme' || char(155) || '31m'`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	show := keysCLI(t, "show", "-db", url, id)
	for _, line := range []string{`name: "ci\x1b[2J\a"`, `owner: "acme\x1b]0;x\a"`, `products: "quote\x1b"`, "id: " + id} {
		if !strings.Contains(show, line+"\n") {
			t.Errorf("show lacks %s:\n%q", line, show)
		}
	}
	list := keysCLI(t, "list", "-db", url)
	if _, row, _ := strings.Cut(list, "\n"); !strings.HasPrefix(row, id+`  "acme\x1b]0;x\a"  "ci\x1b[2J\a"  "quote\x1b"  5 `) {
		t.Errorf("list:\n%q", list)
	}
	owners := keysCLI(t, "owner-limits", "-db", url)
	if owners != "OWNER            PER-MINUTE  PER-DAY  WINDOWS\n\"acme\\u009b31m\"  0           3        none\n" {
		t.Errorf("owner-limits:\n%q", owners)
	}
	for name, out := range map[string]string{"show": show, "list": list, "owner-limits": owners} {
		if i := strings.IndexFunc(out, func(r rune) bool { return r != '\n' && unicode.IsControl(r) }); i >= 0 {
			t.Errorf("%s printed a control character at byte %d: %q", name, i, out)
		}
	}
	var out, errOut bytes.Buffer
	err = run(context.Background(), []string{"keys", "create", "-db", url, "-name", "ci\x1b[2J", "-owner", "acme", "-products", "quote"}, &out, &errOut, nil, nil)
	if want := `sqlstore: invalid key: name "ci\x1b[2J": control character U+001B`; err == nil || err.Error() != want || out.Len() != 0 {
		t.Errorf("create with ESC in the name: %q, printed %q; want error %s", err, out.String(), want)
	}
}

// TestKeysCountOnlyRequestsLetThrough: the request count of a key in the
// database grows by the requests the product's handler answered, not by the
// ones the checks refused: 10 requests of a key allowed 4 add 4 (the 6 that
// got 429 add nothing), and another key's 403, 404 and 400 answers add
// nothing.
func TestKeysCountOnlyRequestsLetThrough(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	// 4 a minute and 4 a day: exactly 4 pass however long the requests take.
	plainA, idA := parseNewKey(t, keysCLI(t, "create", "-db", url, "-name", "a", "-owner", "acme", "-products", "premium-calculator", "-per-minute", "4", "-per-day", "4"))
	plainB, idB := parseNewKey(t, keysCLI(t, "create", "-db", url, "-name", "b", "-owner", "acme", "-products", "premium-calculator", "-per-minute", "100", "-per-day", "1000"))
	g := start(t, "-db", url)
	statuses := map[int]int{}
	for range 10 {
		statuses[g.call(t, "POST", "/api/premium-calculator", map[string]string{"X-API-Key": plainA, "Content-Type": "application/json"}, quoteBody).status]++
	}
	if statuses[200] != 4 || statuses[429] != 6 {
		t.Errorf("10 requests of a key allowed 4: statuses %v, want 4 × 200 and 6 × 429", statuses)
	}
	for _, c := range []struct {
		path, body string
		status     int
	}{
		{"/api/misconfigured-calculator", `{}`, 403}, // not in the key's scope
		{"/api/misconfigured-calculator", `{}`, 403},
		{"/api/no-such-product", `{}`, 404},
		{"/api/premium-calculator", `{"inputs":{"Age":42}}`, 400}, // a required input missing
	} {
		if r := g.call(t, "POST", c.path, map[string]string{"X-API-Key": plainB, "Content-Type": "application/json"}, c.body); r.status != c.status {
			t.Errorf("POST %s: %d %s, want %d", c.path, r.status, r.body, c.status)
		}
	}
	// Stopping the gateway writes its counts (sqlstore.Store.Close).
	g.stop()
	err := <-g.done
	g.done <- err // for the test's cleanup
	for id, want := range map[string]string{idA: "requests: 4\n", idB: "requests: 0\n"} {
		if show := keysCLI(t, "show", "-db", url, id); !strings.Contains(show, want) {
			t.Errorf("key %s, want %q:\n%s", id, want, show)
		}
	}
}
