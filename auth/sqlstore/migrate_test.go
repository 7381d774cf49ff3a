package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
	"github.com/gatehouse-go/gatehouse/internal/pgtest"
)

// versions is the number of migrations, each recorded once when applied.
func versions(t *testing.T) int {
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations: %v", err)
	}
	return len(files)
}

// migrateTogether runs Migrate on two pools of the fresh database at url at
// once, as two replicas starting together do, and returns their errors. Each
// pool has its connection open before the start, so that both reach the
// database at the same moment.
func migrateTogether(t *testing.T, url string) []error {
	t.Helper()
	ctx := context.Background()
	dbs := make([]*sql.DB, 2)
	for i := range dbs {
		db, err := sqlstore.Open(url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		dbs[i] = db
	}
	errs := make([]error, len(dbs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Go(func() {
			<-start
			errs[i] = sqlstore.Migrate(ctx, db)
		})
	}
	close(start)
	wg.Wait()
	var n int
	if err := dbs[0].QueryRowContext(ctx, `SELECT COUNT(*) FROM gatehouse_schema_migrations`).Scan(&n); err != nil || n != versions(t) {
		t.Errorf("%d migrations recorded (%v), want %d", n, err, versions(t))
	}
	return errs
}

// TestMigrateTogetherPostgres: two replicas migrating a fresh PostgreSQL
// database at once both succeed, on each of 20 fresh databases: the second
// waits for the first, from the creation of the migrations table on.
func TestMigrateTogetherPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	admin, err := sqlstore.Open(pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	failures := 0
	for i := range 20 {
		name := fmt.Sprintf("fresh%d", i)
		if _, err := admin.Exec(`CREATE DATABASE ` + name); err != nil {
			t.Fatal(err)
		}
		for _, err := range migrateTogether(t, strings.Replace(pg.URL, "/postgres?", "/"+name+"?", 1)) {
			if err != nil {
				failures++
				t.Errorf("database %s: %v", name, err)
			}
		}
	}
	if failures != 0 {
		t.Errorf("%d of 40 migrations failed, want 0", failures)
	}
}

// TestMigrateTogetherSQLite: two pools migrating one fresh SQLite file at once
// both succeed.
func TestMigrateTogetherSQLite(t *testing.T) {
	for i := range 20 {
		url := "sqlite:" + filepath.Join(t.TempDir(), fmt.Sprintf("keys%d.db", i))
		for _, err := range migrateTogether(t, url) {
			if err != nil {
				t.Errorf("file %d: %v", i, err)
			}
		}
	}
}
