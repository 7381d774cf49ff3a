package sqlstore_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
	"github.com/gatehouse-go/gatehouse/internal/testclock"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// TestKeyOwnerAndWindows: a key's owner and further windows are stored,
// read back by Admin and by the Store's lookup (what the gateway limits by),
// replaced by Update, kept by Rotate, and refused when the rate limiter could
// not use them; on SQLite and PostgreSQL.
func TestKeyOwnerAndWindows(t *testing.T) {
	hourly := []ratelimit.Rate{{Limit: 1000, Period: time.Hour}, {Limit: 100_000, Period: 30 * 24 * time.Hour}}
	for _, kind := range dialects {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			db, clk, a := setup(t, kind)
			s := newStore(t, db, manual(clk))

			plain, k, err := a.Create(ctx, sqlstore.Spec{Owner: "acme", Products: []string{"quote"}, Windows: hourly})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := a.Get(ctx, k.ID); err != nil || got.Owner != "acme" || !slices.Equal(got.Windows, hourly) {
				t.Errorf("Get = %+v, %v; want owner acme and windows %v", got, err, hourly)
			}
			got, err := s.Lookup(ctx, auth.HashKey(plain))
			if err != nil || got.Owner != "acme" || !slices.Equal(got.Windows, hourly) {
				t.Fatalf("Lookup = %+v, %v; want owner acme and windows %v", got, err, hourly)
			}

			_, plainKey, err := a.Create(ctx, spec("acme", 2))
			if err != nil || plainKey.Windows != nil {
				t.Errorf("a key without windows: %v, %v; want nil windows", plainKey.Windows, err)
			}

			daily := []ratelimit.Rate{{Limit: 5, Period: 10 * time.Second}}
			up, err := a.Update(ctx, k.ID, sqlstore.Update{Windows: daily})
			if err != nil || !slices.Equal(up.Windows, daily) {
				t.Fatalf("Update(windows) = %+v, %v", up.Windows, err)
			}
			if got, _ := a.Get(ctx, k.ID); !slices.Equal(got.Windows, daily) {
				t.Errorf("after Update: windows %v, want %v", got.Windows, daily)
			}
			name := "renamed"
			if up, err := a.Update(ctx, k.ID, sqlstore.Update{Name: &name}); err != nil || !slices.Equal(up.Windows, daily) {
				t.Errorf("Update without Windows: %v, %v; want the windows unchanged", up.Windows, err)
			}
			_, rotated, err := a.Rotate(ctx, k.ID, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := a.Get(ctx, rotated.ID); got.Owner != "acme" || !slices.Equal(got.Windows, daily) {
				t.Errorf("rotated key: owner %q windows %v, want acme and %v", got.Owner, got.Windows, daily)
			}
			if up, err := a.Update(ctx, k.ID, sqlstore.Update{Windows: []ratelimit.Rate{}}); err != nil || up.Windows != nil {
				t.Errorf("Update(empty windows) = %v, %v; want none", up.Windows, err)
			}
			if got, _ := a.Get(ctx, k.ID); got.Windows != nil {
				t.Errorf("after removing: windows %v, want none", got.Windows)
			}

			for _, w := range []ratelimit.Rate{
				{Limit: 0, Period: time.Hour},
				{Limit: 1, Period: 0},
				{Limit: 1, Period: 1500 * time.Millisecond},
				{Limit: 1, Period: 32 * 24 * time.Hour},
				{Limit: 1, Period: time.Minute},    // that is PerMinute
				{Limit: 1, Period: 24 * time.Hour}, // that is PerDay
			} {
				if _, _, err := a.Create(ctx, sqlstore.Spec{Owner: "acme", Products: []string{"quote"}, Windows: []ratelimit.Rate{w}}); !errors.Is(err, sqlstore.ErrInvalid) {
					t.Errorf("Create with window %+v: %v, want ErrInvalid", w, err)
				}
				if _, err := a.Update(ctx, k.ID, sqlstore.Update{Windows: []ratelimit.Rate{w}}); !errors.Is(err, sqlstore.ErrInvalid) {
					t.Errorf("Update with window %+v: %v, want ErrInvalid", w, err)
				}
			}
			twice := []ratelimit.Rate{{Limit: 5, Period: time.Hour}, {Limit: 9, Period: time.Hour}}
			if _, err := a.Update(ctx, k.ID, sqlstore.Update{Windows: twice}); !errors.Is(err, sqlstore.ErrInvalid) {
				t.Errorf("Update with two windows of an hour: %v, want ErrInvalid", err)
			}
		})
	}
}

// TestMigrateFromVersion1: a database made by the first release (version 1
// only, with a key in it) is brought to the newest version by Migrate, and
// its key reads back with no windows; on SQLite and PostgreSQL.
func TestMigrateFromVersion1(t *testing.T) {
	v1, err := os.ReadFile("migrations/0001_keys.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range dialects {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			db, _ := openDB(t, kind)
			// Start over from an empty schema, then apply version 1 by hand.
			for _, table := range []string{"gatehouse_keys", "gatehouse_version", "gatehouse_changes", "gatehouse_schema_migrations", "gatehouse_owner_limits", "gatehouse_audit",
				"gatehouse_usage", "gatehouse_usage_batches"} {
				if _, err := db.Exec(`DROP TABLE ` + table); err != nil {
					t.Fatal(err)
				}
			}
			for stmt := range strings.SplitSeq(stripComments(string(v1)), ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := db.Exec(stmt); err != nil {
					t.Fatalf("version 1: %v", err)
				}
			}
			if _, err := db.Exec(`CREATE TABLE gatehouse_schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`INSERT INTO gatehouse_schema_migrations (version, applied_at) VALUES (1, 0)`); err != nil {
				t.Fatal(err)
			}
			plain, old := auth.NewKey()
			if _, err := db.Exec(`INSERT INTO gatehouse_keys (id, hash, owner, name, products, per_minute, per_day, allowance, created_at, updated_at)
VALUES ('` + old.ID + `', '` + old.HashHex() + `', 'acme', 'old', '["quote"]', 5, 50, '` + old.ID + `', 0, 0)`); err != nil {
				t.Fatal(err)
			}

			if err := sqlstore.Migrate(ctx, db); err != nil {
				t.Fatalf("Migrate from version 1: %v", err)
			}
			clk := testclock.New(t0)
			got, err := newStore(t, db, manual(clk)).Lookup(ctx, auth.HashKey(plain))
			if err != nil || got.ID != old.ID || got.Owner != "acme" || got.PerMinute != 5 || got.Windows != nil {
				t.Errorf("old key after Migrate: %+v, %v; want it with owner acme and no windows", got, err)
			}
			a := newAdmin(t, db, clk.Now)
			w := []ratelimit.Rate{{Limit: 7, Period: time.Hour}}
			if up, err := a.Update(ctx, old.ID, sqlstore.Update{Windows: w}); err != nil || !slices.Equal(up.Windows, w) {
				t.Errorf("Update of the old key's windows: %v, %v", up.Windows, err)
			}
		})
	}
}

// stripComments drops the "--" lines of a migration.
func stripComments(sql string) string {
	var b strings.Builder
	for line := range strings.Lines(sql) {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// TestOwnerLimits: an owner's allowance is set, read, listed, replaced and
// deleted through Admin; a Store serves it from its cache (one query per
// owner per TTL, an owner without one cached too) and sees each change after
// one poll; an allowance without a limit or with a bad window is refused; on
// SQLite and PostgreSQL.
func TestOwnerLimits(t *testing.T) {
	for _, kind := range dialects {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			db, clk, a := setup(t, kind)
			s := newStore(t, db, manual(clk))

			acme := sqlstore.OwnerLimits{Owner: "acme", PerDay: 100_000, Windows: []ratelimit.Rate{{Limit: 2_000_000, Period: 30 * 24 * time.Hour}}}
			if err := a.SetOwnerLimits(ctx, acme); err != nil {
				t.Fatal(err)
			}
			if got, err := a.OwnerLimits(ctx, "acme"); err != nil || got.Owner != "acme" || got.PerMinute != 0 || got.PerDay != 100_000 || !slices.Equal(got.Windows, acme.Windows) {
				t.Errorf("Admin.OwnerLimits = %+v, %v; want %+v", got, err, acme)
			}
			if _, err := a.OwnerLimits(ctx, "globex"); !errors.Is(err, sqlstore.ErrNotFound) {
				t.Errorf("Admin.OwnerLimits(globex) = %v, want ErrNotFound", err)
			}

			before := s.Stats().Lookups
			for range 3 {
				got, err := s.OwnerLimits(ctx, "acme")
				if err != nil || got == nil || got.PerDay != 100_000 || !slices.Equal(got.Windows, acme.Windows) {
					t.Fatalf("Store.OwnerLimits(acme) = %+v, %v", got, err)
				}
				if got, err := s.OwnerLimits(ctx, "globex"); err != nil || got != nil {
					t.Fatalf("Store.OwnerLimits(globex) = %+v, %v; want none", got, err)
				}
			}
			if n := s.Stats().Lookups - before; n != 2 {
				t.Errorf("%d queries for 6 lookups of 2 owners, want 2 (both cached)", n)
			}
			// OwnerRates: the same cached answer as the rate limiter's
			// windows, made once per fetch, not per call.
			wantRates := []ratelimit.Rate{{Limit: 100_000, Period: 24 * time.Hour}, {Limit: 2_000_000, Period: 30 * 24 * time.Hour}}
			r1, r2 := s.OwnerRates(ctx, "acme"), s.OwnerRates(ctx, "acme")
			if !slices.Equal(r1, wantRates) || len(r2) == 0 || &r1[0] != &r2[0] {
				t.Errorf("Store.OwnerRates(acme) = %v then %v, want %v shared", r1, r2, wantRates)
			}
			if got := s.OwnerRates(ctx, "globex"); got != nil {
				t.Errorf("Store.OwnerRates(globex) = %v, want nil", got)
			}
			if n := s.Stats().Lookups - before; n != 2 {
				t.Errorf("%d queries after OwnerRates, want still 2", n)
			}

			if err := a.SetOwnerLimits(ctx, sqlstore.OwnerLimits{Owner: "acme", PerMinute: 10}); err != nil {
				t.Fatal(err)
			}
			if err := a.SetOwnerLimits(ctx, sqlstore.OwnerLimits{Owner: "globex", PerDay: 5}); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.OwnerLimits(ctx, "acme"); got == nil || got.PerDay != 100_000 {
				t.Errorf("before the poll: %+v, want the cached allowance", got)
			}
			if err := s.Poll(ctx); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.OwnerLimits(ctx, "acme"); got == nil || got.PerMinute != 10 || got.PerDay != 0 || got.Windows != nil {
				t.Errorf("after the poll: %+v, want 10 a minute only", got)
			}
			if got, want := s.OwnerRates(ctx, "acme"), []ratelimit.Rate{{Limit: 10, Period: time.Minute}}; !slices.Equal(got, want) {
				t.Errorf("OwnerRates after the poll: %v, want %v", got, want)
			}
			if got, _ := s.OwnerLimits(ctx, "globex"); got == nil || got.PerDay != 5 {
				t.Errorf("globex after the poll: %+v, want 5 a day", got)
			}
			if all, err := a.ListOwnerLimits(ctx); err != nil || len(all) != 2 || all[0].Owner != "acme" || all[1].Owner != "globex" {
				t.Errorf("ListOwnerLimits = %+v, %v", all, err)
			}

			if err := a.DeleteOwnerLimits(ctx, "acme"); err != nil {
				t.Fatal(err)
			}
			if err := a.DeleteOwnerLimits(ctx, "acme"); !errors.Is(err, sqlstore.ErrNotFound) {
				t.Errorf("second delete: %v, want ErrNotFound", err)
			}
			s.Poll(ctx)
			if got, err := s.OwnerLimits(ctx, "acme"); err != nil || got != nil {
				t.Errorf("after delete and poll: %+v, %v; want none", got, err)
			}

			for _, bad := range []sqlstore.OwnerLimits{
				{Owner: "acme"},
				{Owner: "", PerDay: 1},
				{Owner: "acme", PerDay: -1},
				{Owner: "acme", Windows: []ratelimit.Rate{{Limit: 1, Period: time.Millisecond}}},
				{Owner: "acme", PerDay: 5, Windows: []ratelimit.Rate{{Limit: 1, Period: 24 * time.Hour}}},
			} {
				if err := a.SetOwnerLimits(ctx, bad); !errors.Is(err, sqlstore.ErrInvalid) {
					t.Errorf("SetOwnerLimits(%+v) = %v, want ErrInvalid", bad, err)
				}
			}
		})
	}
}

// TestWindowsStoredJSON: the windows columns of keys and owners hold
// [{"limit":N,"per_seconds":S},…] ("[]" for none), and a row written so, as
// by any earlier release, reads back as those windows: a database keeps
// reading the same whatever Go type carries the windows; on SQLite and
// PostgreSQL.
func TestWindowsStoredJSON(t *testing.T) {
	const stored = `[{"limit":1000,"per_seconds":3600},{"limit":100000,"per_seconds":2592000}]`
	windows := []ratelimit.Rate{{Limit: 1000, Period: time.Hour}, {Limit: 100_000, Period: 30 * 24 * time.Hour}}
	for _, kind := range dialects {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			db, _, a := setup(t, kind)
			column := func(query, arg string) string {
				t.Helper()
				if kind == "postgres" {
					query = strings.Replace(query, "?", "$1", 1)
				}
				var s string
				if err := db.QueryRowContext(ctx, query, arg).Scan(&s); err != nil {
					t.Fatal(err)
				}
				return s
			}
			write := func(query, value, arg string) {
				t.Helper()
				if kind == "postgres" {
					query = strings.Replace(strings.Replace(query, "?", "$1", 1), "?", "$2", 1)
				}
				if _, err := db.ExecContext(ctx, query, value, arg); err != nil {
					t.Fatal(err)
				}
			}

			_, k, err := a.Create(ctx, sqlstore.Spec{Owner: "acme", Products: []string{"quote"}, Windows: windows})
			if err != nil {
				t.Fatal(err)
			}
			if got := column(`SELECT windows FROM gatehouse_keys WHERE id = ?`, k.ID); got != stored {
				t.Errorf("key's windows column %s, want %s", got, stored)
			}
			_, none, err := a.Create(ctx, sqlstore.Spec{Owner: "acme", Products: []string{"quote"}})
			if err != nil {
				t.Fatal(err)
			}
			if got := column(`SELECT windows FROM gatehouse_keys WHERE id = ?`, none.ID); got != "[]" {
				t.Errorf("windows column of a key without windows %s, want []", got)
			}
			write(`UPDATE gatehouse_keys SET windows = ? WHERE id = ?`, stored, none.ID)
			if got, err := a.Get(ctx, none.ID); err != nil || !slices.Equal(got.Windows, windows) {
				t.Errorf("key whose column is %s reads %v, %v; want %v", stored, got.Windows, err, windows)
			}

			if err := a.SetOwnerLimits(ctx, sqlstore.OwnerLimits{Owner: "acme", Windows: windows}); err != nil {
				t.Fatal(err)
			}
			if got := column(`SELECT windows FROM gatehouse_owner_limits WHERE owner = ?`, "acme"); got != stored {
				t.Errorf("owner's windows column %s, want %s", got, stored)
			}
			if err := a.SetOwnerLimits(ctx, sqlstore.OwnerLimits{Owner: "globex", PerDay: 5}); err != nil {
				t.Fatal(err)
			}
			write(`UPDATE gatehouse_owner_limits SET windows = ? WHERE owner = ?`, stored, "globex")
			if got, err := a.OwnerLimits(ctx, "globex"); err != nil || !slices.Equal(got.Windows, windows) {
				t.Errorf("owner whose column is %s reads %v, %v; want %v", stored, got.Windows, err, windows)
			}
		})
	}
}
