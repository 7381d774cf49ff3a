package sqlstore_test

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
	"github.com/gatehouse-go/gatehouse/errorsjson"
	"github.com/gatehouse-go/gatehouse/internal/authtest"
)

// lockedKeys is a real PostgreSQL whose keys table a second connection holds
// locked, so that a lookup's query waits for the lock as it would for a slow
// database, with a Store on it behind the key middleware (and
// errorsjson.RequestID), the log lines of both and the key checks' events
// recorded.
type lockedKeys struct {
	h      http.Handler
	s      *sqlstore.Store
	db     *sql.DB
	lock   *sql.Tx
	plain  string // a key in the database, not yet cached
	logs   *authtest.Log
	mu     sync.Mutex
	checks []auth.Result
}

func newLockedKeys(t *testing.T, cfg sqlstore.Config) *lockedKeys {
	t.Helper()
	ctx := context.Background()
	db, url := openDB(t, "postgres")
	plain, _, err := newAdmin(t, db, nil).Create(ctx, spec("acme", 1))
	if err != nil {
		t.Fatal(err)
	}
	logger, logs := authtest.NewLog()
	l := &lockedKeys{db: db, plain: plain, logs: logs}
	cfg.PollInterval, cfg.FlushInterval, cfg.Logger = -1, -1, logger
	l.s = newStore(t, db, cfg)

	other, err := sqlstore.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	if l.lock, err = other.BeginTx(ctx, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.lock.Rollback() })
	if _, err := l.lock.ExecContext(ctx, `LOCK TABLE gatehouse_keys IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	l.h = errorsjson.RequestID(auth.Middleware(auth.Config{Store: l.s, Logger: logger, Observe: func(e auth.Event) {
		l.mu.Lock()
		l.checks = append(l.checks, e.Result)
		l.mu.Unlock()
	}})(ok))
	return l
}

// start sends a request with the key and request id id, under ctx.
func (l *lockedKeys) start(ctx context.Context, id string) <-chan *httptest.ResponseRecorder {
	return authtest.Start(ctx, l.h, l.plain, id)
}

// waitLocked waits until the lookup's query waits for the lock.
func (l *lockedKeys) waitLocked(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var n int
		err := l.db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'SELECT id, name%'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the lookup's query never waited for the lock")
		}
		time.Sleep(time.Millisecond)
	}
}

// waitCallers waits, without sleeping, until n callers have asked for the
// lookup of the key in flight.
func (l *lockedKeys) waitCallers(n int) {
	for l.s.LookupCallers(auth.HashKey(l.plain)) < n {
		runtime.Gosched()
	}
}

func (l *lockedKeys) takeChecks() []auth.Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	got := l.checks
	l.checks = nil
	return got
}

// TestCallerHangUpOnSlowDatabase: on a real PostgreSQL whose keys table is
// locked, caller A makes the first lookup of a key and gives up after 100 ms
// while B and C, with no deadline, wait for the same query. A's going away
// does not cancel the query: once the lock is released, B and C get 200, from
// one query, and nothing is logged or reported as a store failure; A's 503
// is read by nobody.
func TestCallerHangUpOnSlowDatabase(t *testing.T) {
	l := newLockedKeys(t, sqlstore.Config{QueryTimeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	a := l.start(ctx, "a")
	l.waitLocked(t)
	b := l.start(context.Background(), "b")
	c := l.start(context.Background(), "c")
	l.waitCallers(3)

	authtest.AssertAnswer(t, "A", <-a, 503, authtest.UnavailableBody("a"), "1")
	if err := l.lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	authtest.AssertAnswer(t, "B", <-b, 200, "ok", "")
	authtest.AssertAnswer(t, "C", <-c, 200, "ok", "")
	if got := l.logs.Lines(); got != nil {
		t.Errorf("logs:\n%s\nwant none", strings.Join(got, "\n"))
	}
	if got, want := l.takeChecks(), []auth.Result{auth.KeyAbandoned, auth.KeyValid, auth.KeyValid}; !slices.Equal(got, want) {
		t.Errorf("key checks %v, want %v", got, want)
	}
	if got := l.s.Stats().Lookups; got != 1 {
		t.Errorf("%d queries, want 1", got)
	}
}

// TestLookupDeadlineOnSlowDatabase: a query that waits past QueryTimeout (the
// keys table locked throughout) fails the lookup for every caller waiting for
// it, B and C with no deadline of their own: 503 with Retry-After, each
// request logged, the database's failure logged once, one query.
func TestLookupDeadlineOnSlowDatabase(t *testing.T) {
	l := newLockedKeys(t, sqlstore.Config{QueryTimeout: 200 * time.Millisecond, RetryInterval: time.Hour})
	b := l.start(context.Background(), "b")
	c := l.start(context.Background(), "c")
	authtest.AssertAnswer(t, "B", <-b, 503, authtest.UnavailableBody("b"), "1")
	authtest.AssertAnswer(t, "C", <-c, 503, authtest.UnavailableBody("c"), "1")
	// C may have come after the query failed: then it was answered without
	// one, the database having failed a moment ago.
	lines := l.logs.Lines()
	want := []string{
		`level=ERROR msg="auth: key store unavailable" error="sqlstore: auth: key store unavailable: `,
		`level=ERROR msg="auth: key store unavailable" error="sqlstore: auth: key store unavailable: `,
		`level=ERROR msg="sqlstore: database unavailable; serving cached keys" error=`,
	}
	ids := []string{" request_id=b", " request_id=c", " stale_window=5m0s"}
	if len(lines) != len(want) {
		t.Fatalf("logs:\n%s\nwant 3 lines", strings.Join(lines, "\n"))
	}
	for i, line := range lines {
		if !strings.HasPrefix(line, want[i]) || !strings.HasSuffix(line, ids[i]) {
			t.Errorf("log line %q, want %q…%q", line, want[i], ids[i])
		}
	}
	if got, want := l.takeChecks(), []auth.Result{auth.KeyStoreUnavailable, auth.KeyStoreUnavailable}; !slices.Equal(got, want) {
		t.Errorf("key checks %v, want %v", got, want)
	}
	if got := l.s.Stats().Lookups; got != 1 {
		t.Errorf("%d queries, want 1", got)
	}
}
