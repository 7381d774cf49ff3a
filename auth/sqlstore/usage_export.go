package sqlstore

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// errUsageQuery refuses a query the rows cannot answer.
var errUsageQuery = errors.New("sqlstore: usage query: By must be key, owner or product, and From before To")

// UsageBy names how far down [ReadUsage]'s rows go.
type UsageBy string

const (
	// UsageByKey: a row per key (with its owner), product and status class.
	UsageByKey UsageBy = "key"
	// UsageByOwner: a row per owner, product and status class, all the
	// owner's keys together.
	UsageByOwner UsageBy = "owner"
	// UsageByProduct: a row per product and status class, all keys together.
	UsageByProduct UsageBy = "product"
)

// UsageQuery selects the usage [ReadUsage] returns.
type UsageQuery struct {
	// By is how far down the rows go. Required.
	By UsageBy
	// From and To bound the hours: an hour is in when its start is in
	// [From, To). Required, From before To.
	From, To time.Time
	// Hourly gives a row per hour; otherwise the hours are summed.
	Hourly bool
	// KeyID, Owner and Product, when set, keep only that key's, owner's or
	// product's usage: an owner's customer page sets Owner, say.
	KeyID, Owner, Product string
}

// UsageRow is one row of [ReadUsage]: the requests and cost units of a key,
// owner or product (the fields By does not go down to are empty) and status
// class, in an hour (zero Period unless Hourly).
type UsageRow struct {
	Period  time.Time `json:"period,omitzero"`
	KeyID   string    `json:"key_id,omitempty"`
	Owner   string    `json:"owner,omitempty"`
	Product string    `json:"product"`
	// Status is the class of the answers: "2xx", "4xx", "5xx" (or "1xx",
	// "3xx").
	Status   string `json:"status"`
	Requests int64  `json:"requests"`
	Cost     int64  `json:"cost"`
}

// ReadUsage returns the usage written to db (a database of [Open] migrated by
// [Migrate]) that q selects, ordered by hour, key, owner, product and status
// class: the same rows, in the same order, every time for the same hours once
// they are over and flushed.
func ReadUsage(ctx context.Context, db *sql.DB, q UsageQuery) ([]UsageRow, error) {
	d, err := dialectOf(db)
	if err != nil {
		return nil, err
	}
	var cols []string
	switch q.By {
	case UsageByKey:
		cols = []string{"key_id", "owner"}
	case UsageByOwner:
		cols = []string{"owner"}
	case UsageByProduct:
	default:
		return nil, errUsageQuery
	}
	if !q.From.Before(q.To) {
		return nil, errUsageQuery
	}
	cols = append(cols, "product", "status")
	if q.Hourly {
		cols = append([]string{"period"}, cols...)
	}
	where := []string{"period >= ?", "period < ?"}
	args := []any{q.From.UnixMilli(), q.To.UnixMilli()}
	for _, f := range []struct{ col, v string }{{"key_id", q.KeyID}, {"owner", q.Owner}, {"product", q.Product}} {
		if f.v != "" {
			where = append(where, f.col+" = ?")
			args = append(args, f.v)
		}
	}
	group := strings.Join(cols, ", ")
	query := d.rebind(`SELECT ` + group + `, CAST(SUM(requests) AS BIGINT), CAST(SUM(cost) AS BIGINT) FROM gatehouse_usage WHERE ` +
		strings.Join(where, " AND ") + ` GROUP BY ` + group + ` ORDER BY ` + group)
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: usage query: %w", err)
	}
	defer rows.Close()
	var out []UsageRow
	for rows.Next() {
		var r UsageRow
		var period int64
		dst := map[string]any{"period": &period, "key_id": &r.KeyID, "owner": &r.Owner, "product": &r.Product, "status": &r.Status}
		var scan []any
		for _, c := range cols {
			scan = append(scan, dst[c])
		}
		if err := rows.Scan(append(scan, &r.Requests, &r.Cost)...); err != nil {
			return nil, fmt.Errorf("sqlstore: usage query: %w", err)
		}
		if q.Hourly {
			r.Period = time.UnixMilli(period).UTC()
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: usage query: %w", err)
	}
	return out, nil
}

// WriteUsageCSV writes rows as CSV: a header line, then one line per row
// with the columns period (RFC 3339, UTC; empty for summed hours), key_id,
// owner, product, status, requests and cost.
func WriteUsageCSV(w io.Writer, rows []UsageRow) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"period", "key_id", "owner", "product", "status", "requests", "cost"})
	for _, r := range rows {
		cw.Write([]string{period(r.Period), r.KeyID, r.Owner, r.Product, r.Status, strconv.FormatInt(r.Requests, 10), strconv.FormatInt(r.Cost, 10)})
	}
	cw.Flush()
	return cw.Error()
}

func period(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// WriteUsageJSONL writes rows as JSON lines, one object per row with the
// fields of [UsageRow]'s JSON: period, key_id and owner only when set.
func WriteUsageJSONL(w io.Writer, rows []UsageRow) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// StripeMeter says how [WriteUsageStripe] makes Stripe billing meter events.
type StripeMeter struct {
	// EventName is the meter's event_name. Required.
	EventName string
	// Customers maps each owner to its Stripe customer id (cus_…). An owner
	// without one is an error: nothing is written.
	Customers map[string]string
	// Requests makes the value the number of requests; otherwise it is the
	// cost units.
	Requests bool
}

// StripeMeterEvent is one Stripe billing meter event, in the JSON of Stripe's
// API (POST /v1/billing/meter_events).
type StripeMeterEvent struct {
	EventName string `json:"event_name"`
	// Identifier is the same every time the same owner, product and hour is
	// exported, so that Stripe takes a re-export as the same event.
	Identifier string            `json:"identifier"`
	Payload    map[string]string `json:"payload"`
	// Timestamp is the hour's start, in Unix seconds.
	Timestamp int64 `json:"timestamp"`
}

// StripeEvents returns one meter event per owner, product and hour of rows
// (which must be hourly: [UsageQuery].Hourly), summing the keys and status
// classes, ordered by hour, owner and product: the value (cost units, or
// requests) and the owner's Stripe customer id in the payload. Stripe
// refuses events older than 35 days, and takes an identifier once: export an
// hour once it is over and flushed (one FlushInterval after its end).
func StripeEvents(rows []UsageRow, m StripeMeter) ([]StripeMeterEvent, error) {
	if m.EventName == "" {
		return nil, fmt.Errorf("sqlstore: stripe export: StripeMeter.EventName is empty")
	}
	type group struct {
		period         time.Time
		owner, product string
	}
	sums := make(map[group]int64)
	for _, r := range rows {
		if r.Period.IsZero() || r.Owner == "" {
			return nil, fmt.Errorf("sqlstore: stripe export: rows must be hourly, by key or owner")
		}
		v := r.Cost
		if m.Requests {
			v = r.Requests
		}
		sums[group{r.Period.UTC(), r.Owner, r.Product}] += v
	}
	groups := make([]group, 0, len(sums))
	for g := range sums {
		if _, ok := m.Customers[g.owner]; !ok {
			return nil, fmt.Errorf("sqlstore: stripe export: owner %q has no Stripe customer", g.owner)
		}
		groups = append(groups, g)
	}
	slices.SortFunc(groups, func(a, b group) int {
		return cmp.Or(a.period.Compare(b.period), cmp.Compare(a.owner, b.owner), cmp.Compare(a.product, b.product))
	})
	out := make([]StripeMeterEvent, len(groups))
	for i, g := range groups {
		id := sha256.Sum256([]byte(m.EventName + "\x00" + g.owner + "\x00" + g.product + "\x00" + strconv.FormatInt(g.period.Unix(), 10)))
		out[i] = StripeMeterEvent{
			EventName:  m.EventName,
			Identifier: "gatehouse-" + hex.EncodeToString(id[:16]),
			Payload:    map[string]string{"value": strconv.FormatInt(sums[g], 10), "stripe_customer_id": m.Customers[g.owner]},
			Timestamp:  g.period.Unix(),
		}
	}
	return out, nil
}

// WriteUsageStripe writes [StripeEvents] of rows as JSON lines, one event a
// line, ready to send to Stripe one by one; nothing if an owner has no
// customer.
func WriteUsageStripe(w io.Writer, rows []UsageRow, m StripeMeter) error {
	events, err := StripeEvents(rows, m)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, e := range events {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	return bw.Flush()
}
