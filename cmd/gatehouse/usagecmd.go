package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
	"github.com/gatehouse-go/gatehouse/internal/cli"
)

// usageCmdHead starts the usage of gatehouse usage; its flags follow.
const usageCmdHead = `usage: gatehouse usage -db URL -from T -to T [-by key|owner|product] [-format csv|jsonl|stripe] [flags]

Print the usage the gateways wrote to the key database (gatehouse -db URL
records it): the requests charged to keys and their cost units, by status
class (2xx, 4xx, 5xx), over the hours whose start is in [-from, -to), UTC.
T is RFC 3339 (2026-11-28T12:00:00Z) or a day (2026-11-28, its midnight).
The same hours, once over and flushed, print the same bytes every time.
-format stripe prints one Stripe billing meter event (JSON, one a line) per
owner, product and hour, whatever -by and -hourly say, with the owner's
Stripe customer from -customers and an identifier that is the same every
time, so that Stripe bills a period sent again within its window of at
least 24 hours only once: send each hour once. Every status
class is printed, and billed, unless -class keeps some: -class 2xx bills
only the answers that succeeded.

flags:
`

// usageCommand runs "gatehouse usage …": the usage rows of a key database,
// as CSV, JSON lines or Stripe meter events (see usageCmdHead).
func usageCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.FlagSet("usage", stderr)
	fs.Usage = func() {
		io.WriteString(stderr, usageCmdHead)
		fs.PrintDefaults()
	}
	dbURL := fs.String("db", "", "database URL: sqlite:PATH or postgres://…")
	from := fs.String("from", "", "the first hour (required)")
	to := fs.String("to", "", "the end, not included (required)")
	by := fs.String("by", "owner", "how far down the rows go: key (a row per key, product and status class), owner or product")
	format := fs.String("format", "csv", "csv (with a header line), jsonl or stripe")
	hourly := fs.Bool("hourly", false, "a row per hour; otherwise the hours are summed")
	keyID := fs.String("key", "", "only this key's usage (its ID)")
	owner := fs.String("owner", "", "only this owner's usage")
	product := fs.String("product", "", "only this product's usage")
	class := fs.String("class", "", "only these status classes, comma-separated: 2xx, 4xx, 5xx (or 1xx, 3xx), such as 2xx or 2xx,4xx; empty: every class")
	customers := fs.String("customers", "", `with -format stripe (required): a JSON file mapping each owner to its Stripe customer, {"acme": "cus_…"}`)
	event := fs.String("event", "gatehouse_units", "with -format stripe: the meter's event_name")
	value := fs.String("value", "cost", "with -format stripe: what an event's value counts, cost (units) or requests")
	err := cli.Parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	q := sqlstore.UsageQuery{By: sqlstore.UsageBy(*by), Hourly: *hourly, KeyID: *keyID, Owner: *owner, Product: *product}
	if q.From, err = parseUsageTime("-from", *from); err != nil {
		return err
	}
	if q.To, err = parseUsageTime("-to", *to); err != nil {
		return err
	}
	classes, err := parseUsageClasses(*class)
	if err != nil {
		return err
	}
	var meter sqlstore.StripeMeter
	switch {
	case *dbURL == "":
		return errors.New("usage: -db URL is required")
	case !q.From.Before(q.To):
		return errors.New("usage: -from must be before -to")
	case q.By != sqlstore.UsageByKey && q.By != sqlstore.UsageByOwner && q.By != sqlstore.UsageByProduct:
		return fmt.Errorf("usage: -by %q: want key, owner or product", *by)
	case *value != "cost" && *value != "requests":
		return fmt.Errorf("usage: -value %q: want cost or requests", *value)
	case *format == "stripe":
		if meter.Customers, err = readCustomers(*customers); err != nil {
			return err
		}
		meter.EventName, meter.Requests = *event, *value == "requests"
		q.By, q.Hourly = sqlstore.UsageByOwner, true
	case *format != "csv" && *format != "jsonl":
		return fmt.Errorf("usage: -format %q: want csv, jsonl or stripe", *format)
	}
	db, err := openDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := sqlstore.ReadUsage(ctx, db, q)
	if err != nil {
		return err
	}
	if classes != nil {
		rows = slices.DeleteFunc(rows, func(r sqlstore.UsageRow) bool { return !classes[r.Status] })
	}
	switch *format {
	case "jsonl":
		return sqlstore.WriteUsageJSONL(stdout, rows)
	case "stripe":
		return sqlstore.WriteUsageStripe(stdout, rows, meter)
	}
	return sqlstore.WriteUsageCSV(stdout, rows)
}

// parseUsageTime reads T of flag: RFC 3339, or a day (its midnight, UTC).
func parseUsageTime(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, fmt.Errorf("usage: %s is required", flag)
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("usage: %s %q: want RFC 3339 (2026-11-28T12:00:00Z) or a day (2026-11-28)", flag, v)
}

// usageClasses are the status classes a usage row can have.
var usageClasses = []string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// parseUsageClasses reads -class: a comma-separated list of status classes,
// as a set; "" is nil, every class.
func parseUsageClasses(v string) (map[string]bool, error) {
	if v == "" {
		return nil, nil
	}
	set := map[string]bool{}
	for _, c := range strings.Split(v, ",") {
		if !slices.Contains(usageClasses, c) {
			return nil, fmt.Errorf("usage: -class %q: want status classes, comma-separated: 1xx, 2xx, 3xx, 4xx or 5xx", v)
		}
		set[c] = true
	}
	return set, nil
}

// readCustomers reads the -customers file: a JSON object, owner → Stripe
// customer id.
func readCustomers(path string) (map[string]string, error) {
	if path == "" {
		return nil, errors.New("usage: -format stripe needs -customers FILE, the owners' Stripe customers")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("usage: -customers: %w", err)
	}
	var m map[string]string
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("usage: -customers %s: want a JSON object of owner to customer id: %w", path, err)
	}
	return m, nil
}
