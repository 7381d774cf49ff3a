package sqlstore_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
	"github.com/gatehouse-go/gatehouse/internal/syncbuf"
	"github.com/gatehouse-go/gatehouse/internal/testclock"
)

// newUsage is a Usage of db on clk that flushes only when told, closed when
// the test ends.
func newUsage(t testing.TB, db *sql.DB, clk *testclock.Clock, cfg sqlstore.UsageConfig) *sqlstore.Usage {
	t.Helper()
	cfg.FlushInterval = -1
	cfg.Now = clk.Now
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	u, err := sqlstore.NewUsage(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

// readUsage is ReadUsage of q, failing the test on an error.
func readUsage(t testing.TB, db *sql.DB, q sqlstore.UsageQuery) []sqlstore.UsageRow {
	t.Helper()
	rows, err := sqlstore.ReadUsage(context.Background(), db, q)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// recordSample records, at t0 (12:00) and an hour later, requests of two
// keys of acme and one of globex on two products with mixed answers.
func recordSample(u *sqlstore.Usage, clk *testclock.Clock) {
	clk.Set(t0.Add(5 * time.Minute))
	u.Record("k1", "acme", "quote", 200, 1)
	u.Record("k1", "acme", "quote", 201, 1)
	u.Record("k1", "acme", "pdf", 200, 5)
	u.Record("k1", "acme", "quote", 404, 1)
	u.Record("k2", "acme", "quote", 200, 1)
	u.Record("k3", "globex", "quote", 502, 1)
	clk.Set(t0.Add(time.Hour + 59*time.Minute))
	u.Record("k1", "acme", "pdf", 200, 5)
	u.Record("k3", "globex", "quote", 200, 1)
}

// day is the query's period around the sample.
var (
	dayFrom = t0.Add(-12 * time.Hour)
	dayTo   = t0.Add(12 * time.Hour)
)

// TestUsageFlushAndRead: recorded requests reach the database at Flush, in
// their hour, key, owner, product and status class, with their cost; reads
// by key, owner and product, hourly or summed, filtered by key, owner or
// product, return exactly those rows, and a second Usage's flush adds to
// them.
func TestUsageFlushAndRead(t *testing.T) {
	for _, kind := range dialects {
		t.Run(kind, func(t *testing.T) {
			db, _ := openDB(t, kind)
			clk := testclock.New(t0)
			u := newUsage(t, db, clk, sqlstore.UsageConfig{})
			recordSample(u, clk)
			if got := readUsage(t, db, sqlstore.UsageQuery{By: sqlstore.UsageByKey, From: dayFrom, To: dayTo}); len(got) != 0 {
				t.Fatalf("before Flush: %v, want nothing", got)
			}
			if err := u.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			h0, h1 := t0, t0.Add(time.Hour)
			want := []sqlstore.UsageRow{
				{Period: h0, KeyID: "k1", Owner: "acme", Product: "pdf", Status: "2xx", Requests: 1, Cost: 5},
				{Period: h0, KeyID: "k1", Owner: "acme", Product: "quote", Status: "2xx", Requests: 2, Cost: 2},
				{Period: h0, KeyID: "k1", Owner: "acme", Product: "quote", Status: "4xx", Requests: 1, Cost: 1},
				{Period: h0, KeyID: "k2", Owner: "acme", Product: "quote", Status: "2xx", Requests: 1, Cost: 1},
				{Period: h0, KeyID: "k3", Owner: "globex", Product: "quote", Status: "5xx", Requests: 1, Cost: 1},
				{Period: h1, KeyID: "k1", Owner: "acme", Product: "pdf", Status: "2xx", Requests: 1, Cost: 5},
				{Period: h1, KeyID: "k3", Owner: "globex", Product: "quote", Status: "2xx", Requests: 1, Cost: 1},
			}
			check := func(q sqlstore.UsageQuery, want []sqlstore.UsageRow) {
				t.Helper()
				if got := readUsage(t, db, q); !reflect.DeepEqual(got, want) {
					t.Errorf("%+v:\n got %+v\nwant %+v", q, got, want)
				}
			}
			check(sqlstore.UsageQuery{By: sqlstore.UsageByKey, From: dayFrom, To: dayTo, Hourly: true}, want)
			check(sqlstore.UsageQuery{By: sqlstore.UsageByKey, From: h1, To: dayTo, Hourly: true}, want[5:])
			check(sqlstore.UsageQuery{By: sqlstore.UsageByKey, From: dayFrom, To: h1, Hourly: true}, want[:5])
			check(sqlstore.UsageQuery{By: sqlstore.UsageByOwner, From: dayFrom, To: dayTo, Owner: "acme"}, []sqlstore.UsageRow{
				{Owner: "acme", Product: "pdf", Status: "2xx", Requests: 2, Cost: 10},
				{Owner: "acme", Product: "quote", Status: "2xx", Requests: 3, Cost: 3},
				{Owner: "acme", Product: "quote", Status: "4xx", Requests: 1, Cost: 1},
			})
			check(sqlstore.UsageQuery{By: sqlstore.UsageByProduct, From: dayFrom, To: dayTo}, []sqlstore.UsageRow{
				{Product: "pdf", Status: "2xx", Requests: 2, Cost: 10},
				{Product: "quote", Status: "2xx", Requests: 4, Cost: 4},
				{Product: "quote", Status: "4xx", Requests: 1, Cost: 1},
				{Product: "quote", Status: "5xx", Requests: 1, Cost: 1},
			})
			check(sqlstore.UsageQuery{By: sqlstore.UsageByKey, From: dayFrom, To: dayTo, KeyID: "k3", Product: "quote"}, []sqlstore.UsageRow{
				{KeyID: "k3", Owner: "globex", Product: "quote", Status: "2xx", Requests: 1, Cost: 1},
				{KeyID: "k3", Owner: "globex", Product: "quote", Status: "5xx", Requests: 1, Cost: 1},
			})

			// Nothing new: a flush adds nothing. A second replica adds to the rows.
			if err := u.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			check(sqlstore.UsageQuery{By: sqlstore.UsageByKey, From: dayFrom, To: dayTo, Hourly: true}, want)
			other := newUsage(t, db, clk, sqlstore.UsageConfig{})
			clk.Set(t0.Add(30 * time.Minute))
			other.Record("k2", "acme", "quote", 200, 1)
			if err := other.Close(); err != nil {
				t.Fatal(err)
			}
			want[3].Requests, want[3].Cost = 2, 2
			check(sqlstore.UsageQuery{By: sqlstore.UsageByKey, From: dayFrom, To: dayTo, Hourly: true}, want)
			if st := u.Stats(); st != (sqlstore.UsageStats{Requests: 8, Flushes: 1}) {
				t.Errorf("Stats = %+v, want 8 requests, 1 flush", st)
			}

			if _, err := sqlstore.ReadUsage(context.Background(), db, sqlstore.UsageQuery{By: "hour", From: dayFrom, To: dayTo}); err == nil {
				t.Error("By hour: no error")
			}
			if _, err := sqlstore.ReadUsage(context.Background(), db, sqlstore.UsageQuery{By: sqlstore.UsageByKey, From: dayTo, To: dayFrom}); err == nil {
				t.Error("From after To: no error")
			}
		})
	}
}

// TestUsageLostReply: a flush whose commit succeeded but whose reply was
// lost reports an error and keeps its counts; the next flush retries them
// under the same batch id, which the database already has, so nothing is
// counted twice, while the counts recorded meanwhile are added once.
func TestUsageLostReply(t *testing.T) {
	for _, kind := range dialects {
		t.Run(kind, func(t *testing.T) {
			db, _ := openDB(t, kind)
			clk := testclock.New(t0)
			u := newUsage(t, db, clk, sqlstore.UsageConfig{})
			lost := errors.New("connection reset after COMMIT")
			replies := []error{lost, lost, nil}
			u.LoseReplies(func() error {
				err := replies[0]
				replies = replies[1:]
				return err
			})
			u.Record("k1", "acme", "quote", 200, 3)
			if err := u.Flush(context.Background()); !errors.Is(err, lost) {
				t.Fatalf("first flush: %v, want the lost reply", err)
			}
			u.Record("k1", "acme", "quote", 200, 3) // the same row, in a new batch
			u.Record("k2", "acme", "quote", 500, 1)
			if err := u.Flush(context.Background()); !errors.Is(err, lost) {
				t.Fatalf("second flush: %v, want the lost reply", err)
			}
			if err := u.Flush(context.Background()); err != nil {
				t.Fatalf("third flush: %v", err)
			}
			if err := u.Flush(context.Background()); err != nil {
				t.Fatalf("fourth flush: %v", err)
			}
			want := []sqlstore.UsageRow{
				{KeyID: "k1", Owner: "acme", Product: "quote", Status: "2xx", Requests: 2, Cost: 6},
				{KeyID: "k2", Owner: "acme", Product: "quote", Status: "5xx", Requests: 1, Cost: 1},
			}
			if got := readUsage(t, db, sqlstore.UsageQuery{By: sqlstore.UsageByKey, From: dayFrom, To: dayTo}); !reflect.DeepEqual(got, want) {
				t.Errorf("after the retries:\n got %+v\nwant %+v", got, want)
			}
			if st := u.Stats(); st != (sqlstore.UsageStats{Requests: 3, Flushes: 1, FailedFlushes: 2}) {
				t.Errorf("Stats = %+v", st)
			}
		})
	}
}

// TestUsageFlushed: Flushed is zero before the first flush, then the clock's
// time when the last successful flush took its counts; a flush that failed
// leaves it, and one with nothing to write moves it.
func TestUsageFlushed(t *testing.T) {
	db, _ := openDB(t, "sqlite")
	clk := testclock.New(t0)
	u := newUsage(t, db, clk, sqlstore.UsageConfig{})
	if got := u.Flushed(); !got.IsZero() {
		t.Fatalf("Flushed before any flush: %v", got)
	}
	u.Record("k1", "acme", "quote", 200, 1)
	clk.Set(t0.Add(10 * time.Second))
	if err := u.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := u.Flushed(); !got.Equal(t0.Add(10 * time.Second)) {
		t.Errorf("Flushed after a flush at 12:00:10: %v", got)
	}
	lost := errors.New("connection reset after COMMIT")
	u.LoseReplies(func() error { return lost })
	u.Record("k1", "acme", "quote", 200, 1)
	clk.Set(t0.Add(20 * time.Second))
	if err := u.Flush(context.Background()); !errors.Is(err, lost) {
		t.Fatalf("flush with its reply lost: %v", err)
	}
	if got := u.Flushed(); !got.Equal(t0.Add(10 * time.Second)) {
		t.Errorf("Flushed after a failed flush: %v, want 12:00:10 still", got)
	}
	u.LoseReplies(nil)
	clk.Set(t0.Add(30 * time.Second))
	if err := u.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(40 * time.Second))
	if err := u.Flush(context.Background()); err != nil { // nothing to write
		t.Fatal(err)
	}
	if got := u.Flushed(); !got.Equal(t0.Add(40 * time.Second)) {
		t.Errorf("Flushed after a flush with nothing to write at 12:00:40: %v", got)
	}
	if got := readUsage(t, db, sqlstore.UsageQuery{By: sqlstore.UsageByKey, From: dayFrom, To: dayTo}); len(got) != 1 || got[0].Requests != 2 {
		t.Errorf("rows: %+v, want k1's 2 requests", got)
	}
}

// TestUsageDatabaseAway: while PostgreSQL is stopped, Record goes on without
// it, the flushes fail and keep every count, up to MaxPending rows; a request
// needing one more row is dropped, counted in Stats and logged once, without
// its key. Once the server is back, one flush writes exactly what was kept.
func TestUsageDatabaseAway(t *testing.T) {
	db, url := openDB(t, "postgres")
	clk := testclock.New(t0)
	var logs syncbuf.Buffer
	u := newUsage(t, db, clk, sqlstore.UsageConfig{MaxPending: 3, QueryTimeout: 10 * time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	u.Record("key-a", "acme", "quote", 200, 1)
	u.Record("key-b", "acme", "quote", 200, 1)

	pg := pgServerOf(t, url)
	pg.Stop()
	if err := u.Flush(context.Background()); err == nil {
		t.Fatal("flush with the database stopped: no error")
	}
	u.Record("key-a", "acme", "quote", 200, 1)   // a kept row: counted
	u.Record("key-c", "globex", "quote", 200, 2) // a third row: kept
	clk.Advance(time.Hour)
	u.Record("key-a", "acme", "quote", 200, 1)   // a fourth row: dropped
	u.Record("key-d", "globex", "quote", 429, 1) // dropped
	if err := u.Flush(context.Background()); err == nil {
		t.Fatal("second flush with the database stopped: no error")
	}
	if st := u.Stats(); st != (sqlstore.UsageStats{Requests: 6, Dropped: 2, FailedFlushes: 2, Pending: 3}) {
		t.Errorf("Stats while away = %+v", st)
	}
	pg.Restart()
	if err := u.Flush(context.Background()); err != nil {
		t.Fatalf("flush once back: %v", err)
	}
	want := []sqlstore.UsageRow{
		{KeyID: "key-a", Owner: "acme", Product: "quote", Status: "2xx", Requests: 2, Cost: 2},
		{KeyID: "key-b", Owner: "acme", Product: "quote", Status: "2xx", Requests: 1, Cost: 1},
		{KeyID: "key-c", Owner: "globex", Product: "quote", Status: "2xx", Requests: 1, Cost: 2},
	}
	if got := readUsage(t, db, sqlstore.UsageQuery{By: sqlstore.UsageByKey, From: dayFrom, To: dayTo}); !reflect.DeepEqual(got, want) {
		t.Errorf("once back:\n got %+v\nwant %+v", got, want)
	}
	if st := u.Stats(); st != (sqlstore.UsageStats{Requests: 6, Dropped: 2, Flushes: 1, FailedFlushes: 2}) {
		t.Errorf("Stats once back = %+v", st)
	}
	text := logs.String()
	for _, line := range []string{
		`level=ERROR msg="sqlstore: usage flush failed; counts kept in memory"`,
		`level=WARN msg="sqlstore: usage not kept: too many rows wait for the database" max_pending=3`,
		`level=INFO msg="sqlstore: usage flushed again" dropped_requests=2`,
	} {
		if strings.Count(text, line) != 1 {
			t.Errorf("log has not exactly once %s:\n%s", line, text)
		}
	}
	if strings.Contains(text, "key-") {
		t.Errorf("log names a key:\n%s", text)
	}
}

// TestUsageRecordAllocs: recording a request of a row already in memory
// allocates nothing; a new row, at most one allocation (the map's growth,
// on average much less).
func TestUsageRecordAllocs(t *testing.T) {
	db, _ := openDB(t, "sqlite")
	clk := testclock.New(t0)
	u := newUsage(t, db, clk, sqlstore.UsageConfig{MaxPending: 1 << 20})
	u.Record("k1", "acme", "quote", 200, 1)
	if n := testing.AllocsPerRun(1000, func() { u.Record("k1", "acme", "quote", 200, 1) }); n != 0 {
		t.Errorf("Record of a known row: %v allocations, want 0", n)
	}
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		clk.Advance(time.Hour) // a new row each time
		u.Record("k1", "acme", "quote", 200, 1)
		i++
	}); n > 1 {
		t.Errorf("Record of a new row: %v allocations, want at most 1", n)
	}
}

// BenchmarkUsageRecord is the cost of Record on the request path: one row,
// from every goroutine.
func BenchmarkUsageRecord(b *testing.B) {
	db, _ := openDB(b, "sqlite")
	u := newUsage(b, db, testclock.New(t0), sqlstore.UsageConfig{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u.Record("k1", "acme", "quote", 200, 1)
		}
	})
}

// TestUsageExports: the CSV, JSON lines and Stripe exports of the sample's
// hours are exactly these bytes, and the same bytes again after a flush with
// nothing new.
func TestUsageExports(t *testing.T) {
	db, _ := openDB(t, "sqlite")
	clk := testclock.New(t0)
	u := newUsage(t, db, clk, sqlstore.UsageConfig{})
	recordSample(u, clk)
	if err := u.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	meter := sqlstore.StripeMeter{EventName: "api_units", Customers: map[string]string{"acme": "cus_A", "globex": "cus_G"}}
	export := func() (csvOut, jsonl, stripe string) {
		var c, j, s bytes.Buffer
		hourly := readUsage(t, db, sqlstore.UsageQuery{By: sqlstore.UsageByOwner, From: dayFrom, To: dayTo, Hourly: true})
		if err := sqlstore.WriteUsageCSV(&c, hourly); err != nil {
			t.Fatal(err)
		}
		if err := sqlstore.WriteUsageJSONL(&j, readUsage(t, db, sqlstore.UsageQuery{By: sqlstore.UsageByKey, From: dayFrom, To: dayTo})); err != nil {
			t.Fatal(err)
		}
		if err := sqlstore.WriteUsageStripe(&s, hourly, meter); err != nil {
			t.Fatal(err)
		}
		return c.String(), j.String(), s.String()
	}
	c1, j1, s1 := export()
	wantCSV := `period,key_id,owner,product,status,requests,cost
2026-11-28T12:00:00Z,,acme,pdf,2xx,1,5
2026-11-28T12:00:00Z,,acme,quote,2xx,3,3
2026-11-28T12:00:00Z,,acme,quote,4xx,1,1
2026-11-28T12:00:00Z,,globex,quote,5xx,1,1
2026-11-28T13:00:00Z,,acme,pdf,2xx,1,5
2026-11-28T13:00:00Z,,globex,quote,2xx,1,1
`
	if c1 != wantCSV {
		t.Errorf("csv:\n%s\nwant:\n%s", c1, wantCSV)
	}
	wantJSONL := `{"key_id":"k1","owner":"acme","product":"pdf","status":"2xx","requests":2,"cost":10}
{"key_id":"k1","owner":"acme","product":"quote","status":"2xx","requests":2,"cost":2}
{"key_id":"k1","owner":"acme","product":"quote","status":"4xx","requests":1,"cost":1}
{"key_id":"k2","owner":"acme","product":"quote","status":"2xx","requests":1,"cost":1}
{"key_id":"k3","owner":"globex","product":"quote","status":"2xx","requests":1,"cost":1}
{"key_id":"k3","owner":"globex","product":"quote","status":"5xx","requests":1,"cost":1}
`
	if j1 != wantJSONL {
		t.Errorf("jsonl:\n%s\nwant:\n%s", j1, wantJSONL)
	}
	wantStripe := `{"event_name":"api_units","identifier":"gatehouse-697a820630bec110c0aed2abad55b156","payload":{"stripe_customer_id":"cus_A","value":"5"},"timestamp":1795867200}
{"event_name":"api_units","identifier":"gatehouse-b252c9ee5f679431d36d3105ce2b2b4a","payload":{"stripe_customer_id":"cus_A","value":"4"},"timestamp":1795867200}
{"event_name":"api_units","identifier":"gatehouse-21ccee1959c65a7b6e4930b01ae85757","payload":{"stripe_customer_id":"cus_G","value":"1"},"timestamp":1795867200}
{"event_name":"api_units","identifier":"gatehouse-f0a5e464357316b34bb85a9782430308","payload":{"stripe_customer_id":"cus_A","value":"5"},"timestamp":1795870800}
{"event_name":"api_units","identifier":"gatehouse-3e9ef0c924dca683a102dc80d735134c","payload":{"stripe_customer_id":"cus_G","value":"1"},"timestamp":1795870800}
`
	if s1 != wantStripe {
		t.Errorf("stripe:\n%s\nwant:\n%s", s1, wantStripe)
	}

	if err := u.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c2, j2, s2 := export(); c2 != c1 || j2 != j1 || s2 != s1 {
		t.Errorf("the second export differs:\n%s%s%s", c2, j2, s2)
	}

	delete(meter.Customers, "globex")
	var out bytes.Buffer
	err := sqlstore.WriteUsageStripe(&out, readUsage(t, db, sqlstore.UsageQuery{By: sqlstore.UsageByOwner, From: dayFrom, To: dayTo, Hourly: true}), meter)
	if err == nil || err.Error() != `sqlstore: stripe export: owner "globex" has no Stripe customer` || out.Len() != 0 {
		t.Errorf("owner without customer: %v, wrote %q", err, out.String())
	}
}

// Usage is what the gateway's Config.Usage takes.
var _ gatehouse.UsageRecorder = (*sqlstore.Usage)(nil)

// TestUsageThroughGateway: a gateway whose keys come from the database and
// whose Config.Usage is a Usage of it writes, at Close, exactly the requests
// its callers got answers for, by key, product and status class, with their
// cost; none of those refused with 401 or 429.
func TestUsageThroughGateway(t *testing.T) {
	for _, kind := range dialects {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			db, clk, a := setup(t, kind)
			plainA, ka, err := a.Create(ctx, sqlstore.Spec{Owner: "acme", Products: []string{"quote", "pdf"}, PerMinute: 100, PerDay: 1000})
			if err != nil {
				t.Fatal(err)
			}
			plainB, kb, err := a.Create(ctx, sqlstore.Spec{Owner: "globex", Products: []string{"quote"}, PerMinute: 2, PerDay: 1000})
			if err != nil {
				t.Fatal(err)
			}
			u := newUsage(t, db, clk, sqlstore.UsageConfig{})
			h, err := gatehouse.New(gatehouse.Config{
				Auth: auth.Config{Store: newStore(t, db, manual(clk))},
				Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(
					auth.Product{Slug: "quote", Active: true},
					auth.Product{Slug: "pdf", Active: true, Cost: 5},
				)},
				Product: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if p, _ := auth.ProductFrom(r.Context()); p.Slug == "pdf" {
						w.WriteHeader(http.StatusServiceUnavailable)
					}
				}),
				Usage:  u,
				Now:    clk.Now,
				Logger: quiet,
			})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			got := map[int]int{}
			for _, c := range []struct{ key, product string }{
				{plainA, "quote"}, {plainA, "quote"}, {plainA, "pdf"}, {plainA, "nope"},
				{plainB, "quote"}, {plainB, "quote"}, {plainB, "quote"}, {"gh_unknown", "quote"},
			} {
				req, _ := http.NewRequest("POST", srv.URL+"/api/"+c.product, strings.NewReader(`{"inputs":{}}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-API-Key", c.key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				got[resp.StatusCode]++
			}
			if want := map[int]int{200: 4, 503: 1, 404: 1, 429: 1, 401: 1}; !reflect.DeepEqual(got, want) {
				t.Errorf("answers %v, want %v", got, want)
			}
			if err := u.Close(); err != nil {
				t.Fatal(err)
			}
			want := []sqlstore.UsageRow{
				{KeyID: ka.ID, Owner: "acme", Product: "nope", Status: "4xx", Requests: 1, Cost: 1},
				{KeyID: ka.ID, Owner: "acme", Product: "pdf", Status: "5xx", Requests: 1, Cost: 5},
				{KeyID: ka.ID, Owner: "acme", Product: "quote", Status: "2xx", Requests: 2, Cost: 2},
				{KeyID: kb.ID, Owner: "globex", Product: "quote", Status: "2xx", Requests: 2, Cost: 2},
			}
			slices.SortStableFunc(want, func(x, y sqlstore.UsageRow) int { return strings.Compare(x.KeyID, y.KeyID) })
			if rows := readUsage(t, db, sqlstore.UsageQuery{By: sqlstore.UsageByKey, From: dayFrom, To: dayTo}); !reflect.DeepEqual(rows, want) {
				t.Errorf("usage:\n got %+v\nwant %+v", rows, want)
			}
		})
	}
}
