package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
)

// auditTime is how keys audit prints a row's time: UTC, to the millisecond
// the audit trail keeps, in a fixed width.
const auditTime = "2006-01-02T15:04:05.000Z07:00"

// keysAudit defines the flags of keys audit and returns what runs it: the
// rows of the audit trail (sqlstore.Admin.Audit) of the key pos[0], or of
// every key and owner, newest first (see printAudit).
func keysAudit(fs *flag.FlagSet) keysRun {
	since := fs.String("since", "", "only the changes at or after T: RFC 3339 (2026-11-28T12:00:00Z), or a duration back from now (24h)")
	limit := fs.Int("limit", sqlstore.DefaultAuditLimit, fmt.Sprintf("the most rows printed, the newest (1 to %d)", sqlstore.MaxAuditLimit))
	return func(ctx context.Context, admin *sqlstore.Admin, pos []string, stdout io.Writer) error {
		if *limit < 1 || *limit > sqlstore.MaxAuditLimit {
			return fmt.Errorf("keys audit: -limit %d: want 1 to %d", *limit, sqlstore.MaxAuditLimit)
		}
		q := sqlstore.AuditQuery{Limit: *limit}
		if len(pos) > 0 {
			q.KeyID = pos[0]
		}
		if *since != "" {
			var err error
			if q.Since, err = parseSince(*since, time.Now()); err != nil {
				return fmt.Errorf("keys audit: -since: %w", err)
			}
		}
		entries, err := admin.Audit(ctx, q)
		if err != nil {
			return err
		}
		return printAudit(stdout, entries)
	}
}

// parseSince reads -since: an RFC 3339 time, or a positive duration back
// from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, errors.New("want an RFC 3339 time (2026-11-28T12:00:00Z) or a positive duration (24h), got " + printable(s))
	}
	return now.Add(-d), nil
}

// printAudit prints entries as a table, a header then one line per row in
// their order: TIME (UTC, to the millisecond), ACTOR, ACTION, KEY (- for a
// change to an owner's limits), OWNER and CHANGES (the changed fields as
// JSON, {"per_minute":{"before":60,"after":5}}). Stored text is printed as
// printable makes it.
func printAudit(w io.Writer, entries []sqlstore.AuditEntry) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tKEY\tOWNER\tCHANGES")
	for _, e := range entries {
		key := e.KeyID
		if key == "" {
			key = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.At.UTC().Format(auditTime), printable(e.Actor), printable(string(e.Action)),
			printable(key), printable(e.Owner), printable(e.Changes.String()))
	}
	return tw.Flush()
}
