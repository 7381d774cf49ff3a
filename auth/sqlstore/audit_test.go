package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
	"github.com/gatehouse-go/gatehouse/internal/testclock"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// auditWant is an audit row a test expects; changes is the changes column's
// JSON, with {id} and {new} standing for the IDs of the key and its rotation.
type auditWant struct {
	seq     int64
	at      time.Time
	actor   string
	action  sqlstore.AuditAction
	keyID   string
	owner   string
	changes string
}

// auditSteps makes one change of each kind through a, one minute apart on clk
// from t0, as alice and bob: create, update, disable (twice), enable,
// rotate, set an owner's limits (twice), delete them and delete the rotated
// key. It returns the plaintexts and records of the key and its rotation,
// and the rows the changes must have written, oldest first.
func auditSteps(t *testing.T, a *sqlstore.Admin, clk *testclock.Clock) (plains []string, keys []sqlstore.Key, want []auditWant) {
	t.Helper()
	ctx := context.Background()
	alice, bob := a.As("alice"), a.As("bob")
	step := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
	}
	s := sqlstore.Spec{Name: "ci", Owner: "acme", Products: []string{"quote", "pdf"}, PerMinute: 60, PerDay: 1000,
		Windows: []ratelimit.Rate{{Limit: 1000, Period: time.Hour}}, ExpiresAt: t0.Add(48 * time.Hour)}
	plain, k, err := alice.Create(ctx, s)
	step(err)
	name, perMinute := "ci2", 5
	_, err = bob.Update(ctx, k.ID, sqlstore.Update{Name: &name, PerMinute: &perMinute, Windows: []ratelimit.Rate{}})
	step(err)
	step(alice.Disable(ctx, k.ID))
	step(alice.Disable(ctx, k.ID))
	step(bob.Enable(ctx, k.ID))
	newPlain, rotated, err := alice.Rotate(ctx, k.ID, time.Hour)
	step(err)
	step(bob.SetOwnerLimits(ctx, sqlstore.OwnerLimits{Owner: "acme", PerDay: 100}))
	step(bob.SetOwnerLimits(ctx, sqlstore.OwnerLimits{Owner: "acme", PerMinute: 10, PerDay: 100, Windows: []ratelimit.Rate{{Limit: 500, Period: time.Hour}}}))
	step(alice.DeleteOwnerLimits(ctx, "acme"))
	step(bob.Delete(ctx, rotated.ID))

	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	want = []auditWant{
		{1, at(0), "alice", sqlstore.AuditCreate, k.ID, "acme", `{"allowance":{"after":"{id}"},"disabled":{"after":false},"expires_at":{"after":"2026-11-30T12:00:00Z"},"name":{"after":"ci"},"owner":{"after":"acme"},"per_day":{"after":1000},"per_minute":{"after":60},"products":{"after":["quote","pdf"]},"windows":{"after":[{"limit":1000,"per_seconds":3600}]}}`},
		{2, at(1), "bob", sqlstore.AuditUpdate, k.ID, "acme", `{"name":{"before":"ci","after":"ci2"},"per_minute":{"before":60,"after":5},"windows":{"before":[{"limit":1000,"per_seconds":3600}],"after":[]}}`},
		{3, at(2), "alice", sqlstore.AuditDisable, k.ID, "acme", `{"disabled":{"before":false,"after":true}}`},
		{4, at(3), "alice", sqlstore.AuditDisable, k.ID, "acme", `{}`},
		{5, at(4), "bob", sqlstore.AuditEnable, k.ID, "acme", `{"disabled":{"before":true,"after":false}}`},
		// A rotation announces two keys (versions 6 and 7): its row is 7.
		{7, at(5), "alice", sqlstore.AuditRotate, k.ID, "acme", `{"expires_at":{"before":"2026-11-30T12:00:00Z","after":"2026-11-28T13:05:00Z"},"rotated_to":{"after":"{new}"}}`},
		{8, at(6), "bob", sqlstore.AuditSetOwnerLimits, "", "acme", `{"per_day":{"after":100},"per_minute":{"after":0},"windows":{"after":[]}}`},
		{9, at(7), "bob", sqlstore.AuditSetOwnerLimits, "", "acme", `{"per_minute":{"before":0,"after":10},"windows":{"before":[],"after":[{"limit":500,"per_seconds":3600}]}}`},
		{10, at(8), "alice", sqlstore.AuditDeleteOwnerLimits, "", "acme", `{"per_day":{"before":100},"per_minute":{"before":10},"windows":{"before":[{"limit":500,"per_seconds":3600}]}}`},
		{11, at(9), "bob", sqlstore.AuditDelete, rotated.ID, "acme", `{"allowance":{"before":"{id}"},"disabled":{"before":false},"expires_at":{"before":"2026-11-30T12:00:00Z"},"name":{"before":"ci2"},"owner":{"before":"acme"},"per_day":{"before":1000},"per_minute":{"before":5},"products":{"before":["quote","pdf"]},"windows":{"before":[]}}`},
	}
	ids := strings.NewReplacer("{id}", k.ID, "{new}", rotated.ID)
	for i := range want {
		want[i].changes = ids.Replace(want[i].changes)
	}
	return []string{plain, newPlain}, []sqlstore.Key{k, rotated}, want
}

// checkEntries compares what Admin.Audit returned with want, in order.
func checkEntries(t *testing.T, what string, got []sqlstore.AuditEntry, want []auditWant) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		e, w := got[i], want[i]
		changes := e.Changes.String()
		if e.Seq != w.seq || !e.At.Equal(w.at) || e.Actor != w.actor || e.Action != w.action || e.KeyID != w.keyID || e.Owner != w.owner || changes != w.changes {
			t.Errorf("%s: row %d = %d %v %s %s %q %s %s\nwant %d %v %s %s %q %s %s", what, i,
				e.Seq, e.At.UTC(), e.Actor, e.Action, e.KeyID, e.Owner, changes, w.seq, w.at, w.actor, w.action, w.keyID, w.owner, w.changes)
		}
	}
}

// newestFirst returns want's rows that keep says to, newest first.
func newestFirst(want []auditWant, keep func(auditWant) bool) []auditWant {
	var out []auditWant
	for i := len(want) - 1; i >= 0; i-- {
		if keep(want[i]) {
			out = append(out, want[i])
		}
	}
	return out
}

// TestAuditRows: each change through the Admin API writes exactly one row,
// with the Admin's time, the actor its As named, the action, the key's ID
// (none for an owner's limits), the owner and each changed field before and
// after, stored as that JSON; Audit returns them newest first, filtered by
// key and time and bounded by its limit; no row holds a key, in full or
// without its prefix, or a key's hash.
func TestAuditRows(t *testing.T) {
	for _, kind := range dialects {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			db, clk, a := setup(t, kind)
			plains, keys, want := auditSteps(t, a, clk)

			all, err := a.Audit(ctx, sqlstore.AuditQuery{})
			if err != nil {
				t.Fatal(err)
			}
			checkEntries(t, "Audit()", all, newestFirst(want, func(auditWant) bool { return true }))

			rows, err := db.Query(`SELECT seq, at, actor, action, key_id, owner, changes FROM gatehouse_audit ORDER BY seq`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var n int
			for ; rows.Next(); n++ {
				var seq, at int64
				var actor, action, keyID, owner, changes string
				if err := rows.Scan(&seq, &at, &actor, &action, &keyID, &owner, &changes); err != nil {
					t.Fatal(err)
				}
				if n < len(want) {
					w := want[n]
					if seq != w.seq || at != w.at.UnixMilli() || actor != w.actor || action != string(w.action) || keyID != w.keyID || owner != w.owner || changes != w.changes {
						t.Errorf("stored row %d = %d %d %s %s %q %s %s\nwant %d %d %s %s %q %s %s", n, seq, at, actor, action, keyID, owner, changes,
							w.seq, w.at.UnixMilli(), w.actor, w.action, w.keyID, w.owner, w.changes)
					}
				}
				row := fmt.Sprint(seq, at, actor, action, keyID, owner, changes)
				for i, k := range keys {
					for _, secret := range []string{plains[i], plains[i][len("ila_"):], k.HashHex(), strings.ToUpper(k.HashHex())} {
						if strings.Contains(row, secret) {
							t.Errorf("stored row %d (%s) holds a key or its hash", n, action)
						}
					}
				}
			}
			if err := rows.Err(); err != nil || n != len(want) {
				t.Errorf("%d rows stored (%v), want %d", n, err, len(want))
			}

			byKey, err := a.Audit(ctx, sqlstore.AuditQuery{KeyID: keys[0].ID})
			if err != nil {
				t.Fatal(err)
			}
			checkEntries(t, "Audit(KeyID)", byKey, newestFirst(want, func(w auditWant) bool { return w.keyID == keys[0].ID }))
			since := t0.Add(5 * time.Minute)
			recent, err := a.Audit(ctx, sqlstore.AuditQuery{Since: since})
			if err != nil {
				t.Fatal(err)
			}
			checkEntries(t, "Audit(Since)", recent, newestFirst(want, func(w auditWant) bool { return !w.at.Before(since) }))
			both, err := a.Audit(ctx, sqlstore.AuditQuery{KeyID: keys[0].ID, Since: since})
			if err != nil {
				t.Fatal(err)
			}
			checkEntries(t, "Audit(KeyID, Since)", both, newestFirst(want, func(w auditWant) bool { return w.keyID == keys[0].ID && !w.at.Before(since) }))
			two, err := a.Audit(ctx, sqlstore.AuditQuery{Limit: 2})
			if err != nil {
				t.Fatal(err)
			}
			checkEntries(t, "Audit(Limit 2)", two, newestFirst(want, func(w auditWant) bool { return w.seq >= 10 }))
			for _, limit := range []int{-1, sqlstore.MaxAuditLimit + 1} {
				if _, err := a.Audit(ctx, sqlstore.AuditQuery{Limit: limit}); !errors.Is(err, sqlstore.ErrInvalid) ||
					err.Error() != fmt.Sprintf("sqlstore: invalid key: audit limit %d: want 0 to 10000", limit) {
					t.Errorf("Audit(Limit %d): %v, want ErrInvalid", limit, err)
				}
			}
		})
	}
}

// TestAuditDefaultLimit: Audit without a limit returns the newest
// DefaultAuditLimit rows, and with MaxAuditLimit all of them when there are
// fewer.
func TestAuditDefaultLimit(t *testing.T) {
	ctx := context.Background()
	_, _, a := setup(t, "sqlite")
	_, k, err := a.Create(ctx, spec("acme", 1))
	if err != nil {
		t.Fatal(err)
	}
	for range sqlstore.DefaultAuditLimit + 4 {
		if err := a.Disable(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
	}
	got, err := a.Audit(ctx, sqlstore.AuditQuery{})
	if err != nil || len(got) != sqlstore.DefaultAuditLimit || got[0].Seq != sqlstore.DefaultAuditLimit+5 || got[len(got)-1].Seq != 6 {
		t.Errorf("Audit(): %d rows (%v), want %d: versions %d down to 6", len(got), err, sqlstore.DefaultAuditLimit, sqlstore.DefaultAuditLimit+5)
	}
	if got, err := a.Audit(ctx, sqlstore.AuditQuery{Limit: sqlstore.MaxAuditLimit}); err != nil || len(got) != sqlstore.DefaultAuditLimit+5 {
		t.Errorf("Audit(Limit max): %d rows (%v), want all %d", len(got), err, sqlstore.DefaultAuditLimit+5)
	}
}

// auditCount is the number of rows in gatehouse_audit.
func auditCount(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM gatehouse_audit`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAuditNoRowForFailedChange: a change that fails writes no audit row and
// changes nothing: an unknown ID or owner, an invalid spec, update, overlap
// or owner's limits, the rotation of a disabled key, no actor or an invalid
// one, and a database error inside the transaction, before the audit row
// (its insert fails) or after it (the pruning of old changes fails).
func TestAuditNoRowForFailedChange(t *testing.T) {
	for _, kind := range dialects {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			db, clk, a := setup(t, kind)
			_, k, err := a.Create(ctx, spec("acme", 1))
			if err != nil {
				t.Fatal(err)
			}
			_, off, err := a.Create(ctx, spec("acme", 2))
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Disable(ctx, off.ID); err != nil {
				t.Fatal(err)
			}
			const rows = 3
			if n := auditCount(t, db); n != rows {
				t.Fatalf("%d rows after three changes, want %d", n, rows)
			}
			raw, err := sqlstore.NewAdmin(db, sqlstore.AdminConfig{Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			bad, name, negative := "ci\x1b", "x", -1
			for _, c := range []struct {
				name string
				err  error
				want error
			}{
				{"update unknown", func() error {
					_, err := a.Update(ctx, "key_0000000000000000", sqlstore.Update{Name: &name})
					return err
				}(), sqlstore.ErrNotFound},
				{"disable unknown", a.Disable(ctx, "key_0000000000000000"), sqlstore.ErrNotFound},
				{"enable unknown", a.Enable(ctx, "key_0000000000000000"), sqlstore.ErrNotFound},
				{"delete unknown", a.Delete(ctx, "key_0000000000000000"), sqlstore.ErrNotFound},
				{"rotate unknown", func() error { _, _, err := a.Rotate(ctx, "key_0000000000000000", 0); return err }(), sqlstore.ErrNotFound},
				{"delete owner limits unknown", a.DeleteOwnerLimits(ctx, "nobody"), sqlstore.ErrNotFound},
				{"create invalid", func() error { _, _, err := a.Create(ctx, sqlstore.Spec{Owner: "acme"}); return err }(), sqlstore.ErrInvalid},
				{"update invalid name", func() error { _, err := a.Update(ctx, k.ID, sqlstore.Update{Name: &bad}); return err }(), sqlstore.ErrInvalid},
				{"update negative limit", func() error { _, err := a.Update(ctx, k.ID, sqlstore.Update{PerDay: &negative}); return err }(), sqlstore.ErrInvalid},
				{"rotate negative overlap", func() error { _, _, err := a.Rotate(ctx, k.ID, -time.Second); return err }(), sqlstore.ErrInvalid},
				{"rotate disabled", func() error { _, _, err := a.Rotate(ctx, off.ID, 0); return err }(), sqlstore.ErrInvalid},
				{"set owner limits invalid", a.SetOwnerLimits(ctx, sqlstore.OwnerLimits{Owner: "acme"}), sqlstore.ErrInvalid},
				{"no actor", raw.Disable(ctx, k.ID), sqlstore.ErrNoActor},
				{"empty actor", func() error { _, _, err := raw.As("").Create(ctx, spec("acme", 3)); return err }(), sqlstore.ErrNoActor},
				{"blank actor", raw.As(" ").Disable(ctx, k.ID), sqlstore.ErrInvalid},
				{"actor with ESC", raw.As("eve\x1b[2J").SetOwnerLimits(ctx, sqlstore.OwnerLimits{Owner: "acme", PerDay: 1}), sqlstore.ErrInvalid},
			} {
				if !errors.Is(c.err, c.want) {
					t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
				}
			}
			if n := auditCount(t, db); n != rows {
				t.Errorf("%d rows after failed changes, want %d", n, rows)
			}
			if got, err := a.Get(ctx, k.ID); err != nil || got.Disabled || got.Name != "key 1" || got.PerDay != 1000 {
				t.Errorf("after failed changes the key is %+v (%v), want it unchanged", got, err)
			}
			if keys, _ := a.List(ctx, ""); len(keys) != 2 {
				t.Errorf("%d keys after failed changes, want 2", len(keys))
			}
			if owners, _ := a.ListOwnerLimits(ctx); len(owners) != 0 {
				t.Errorf("%d owners' limits after failed changes, want none", len(owners))
			}

			// The audit row's insert fails: the change is not made.
			failOn(t, db, kind, "gatehouse_audit", "INSERT")
			if err := a.Disable(ctx, k.ID); err == nil || !strings.Contains(err.Error(), "injected failure") {
				t.Errorf("disable with the audit insert failing: %v, want the injected failure", err)
			}
			dropFail(t, db, kind, "gatehouse_audit")
			// The change's old changes are pruned after its audit row is
			// written: a failure there rolls the row back with the change.
			clk.Advance(2 * time.Hour)
			failOn(t, db, kind, "gatehouse_changes", "DELETE")
			if err := a.Disable(ctx, k.ID); err == nil || !strings.Contains(err.Error(), "injected failure") {
				t.Errorf("disable with the pruning failing: %v, want the injected failure", err)
			}
			if n := auditCount(t, db); n != rows {
				t.Errorf("%d rows after changes that failed inside their transaction, want %d", n, rows)
			}
			if got, err := a.Get(ctx, k.ID); err != nil || got.Disabled {
				t.Errorf("after the failed disables the key is %+v (%v), want it enabled", got, err)
			}
			dropFail(t, db, kind, "gatehouse_changes")
			if err := a.Disable(ctx, k.ID); err != nil || auditCount(t, db) != rows+1 {
				t.Errorf("disable once the failure is gone: %v, %d rows; want one more row", err, auditCount(t, db))
			}
		})
	}
}

// failOn makes every event (INSERT or DELETE) of a row of table fail with the
// error "injected failure", by a trigger, until dropFail.
func failOn(t *testing.T, db *sql.DB, kind, table, event string) {
	t.Helper()
	var stmts []string
	if kind == "postgres" {
		stmts = []string{
			`CREATE OR REPLACE FUNCTION injected_failure() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$`,
			`CREATE TRIGGER fail_` + table + ` BEFORE ` + event + ` ON ` + table + ` FOR EACH ROW EXECUTE FUNCTION injected_failure()`,
		}
	} else {
		stmts = []string{`CREATE TRIGGER fail_` + table + ` BEFORE ` + event + ` ON ` + table + ` BEGIN SELECT RAISE(ABORT, 'injected failure'); END`}
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
}

// dropFail removes failOn's trigger on table.
func dropFail(t *testing.T, db *sql.DB, kind, table string) {
	t.Helper()
	s := `DROP TRIGGER fail_` + table
	if kind == "postgres" {
		s += ` ON ` + table
	}
	if _, err := db.Exec(s); err != nil {
		t.Fatal(err)
	}
}

// TestAuditActor: As names the actor of each change, per call, without
// changing the Admin it was called on; reads need no actor.
func TestAuditActor(t *testing.T) {
	ctx := context.Background()
	db, clk, _ := setup(t, "sqlite")
	a, err := sqlstore.NewAdmin(db, sqlstore.AdminConfig{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, k, err := a.As("alice").Create(ctx, spec("acme", 1))
	if err != nil {
		t.Fatal(err)
	}
	carol := a.As("carol")
	if err := carol.As("Zoë Ünal").Disable(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if err := carol.Enable(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, k.ID); !errors.Is(err, sqlstore.ErrNoActor) || err.Error() != "sqlstore: delete "+k.ID+": "+sqlstore.ErrNoActor.Error() {
		t.Errorf("Delete without an actor: %v, want ErrNoActor", err)
	}
	got, err := a.Audit(ctx, sqlstore.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var actors []string
	for _, e := range got {
		actors = append(actors, string(e.Action)+" "+e.Actor)
	}
	if strings.Join(actors, ", ") != "enable carol, disable Zoë Ünal, create alice" {
		t.Errorf("actors newest first: %q", actors)
	}
}

// TestAuditChangesText: AuditChanges.String is the changes column's text,
// HTML characters unescaped (a name "R&D <ops>" stays so), and Audit reads
// the column back to the same text.
func TestAuditChangesText(t *testing.T) {
	ctx := context.Background()
	db, _, a := setup(t, "sqlite")
	s := spec("acme", 1)
	s.Name = "R&D <ops>"
	_, k, err := a.Create(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	name := "Zürich"
	if _, err := a.Update(ctx, k.ID, sqlstore.Update{Name: &name}); err != nil {
		t.Fatal(err)
	}
	got, err := a.Audit(ctx, sqlstore.AuditQuery{Limit: 1})
	if err != nil || len(got) != 1 {
		t.Fatalf("Audit: %d rows, %v", len(got), err)
	}
	var stored string
	if err := db.QueryRow(`SELECT changes FROM gatehouse_audit WHERE seq = 2`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if want := `{"name":{"before":"R&D <ops>","after":"Zürich"}}`; got[0].Changes.String() != want || stored != want || string(got[0].Changes["name"].Before) != `"R&D <ops>"` {
		t.Errorf("changes %s, stored %s; want %s", got[0].Changes, stored, want)
	}
}

// TestAuditConcurrentChanges: changes to one key made at once by several
// Admins each record what the change before them left: in the order of their
// numbers, each row's per_day before is the previous row's after, and the
// last row's after is the key's; on SQLite and PostgreSQL.
func TestAuditConcurrentChanges(t *testing.T) {
	for _, kind := range dialects {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			db, clk, a := setup(t, kind)
			_, k, err := a.Create(ctx, spec("acme", 1))
			if err != nil {
				t.Fatal(err)
			}
			const writers, each = 4, 5
			errs := make(chan error, writers*each)
			var wg sync.WaitGroup
			for w := range writers {
				admin := newAdmin(t, db, clk.Now).As(fmt.Sprint("writer", w))
				wg.Go(func() {
					for i := range each {
						perDay := 2000 + w*each + i // a value of its own: every change changes it
						_, err := admin.Update(ctx, k.ID, sqlstore.Update{PerDay: &perDay})
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			rows, err := a.Audit(ctx, sqlstore.AuditQuery{KeyID: k.ID})
			if err != nil || len(rows) != 1+writers*each {
				t.Fatalf("%d rows (%v), want %d", len(rows), err, 1+writers*each)
			}
			got, err := a.Get(ctx, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			after := fmt.Sprint(got.PerDay)
			for _, e := range rows[:writers*each] { // newest first; the last is the create
				c := e.Changes["per_day"]
				if string(c.After) != after {
					t.Errorf("row %d (%s): per_day after %s, want %s: the next change's before", e.Seq, e.Actor, c.After, after)
				}
				after = string(c.Before)
			}
			if after != "1000" {
				t.Errorf("the first update's per_day before is %s, want the created key's 1000", after)
			}
		})
	}
}
