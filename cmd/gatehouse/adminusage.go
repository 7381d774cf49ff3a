package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
	"github.com/prometheus/client_golang/prometheus"
)

// The admin page's usage today: GET /usage.json gives each shown key's
// requests in each hour of the current UTC day and the cost units they
// spent, beside its per-day allowance. The numbers are the key database's
// rows (sqlstore.ReadUsage), what `gatehouse usage` exports and a seller
// bills, not the counts still in memory: the page says as of which flush of
// this gateway they hold.

// adminUsage is where the page reads usage from.
type adminUsage struct {
	db *sql.DB // the key database
	// recorder is the gateway's usage recorder, whose last flush says how
	// fresh the rows are; nil with -usage-flush 0: the gateway records none.
	recorder interface{ Flushed() time.Time }
	every    time.Duration // -usage-flush
}

// The usage's error messages: why no usage is shown. None names the
// database.
const (
	msgUsageNoDatabase  = "usage is recorded only in a key database: start the gateway with -db to see it"
	msgUsageNotRecorded = "this gateway records no usage (-usage-flush 0)"
	msgUsageUnavailable = "the key database does not answer: usage cannot be shown"
)

// usageState is the JSON of /usage.json.
type usageState struct {
	// Day is the UTC day shown, YYYY-MM-DD.
	Day string `json:"day"`
	// Flushed is when this gateway's last flush took its counts, UTC, in
	// whole seconds rounded down: the rows hold every request it counted
	// before. Absent before its first flush.
	Flushed time.Time `json:"flushed,omitzero"`
	// FlushEveryMs is -usage-flush: how often the gateway flushes.
	FlushEveryMs int64 `json:"flush_every_ms,omitzero"`
	// Keys are the first maxKeys of the KeysTotal keys the gateway serves,
	// by ID, as on the page.
	Keys      []keyUsage `json:"keys"`
	KeysTotal int        `json:"keys_total"`
	// Error says why no usage is shown: no key database, no usage
	// recorded, or a database that does not answer. Keys is then empty.
	Error string `json:"error,omitzero"`
}

// keyUsage is one key's usage of the day: never the key, nor its hash.
type keyUsage struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// PerDay is the key's per-day allowance, in cost units (tokens).
	PerDay int `json:"per_day"`
	// Requests and Cost are the day's: the requests charged and the cost
	// units they spent.
	Requests int64 `json:"requests"`
	Cost     int64 `json:"cost"`
	// Hours are the requests charged in each hour of the day, from 00:00.
	Hours [24]int64 `json:"hours"`
}

// usageState reads the usage of the current UTC day of the keys the page
// shows: one query of the day's rows, bounded by keyListTimeout.
func (a *admin) usageState(ctx context.Context) usageState {
	day := a.now().UTC().Truncate(24 * time.Hour)
	st := usageState{Day: day.Format(time.DateOnly), Keys: []keyUsage{}}
	switch {
	case a.usage == nil:
		st.Error = msgUsageNoDatabase
		return st
	case a.usage.recorder == nil:
		st.Error = msgUsageNotRecorded
		return st
	}
	st.FlushEveryMs = a.usage.every.Milliseconds()
	// Read before the rows: the rows read next hold at least what it says.
	flushed := a.usage.recorder.Flushed()
	keys, _, err := a.servedKeys(ctx)
	if err != nil {
		st.Error = msgUsageUnavailable
		return st
	}
	ctx, cancel := context.WithTimeout(ctx, keyListTimeout)
	defer cancel()
	rows, err := sqlstore.ReadUsage(ctx, a.usage.db, sqlstore.UsageQuery{By: sqlstore.UsageByKey, Hourly: true, From: day, To: day.Add(24 * time.Hour)})
	if err != nil {
		st.Error = msgUsageUnavailable
		return st
	}
	st.KeysTotal = len(keys)
	keys = keys[:min(len(keys), a.maxKeys)]
	byID := make(map[string]*keyUsage, len(keys))
	st.Keys = make([]keyUsage, len(keys))
	for i, k := range keys {
		st.Keys[i] = keyUsage{ID: k.ID, Name: k.Name, PerDay: a.limitsOf(k).PerDay}
		byID[k.ID] = &st.Keys[i]
	}
	for _, r := range rows {
		if ku := byID[r.KeyID]; ku != nil {
			ku.Hours[r.Period.Hour()] += r.Requests
			ku.Requests += r.Requests
			ku.Cost += r.Cost
		}
	}
	if !flushed.IsZero() {
		st.Flushed = flushed.UTC().Truncate(time.Second)
	}
	return st
}

func (a *admin) serveUsage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(a.usageState(r.Context()))
}

// usageStats is what the usage metrics read of the gateway's recorder:
// sqlstore.Usage's counts.
type usageStats interface{ Stats() sqlstore.UsageStats }

// countUsage registers, on the admin listener's /metrics, the counts of the
// gateway's usage recorder u: requests recorded, requests dropped because
// too many rows waited for the database (they are billed to nobody: alert on
// it), rows waiting, and flushes that committed or failed. Without an admin
// listener it does nothing.
func (a *admin) countUsage(u usageStats) error {
	if a == nil {
		return nil
	}
	for _, m := range []struct {
		name, help string
		gauge      bool
		value      func(sqlstore.UsageStats) int64
	}{
		{"gatehouse_usage_recorded_total", "Charged requests the usage recorder counted, dropped ones included.", false,
			func(s sqlstore.UsageStats) int64 { return s.Requests }},
		{"gatehouse_usage_dropped_total", "Charged requests not kept for billing: too many usage rows were waiting for the key database.", false,
			func(s sqlstore.UsageStats) int64 { return s.Dropped }},
		{"gatehouse_usage_pending_rows", "Usage rows waiting in memory for the next flush to the key database.", true,
			func(s sqlstore.UsageStats) int64 { return int64(s.Pending) }},
		{"gatehouse_usage_flushes_total", "Usage flushes to the key database that committed.", false,
			func(s sqlstore.UsageStats) int64 { return s.Flushes }},
		{"gatehouse_usage_failed_flushes_total", "Usage flushes that failed; their counts wait for the next.", false,
			func(s sqlstore.UsageStats) int64 { return s.FailedFlushes }},
	} {
		read := func() float64 { return float64(m.value(u.Stats())) }
		var c prometheus.Collector
		if m.gauge {
			c = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: m.name, Help: m.help}, read)
		} else {
			c = prometheus.NewCounterFunc(prometheus.CounterOpts{Name: m.name, Help: m.help}, read)
		}
		if err := a.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
