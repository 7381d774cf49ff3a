package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
	"github.com/gatehouse-go/gatehouse/internal/pgtest"
	"github.com/gatehouse-go/gatehouse/internal/testclock"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// dialects are the databases every dialect test runs on.
var dialects = []string{"sqlite", "postgres"}

// openDB returns a migrated, empty database of the given kind: a SQLite file
// in a temporary directory, or a PostgreSQL server of the test's own.
func openDB(t testing.TB, kind string) (*sql.DB, string) {
	t.Helper()
	var url string
	switch kind {
	case "sqlite":
		url = "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	case "postgres":
		pg := pgtest.Start(t)
		servers.Store(pg.URL, pg)
		url = pg.URL
	default:
		panic(kind)
	}
	db, err := sqlstore.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return db, url
}

// setup is where most tests start: a migrated, empty database of the given
// kind (openDB), a clock at t0 that the test moves, and an Admin on that clock.
func setup(t testing.TB, kind string) (*sql.DB, *testclock.Clock, *sqlstore.Admin) {
	t.Helper()
	db, _ := openDB(t, kind)
	clk := testclock.New(t0)
	return db, clk, newAdmin(t, db, clk.Now)
}

// testActor is who newAdmin's Admin makes its changes as.
const testActor = "tester"

// newAdmin is an Admin of db on the clock now (nil: the time), acting as
// testActor.
func newAdmin(t testing.TB, db *sql.DB, now func() time.Time) *sqlstore.Admin {
	t.Helper()
	a, err := sqlstore.NewAdmin(db, sqlstore.AdminConfig{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return a.As(testActor)
}

// newStore is a Store of db with cfg, closed when the test ends.
func newStore(t testing.TB, db *sql.DB, cfg sqlstore.Config) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.New(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// spec is the Spec of owner's key number i, for the quote and pdf products.
func spec(owner string, i int) sqlstore.Spec {
	return sqlstore.Spec{Name: fmt.Sprintf("key %d", i), Owner: owner, Products: []string{"quote", "pdf"}, PerMinute: 60, PerDay: 1000}
}

// migrationCount is the number of migration files, each of which Migrate
// records in gatehouse_schema_migrations.
func migrationCount(t testing.TB) int {
	t.Helper()
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations found: %v", err)
	}
	return len(files)
}
