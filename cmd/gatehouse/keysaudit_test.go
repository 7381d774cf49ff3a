package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
)

// auditAdmin opens the key database at url (migrated) and returns its Admin
// on the clock now.
func auditAdmin(t *testing.T, url string, now func() time.Time) *sqlstore.Admin {
	t.Helper()
	db, err := openDB(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, err := sqlstore.NewAdmin(db, sqlstore.AdminConfig{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestKeysAudit: keys audit prints the audit trail newest first, as a table:
// a header, then a line per row with the time (UTC, to the millisecond),
// actor, action, key (- for an owner's limits), owner and changes as JSON;
// an ID keeps that key's rows, -since those at or after a time or within a
// duration back from now, -limit the newest N; a bad -since or -limit is an
// error.
func TestKeysAudit(t *testing.T) {
	ctx := context.Background()
	url := "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	// Long past, so that -since 1h keeps none of the rows, whatever the
	// machine's clock.
	t0 := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	now := t0
	a := auditAdmin(t, url, func() time.Time { return now })
	_, k, err := a.As("alice").Create(ctx, sqlstore.Spec{Name: "ci", Owner: "acme", Products: []string{"quote"}, PerMinute: 5, PerDay: 50})
	if err != nil {
		t.Fatal(err)
	}
	for i, change := range []func() error{
		func() error { return a.As("bob").Disable(ctx, k.ID) },
		func() error { return a.As("Zoë").SetOwnerLimits(ctx, sqlstore.OwnerLimits{Owner: "acme", PerDay: 3}) },
		func() error { return a.As("bob").Enable(ctx, k.ID) },
	} {
		now = t0.Add(time.Duration(i+1)*time.Minute + 250*time.Millisecond)
		if err := change(); err != nil {
			t.Fatal(err)
		}
	}
	// KEY_ONE stands for the key's ID, of the same width.
	ids := strings.NewReplacer("KEY_ONE_____________", k.ID)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{}, `
TIME                      ACTOR  ACTION            KEY                   OWNER  CHANGES
2020-01-02T03:07:05.250Z  bob    enable            KEY_ONE_____________  acme   {"disabled":{"before":true,"after":false}}
2020-01-02T03:06:05.250Z  Zoë    set-owner-limits  -                     acme   {"per_day":{"after":3},"per_minute":{"after":0},"windows":{"after":[]}}
2020-01-02T03:05:05.250Z  bob    disable           KEY_ONE_____________  acme   {"disabled":{"before":false,"after":true}}
2020-01-02T03:04:05.000Z  alice  create            KEY_ONE_____________  acme   {"allowance":{"after":"KEY_ONE_____________"},"disabled":{"after":false},"expires_at":{"after":null},"name":{"after":"ci"},"owner":{"after":"acme"},"per_day":{"after":50},"per_minute":{"after":5},"products":{"after":["quote"]},"windows":{"after":[]}}
`},
		{[]string{k.ID, "-since", "2020-01-02T03:05:00Z"}, `
TIME                      ACTOR  ACTION   KEY                   OWNER  CHANGES
2020-01-02T03:07:05.250Z  bob    enable   KEY_ONE_____________  acme   {"disabled":{"before":true,"after":false}}
2020-01-02T03:05:05.250Z  bob    disable  KEY_ONE_____________  acme   {"disabled":{"before":false,"after":true}}
`},
		{[]string{"-limit", "1", k.ID}, `
TIME                      ACTOR  ACTION  KEY                   OWNER  CHANGES
2020-01-02T03:07:05.250Z  bob    enable  KEY_ONE_____________  acme   {"disabled":{"before":true,"after":false}}
`},
		{[]string{"-since", "2020-01-02T03:06:05.250Z"}, `
TIME                      ACTOR  ACTION            KEY                   OWNER  CHANGES
2020-01-02T03:07:05.250Z  bob    enable            KEY_ONE_____________  acme   {"disabled":{"before":true,"after":false}}
2020-01-02T03:06:05.250Z  Zoë    set-owner-limits  -                     acme   {"per_day":{"after":3},"per_minute":{"after":0},"windows":{"after":[]}}
`},
		{[]string{"-since", "1h"}, `
TIME  ACTOR  ACTION  KEY  OWNER  CHANGES
`},
		{[]string{"key_0000000000000000"}, `
TIME  ACTOR  ACTION  KEY  OWNER  CHANGES
`},
	} {
		args := append([]string{"audit", "-db", url}, c.args...)
		if got, want := keysCLI(t, args...), ids.Replace(strings.TrimPrefix(c.want, "\n")); got != want {
			t.Errorf("keys %q printed\n%s\nwant\n%s", args, got, want)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-since", "yesterday"}, "keys audit: -since: want an RFC 3339 time (2026-11-28T12:00:00Z) or a positive duration (24h), got yesterday"},
		{[]string{"-since", "-1h"}, "keys audit: -since: want an RFC 3339 time (2026-11-28T12:00:00Z) or a positive duration (24h), got -1h"},
		{[]string{"-limit", "0"}, "keys audit: -limit 0: want 1 to 10000"},
		{[]string{"-limit", "10001"}, "keys audit: -limit 10001: want 1 to 10000"},
	} {
		var out, errOut bytes.Buffer
		err := run(ctx, append([]string{"keys", "audit", "-db", url}, c.args...), &out, &errOut, nil, nil)
		if err == nil || err.Error() != c.want || out.Len() != 0 {
			t.Errorf("keys audit %q: error %v, printed %q; want the error %s", c.args, err, out.String(), c.want)
		}
	}
}

// TestKeysAuditActor: every keys command that changes something writes one
// audit row under -actor, or the OS user without it (os/user.Current's
// Username); a command that changes nothing (owner-limits showing an
// allowance) writes none; keys audit prints no key and no hash; on SQLite and
// PostgreSQL.
func TestKeysAuditActor(t *testing.T) {
	osUser, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			url := dbURLs(t)[kind]()
			plain, id := parseNewKey(t, keysCLI(t, "create", "-db", url, "-actor", "dave", "-name", "ci", "-owner", "acme", "-products", "quote", "-per-minute", "5", "-per-day", "50"))
			keysCLI(t, "update", "-db", url, id, "-per-day", "70", "-actor", "dave")
			keysCLI(t, "disable", "-db", url, "-actor", "dave", id)
			keysCLI(t, "enable", "-db", url, id, "-actor", "dave")
			newPlain, newID := parseNewKey(t, keysCLI(t, "rotate", "-db", url, id, "-overlap", "1h", "-actor", "dave"))
			keysCLI(t, "owner-limits", "-db", url, "acme", "-per-day", "9", "-actor", "dave")
			keysCLI(t, "owner-limits", "-db", url, "acme", "-actor", "dave") // shows: no change, no row
			keysCLI(t, "owner-limits", "-db", url, "acme", "-delete", "-actor", "dave")
			keysCLI(t, "delete", "-db", url, newID, "-actor", "dave")
			keysCLI(t, "disable", "-db", url, id) // as the OS user

			entries, err := auditAdmin(t, url, nil).Audit(context.Background(), sqlstore.AuditQuery{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range entries {
				got = append(got, e.Actor+" "+string(e.Action)+" "+e.KeyID+" "+e.Owner)
			}
			want := []string{
				osUser.Username + " disable " + id + " acme",
				"dave delete " + newID + " acme",
				"dave delete-owner-limits  acme",
				"dave set-owner-limits  acme",
				"dave rotate " + id + " acme",
				"dave enable " + id + " acme",
				"dave disable " + id + " acme",
				"dave update " + id + " acme",
				"dave create " + id + " acme",
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("audit rows, newest first:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if len(entries) == len(want) {
				if c := entries[7].Changes.String(); c != `{"per_day":{"before":50,"after":70}}` {
					t.Errorf("update's changes: %s", c)
				}
				if c := entries[4].Changes.String(); !strings.HasPrefix(c, `{"expires_at":{"before":null,"after":"`) || !strings.HasSuffix(c, `"},"rotated_to":{"after":"`+newID+`"}}`) {
					t.Errorf("rotate's changes: %s", c)
				}
			}
			out := keysCLI(t, "audit", "-db", url, "-since", "1h")
			if n := strings.Count(out, "\n"); n != 1+len(want) {
				t.Errorf("keys audit -since 1h printed %d lines, want a header and %d rows:\n%s", n, len(want), out)
			}
			for _, p := range []string{plain, newPlain} {
				hash := auth.HashKey(p)
				for _, secret := range []string{p, p[len("ila_"):], hex.EncodeToString(hash[:])} {
					if strings.Contains(out, secret) {
						t.Errorf("keys audit printed a key or its hash:\n%s", out)
					}
				}
			}
		})
	}
}
