package sqlstore_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
	"github.com/gatehouse-go/gatehouse/errorsjson"

	"github.com/gatehouse-go/gatehouse/internal/testclock"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// letThrough sends one request with plaintext through the key check and
// s.CountUse to a handler that answers 200, as a request that passed every
// check, and fails t unless it was answered 200.
func letThrough(t testing.TB, s *sqlstore.Store, plaintext string) {
	t.Helper()
	h := auth.Middleware(auth.Config{Store: s, Logger: quiet})(s.CountUse(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	r := httptest.NewRequest("POST", "/api/quote", nil)
	r.Header.Set("X-API-Key", plaintext)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("request let through: %d %s", w.Code, w.Body)
	}
}

// manual is a Store configuration with no background work and the test's clock.
func manual(clk *testclock.Clock) sqlstore.Config {
	return sqlstore.Config{PollInterval: -1, FlushInterval: -1, Now: clk.Now, Logger: quiet}
}

func TestLookup(t *testing.T) {
	ctx := context.Background()
	db, clk, a := setup(t, "sqlite")
	plain, k, _ := a.Create(ctx, sqlstore.Spec{Name: "n", Owner: "acme", Products: []string{"quote"}, PerMinute: 7, PerDay: 70, ExpiresAt: t0.Add(time.Hour)})
	s := newStore(t, db, manual(clk))

	got, err := s.Lookup(ctx, auth.HashKey(plain))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != k.ID || got.Hash != k.Hash || got.Name != "n" || got.PerMinute != 7 || got.PerDay != 70 || !got.ExpiresAt.Equal(t0.Add(time.Hour)) || got.Allowance != k.ID || !got.Allows("quote") || got.Allows("pdf") {
		t.Errorf("Lookup = %+v, want the created key", got)
	}
	unknown, _ := auth.NewKey()
	if _, err := s.Lookup(ctx, auth.HashKey(unknown)); !errors.Is(err, auth.ErrKeyNotFound) {
		t.Errorf("unknown key: %v, want ErrKeyNotFound", err)
	}
}

// TestRevocationByPoll: a cached key stays cached until a poll reads the
// change; then the next lookup sees it disabled.
func TestRevocationByPoll(t *testing.T) {
	ctx := context.Background()
	db, clk, a := setup(t, "sqlite")
	plain, k, _ := a.Create(ctx, spec("acme", 1))
	later, _, _ := a.Create(ctx, spec("acme", 2))
	s := newStore(t, db, manual(clk))
	s.Poll(ctx)
	h := auth.HashKey(plain)
	if got, err := s.Lookup(ctx, h); err != nil || got.Disabled {
		t.Fatalf("Lookup = %v, %v; want an active key", got, err)
	}
	if err := a.Disable(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Lookup(ctx, h); got.Disabled {
		t.Fatal("a disabled key was seen without a poll: the cache is not caching")
	}
	if err := s.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Lookup(ctx, h); !got.Disabled {
		t.Error("after the poll the key is still active")
	}
	// A key deleted after it was cached is unknown after the poll; the other
	// key stays cached.
	before := s.Stats().Lookups
	s.Lookup(ctx, auth.HashKey(later))
	if err := a.Delete(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	s.Poll(ctx)
	if _, err := s.Lookup(ctx, h); !errors.Is(err, auth.ErrKeyNotFound) {
		t.Errorf("deleted key: %v, want ErrKeyNotFound", err)
	}
	s.Lookup(ctx, auth.HashKey(later))
	if got := s.Stats().Lookups - before; got != 2 {
		t.Errorf("%d queries, want 2: the poll must drop only the changed key", got)
	}
}

// TestRevocationWithinOneSecond: with the background poll, a key disabled on
// one replica's database is refused by another replica within 1 s.
func TestRevocationWithinOneSecond(t *testing.T) {
	for _, kind := range dialects {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			db, url := openDB(t, kind)
			a := newAdmin(t, db, nil)
			plain, k, _ := a.Create(ctx, spec("acme", 1))
			// The replica has its own connection pool, as another process would.
			db2, err := sqlstore.Open(url)
			if err != nil {
				t.Fatal(err)
			}
			defer db2.Close()
			s := newStore(t, db2, sqlstore.Config{Logger: quiet})
			for s.Stats().Polls < 2 { // the first poll, which drops the whole cache, is over
				time.Sleep(time.Millisecond)
			}
			h := auth.HashKey(plain)
			if got, err := s.Lookup(ctx, h); err != nil || got.Disabled {
				t.Fatalf("Lookup = %v, %v", got, err)
			}
			start := time.Now()
			if err := a.Disable(ctx, k.ID); err != nil {
				t.Fatal(err)
			}
			for {
				got, err := s.Lookup(ctx, h)
				if err == nil && got.Disabled {
					break
				}
				if d := time.Since(start); d > time.Second {
					t.Fatalf("still not disabled after %v", d)
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("%s: disabled seen after %v", kind, time.Since(start))
		})
	}
}

// TestQueriesPerTTL: 10,000 requests over 100 keys make 100 queries per TTL.
func TestQueriesPerTTL(t *testing.T) {
	ctx := context.Background()
	db, clk, a := setup(t, "sqlite")
	var hashes [][32]byte
	for i := range 100 {
		plain, _, err := a.Create(ctx, spec("acme", i))
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, auth.HashKey(plain))
	}
	s := newStore(t, db, manual(clk))
	for round, want := range []int64{100, 200} {
		for i := range 10_000 {
			if _, err := s.Lookup(ctx, hashes[i%100]); err != nil {
				t.Fatal(err)
			}
		}
		if got := s.Stats().Lookups; got != want {
			t.Errorf("round %d: %d queries for 10,000 requests over 100 keys, want %d", round, got, want)
		}
		clk.Advance(time.Minute) // the default TTL
	}
}

// TestConcurrentMissesShareOneQuery: requests arriving together for an
// uncached key make one query. The database's only connection is held while
// they arrive, so that they all miss together.
func TestConcurrentMissesShareOneQuery(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t, "sqlite")
	a := newAdmin(t, db, nil)
	plain, _, _ := a.Create(ctx, spec("acme", 1))
	s := newStore(t, db, sqlstore.Config{PollInterval: -1, FlushInterval: -1, Logger: quiet})
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := s.Lookup(ctx, auth.HashKey(plain)); err != nil {
				t.Error(err)
			}
		})
	}
	for db.Stats().WaitCount == 0 { // the first query waits for the connection
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the others arrive
	conn.Close()
	wg.Wait()
	if got := s.Stats().Lookups; got != 1 {
		t.Errorf("%d queries for 50 simultaneous requests, want 1", got)
	}
}

// TestUsageIsBatched: 1,000 requests write nothing until the flush, which
// writes one statement per key used, with the full counts and last use.
func TestUsageIsBatched(t *testing.T) {
	ctx := context.Background()
	db, clk, a := setup(t, "sqlite")
	var plains []string
	var ids []string
	for i := range 3 {
		p, k, _ := a.Create(ctx, spec("acme", i))
		plains, ids = append(plains, p), append(ids, k.ID)
	}
	s := newStore(t, db, manual(clk))
	for i := range 1000 {
		if i == 999 {
			clk.Advance(time.Second)
		}
		letThrough(t, s, plains[i%2]) // keys 0 and 1 only
	}
	if got := s.Stats().UsageWrites; got != 0 {
		t.Fatalf("%d writes before the flush, want 0", got)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().UsageWrites; got != 2 {
		t.Errorf("%d writes for 1,000 requests on 2 keys, want 2", got)
	}
	want := map[string]int64{ids[0]: 500, ids[1]: 500, ids[2]: 0}
	for _, id := range ids {
		k, _ := a.Get(ctx, id)
		if k.Requests != want[id] {
			t.Errorf("key %s: %d requests, want %d", id, k.Requests, want[id])
		}
		switch {
		case want[id] == 0 && !k.LastUsedAt.IsZero():
			t.Errorf("unused key %s has a last use %v", id, k.LastUsedAt)
		case id == ids[1] && !k.LastUsedAt.Equal(t0.Add(time.Second)):
			t.Errorf("key 1 last used %v, want %v", k.LastUsedAt, t0.Add(time.Second))
		}
	}
	// A second flush with nothing new writes nothing; Close writes what is left.
	s.Flush(ctx)
	letThrough(t, s, plains[2])
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().UsageWrites; got != 3 {
		t.Errorf("%d writes, want 3: nothing for the empty flush, one at Close", got)
	}
	if k, _ := a.Get(ctx, ids[2]); k.Requests != 1 {
		t.Errorf("Close did not flush: %d requests", k.Requests)
	}
}

// TestStaleWindow: with the database gone, a cached key is served for
// StaleWindow past its TTL and then refused as unavailable; a key never cached
// is unavailable at once, never unknown.
func TestStaleWindow(t *testing.T) {
	ctx := context.Background()
	db, clk, a := setup(t, "sqlite")
	cachedPlain, _, _ := a.Create(ctx, spec("acme", 1))
	otherPlain, _, _ := a.Create(ctx, spec("acme", 2))
	cfg := manual(clk)
	cfg.TTL, cfg.StaleWindow = time.Minute, 5*time.Minute
	s := newStore(t, db, cfg)
	cached := auth.HashKey(cachedPlain)
	if _, err := s.Lookup(ctx, cached); err != nil {
		t.Fatal(err)
	}
	db.Close() // the database is gone for good

	steps := []struct {
		name    string
		advance time.Duration
		hash    [32]byte
		wantErr error
	}{
		{"cached, past TTL", 2 * time.Minute, cached, nil},
		{"never cached", 0, auth.HashKey(otherPlain), auth.ErrStoreUnavailable},
		{"cached, at the end of the stale window", 4*time.Minute - time.Millisecond, cached, nil},
		{"cached, past the stale window", time.Millisecond, cached, auth.ErrStoreUnavailable},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		k, err := s.Lookup(ctx, st.hash)
		if !errors.Is(err, st.wantErr) || (err == nil) != (k != nil) {
			t.Errorf("%s: %v, %v; want error %v", st.name, k, err, st.wantErr)
		}
		if errors.Is(err, auth.ErrKeyNotFound) {
			t.Errorf("%s: ErrKeyNotFound while the database is down", st.name)
		}
	}
}

// TestCloseStops: Close stops the background poll and flush and returns.
func TestCloseStops(t *testing.T) {
	db, _ := openDB(t, "sqlite")
	s, err := sqlstore.New(db, sqlstore.Config{PollInterval: time.Millisecond, FlushInterval: time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return: a background goroutine did not stop")
	}
	polls := s.Stats().Polls
	time.Sleep(20 * time.Millisecond)
	if got := s.Stats().Polls; got != polls {
		t.Errorf("%d polls after Close", got-polls)
	}
}

// TestPostgresRestartUnderTraffic stops and restarts a real PostgreSQL while
// requests flow through the key middleware on a real socket: the cached key
// is served throughout, the uncached key gets 503 with Retry-After (never
// 401) while the server is down and 200 once it is back, with nobody's help.
func TestPostgresRestartUnderTraffic(t *testing.T) {
	ctx := context.Background()
	db, url := openDB(t, "postgres")
	a := newAdmin(t, db, nil)
	cachedPlain, _, _ := a.Create(ctx, spec("acme", 1))
	coldPlain, _, _ := a.Create(ctx, spec("acme", 2))
	pg := pgServerOf(t, url)

	s := newStore(t, db, sqlstore.Config{TTL: 300 * time.Millisecond, StaleWindow: time.Minute, RetryInterval: 100 * time.Millisecond, QueryTimeout: time.Second, Logger: quiet})
	srv := httptest.NewServer(auth.Middleware(auth.Config{Store: s, Logger: quiet})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	defer srv.Close()
	call := func(key string) (int, string, string) {
		req, _ := http.NewRequest("POST", srv.URL+"/api/quote", nil)
		req.Header.Set("X-API-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After"), string(body)
	}
	if code, _, _ := call(cachedPlain); code != 200 {
		t.Fatalf("cached key before the stop: %d", code)
	}

	// Traffic on the cached key throughout.
	var stopTraffic atomic.Bool
	var bad atomic.Int64
	var sent atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stopTraffic.Load() {
			if code, _, _ := call(cachedPlain); code != 200 {
				bad.Add(1)
			}
			sent.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	})

	pg.Stop()
	time.Sleep(400 * time.Millisecond) // past the TTL: the cached key is now served stale
	code, retry, body := call(coldPlain)
	wantBody := `{"error":"` + errorsjson.MsgUpstreamUnavailable + `"}`
	if code != 503 || retry != "1" || strings.TrimSpace(body) != wantBody {
		t.Errorf("uncached key while down: %d, Retry-After %q, %s; want 503, 1, %s", code, retry, body, wantBody)
	}
	pg.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, _ := call(coldPlain)
		if code == 200 {
			break
		}
		if code != 503 {
			t.Fatalf("uncached key during recovery: %d, want 503 or 200", code)
		}
		if time.Now().After(deadline) {
			t.Fatal("uncached key still refused 10 s after PostgreSQL came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopTraffic.Store(true)
	wg.Wait()
	if bad.Load() != 0 {
		t.Errorf("%d of %d requests with the cached key were refused across the restart", bad.Load(), sent.Load())
	}
	if s.Stats().Stale == 0 {
		t.Error("no answer was served stale: the test did not reach the stale path")
	}
}

// TestPollGap: changes pruned before a replica read them (a gap in the
// version numbers) drop its whole cache, not only the changes it reads.
func TestPollGap(t *testing.T) {
	ctx := context.Background()
	db, clk, a := setup(t, "sqlite")
	plainA, ka, _ := a.Create(ctx, spec("acme", 1))
	plainB, kb, _ := a.Create(ctx, spec("acme", 2))
	s := newStore(t, db, manual(clk))
	s.Poll(ctx)
	s.Lookup(ctx, auth.HashKey(plainA))
	s.Lookup(ctx, auth.HashKey(plainB))
	a.Disable(ctx, ka.ID)
	a.Disable(ctx, kb.ID)
	// The change for A is pruned before this replica reads it.
	if _, err := db.Exec(`DELETE FROM gatehouse_changes WHERE version = (SELECT MIN(version) FROM gatehouse_changes WHERE version > 2)`); err != nil {
		t.Fatal(err)
	}
	if err := s.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	for name, plain := range map[string]string{"A": plainA, "B": plainB} {
		if k, err := s.Lookup(ctx, auth.HashKey(plain)); err != nil || !k.Disabled {
			t.Errorf("key %s after the poll: %v, %v; want disabled", name, k, err)
		}
	}
}

// TestNegativeCacheBounded: unknown hashes, chosen by whoever sends requests,
// are remembered up to MaxNegative only.
func TestNegativeCacheBounded(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t, "sqlite")
	clk := testclock.New(t0)
	cfg := manual(clk)
	cfg.MaxNegative = 10
	s := newStore(t, db, cfg)
	var hashes [][32]byte
	for range 100 {
		plain, _ := auth.NewKey()
		hashes = append(hashes, auth.HashKey(plain))
	}
	for _, h := range hashes {
		s.Lookup(ctx, h)
	}
	before := s.Stats().Lookups
	for _, h := range hashes {
		s.Lookup(ctx, h)
	}
	if again := s.Stats().Lookups - before; again < 90 {
		t.Errorf("%d of 100 unknown hashes asked again, want at least 90: more than MaxNegative=10 were remembered", again)
	}
}

// TestFlushFailureKeepsCounts: counts a flush could not write are written by
// the next one.
func TestFlushFailureKeepsCounts(t *testing.T) {
	ctx := context.Background()
	db, url := openDB(t, "sqlite")
	clk := testclock.New(t0)
	a := newAdmin(t, db, clk.Now)
	plain, k, _ := a.Create(ctx, spec("acme", 1))
	cfg := manual(clk)
	cfg.QueryTimeout = 100 * time.Millisecond
	s := newStore(t, db, cfg)
	for range 10 {
		letThrough(t, s, plain)
	}
	// Another process holds SQLite's write lock.
	other, err := sqlstore.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err == nil {
		t.Fatal("Flush succeeded while the database was locked")
	}
	tx.Rollback()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Get(ctx, k.ID); got.Requests != 10 {
		t.Errorf("%d requests written, want 10", got.Requests)
	}
}

// TestCountUseCountsRequestsLetThrough: behind the whole stack (gatehouse.New
// on a loopback socket, the Store's CountUse in front of the product), 10
// requests of a key allowed 4 a minute add 4 to its count, not 10, and
// another key's 403 and 404 answers add nothing.
func TestCountUseCountsRequestsLetThrough(t *testing.T) {
	ctx := context.Background()
	db, clk, a := setup(t, "sqlite")
	plainA, keyA, err := a.Create(ctx, sqlstore.Spec{Owner: "acme", Products: []string{"quote"}, PerMinute: 4, PerDay: 1000})
	if err != nil {
		t.Fatal(err)
	}
	plainB, keyB, err := a.Create(ctx, sqlstore.Spec{Owner: "acme", Products: []string{"quote"}, PerMinute: 100, PerDay: 1000})
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, db, manual(clk))
	h, err := gatehouse.New(gatehouse.Config{
		Auth:     auth.Config{Store: s},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true}, auth.Product{Slug: "pdf", Active: true})},
		Product: s.CountUse(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"ok":true}`))
		})),
		Now:    clk.Now,
		Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(plaintext, slug string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/api/"+slug, strings.NewReader(`{"inputs":{}}`))
		req.Header.Set("X-API-Key", plaintext)
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for i := range 10 {
		status, body := post(plainA, "quote")
		if want := map[bool]int{true: 200, false: 429}[i < 4]; status != want {
			t.Errorf("request %d of a key allowed 4: %d %s, want %d", i+1, status, body, want)
		}
		if i < 4 && body != `{"ok":true}` {
			t.Errorf("request %d: body %s, the product's", i+1, body)
		}
	}
	for slug, want := range map[string]int{"pdf": 403, "nope": 404} {
		if status, body := post(plainB, slug); status != want {
			t.Errorf("%s: %d %s, want %d", slug, status, body, want)
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   string
		want int64
	}{{keyA.ID, 4}, {keyB.ID, 0}} {
		if k, err := a.Get(ctx, c.id); err != nil || k.Requests != c.want {
			t.Errorf("key %s: %d requests (%v), want %d", c.id, k.Requests, err, c.want)
		}
	}
}
