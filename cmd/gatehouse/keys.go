package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
)

const keysUsage = `usage: gatehouse keys COMMAND -db URL [flags] [ID]

URL is sqlite:PATH or postgres://user@host:port/db. Commands:
  migrate                     create or update the schema (every command does it too)
  create -name NAME -owner OWNER -products a,b -per-minute N -per-day N [-windows 1h=1000,...] [-expires RFC3339]
                              print the new key (shown once) on the first line, then "id: ID"
  list [-owner OWNER]         every key, or the owner's
  show ID
  update ID [-name NAME] [-products a,b] [-per-minute N] [-per-day N] [-windows 1h=1000,...|none]
            [-expires RFC3339|never]
  disable ID | enable ID | delete ID
  owner-limits [OWNER] [-per-minute N] [-per-day N] [-windows 1h=1000,...] [-delete]
                              the allowance all of OWNER's keys share: with a limit flag, set
                              it (replacing it); with -delete, remove it; else show it; with
                              no OWNER, list every owner's
  rotate ID -overlap DURATION print the new key on the first line, then "id: ID"; the old key
                              keeps working for DURATION, and both share one rate limit
`

// keysCommand runs "gatehouse keys COMMAND …": the key lifecycle of a database
// (see keysUsage), through the sqlstore package's Admin.
func keysCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, keysUsage)
		return errors.New("keys: a command is required")
	}
	cmd := args[0]
	fs := flag.NewFlagSet("keys "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, keysUsage) }
	dbURL := fs.String("db", "", "database URL: sqlite:PATH or postgres://…")
	name := fs.String("name", "", "the key's name")
	owner := fs.String("owner", "", "the key's owner (create), or the owner whose keys to list")
	products := fs.String("products", "", "comma-separated product slugs, or *")
	perMinute := fs.Int("per-minute", 0, "requests per minute (0: the gateway's default)")
	perDay := fs.Int("per-day", 0, "requests per day (0: the gateway's default)")
	expires := fs.String("expires", "", "expiry, RFC 3339 (update: or never)")
	windows := fs.String("windows", "", "further windows, PERIOD=LIMIT comma-separated: 1h=1000,720h=100000 (update: none removes them)")
	overlap := fs.Duration("overlap", 0, "rotate: how long the old key keeps working")
	del := fs.Bool("delete", false, "owner-limits: remove the owner's allowance")
	// Flags may come before or after the ID: parse, take one positional
	// argument, parse the rest.
	var pos []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	wantID := map[string]bool{"show": true, "update": true, "disable": true, "enable": true, "delete": true, "rotate": true}
	switch {
	case !wantID[cmd] && cmd != "migrate" && cmd != "create" && cmd != "list" && cmd != "owner-limits":
		fmt.Fprint(stderr, keysUsage)
		return fmt.Errorf("keys: unknown command %q", cmd)
	case *dbURL == "":
		return errors.New("keys: -db URL is required")
	case wantID[cmd] && len(pos) != 1:
		return fmt.Errorf("keys %s: exactly one key ID is required", cmd)
	case cmd == "owner-limits" && len(pos) > 1:
		return errors.New("keys owner-limits: at most one owner")
	case !wantID[cmd] && cmd != "owner-limits" && len(pos) > 0:
		return fmt.Errorf("keys %s: unexpected arguments: %s", cmd, strings.Join(pos, " "))
	}

	db, err := sqlstore.Open(*dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := sqlstore.Migrate(ctx, db); err != nil {
		return err
	}
	admin, err := sqlstore.NewAdmin(db, sqlstore.AdminConfig{})
	if err != nil {
		return err
	}
	ws, err := parseWindows(*windows)
	if err != nil {
		return fmt.Errorf("keys %s: -windows: %w", cmd, err)
	}
	var id string
	if len(pos) == 1 {
		id = pos[0]
	}
	switch cmd {
	case "migrate":
		fmt.Fprintln(stdout, "schema up to date")
		return nil
	case "create":
		spec := sqlstore.Spec{Name: *name, Owner: *owner, Products: splitProducts(*products), PerMinute: *perMinute, PerDay: *perDay, Windows: authWindows(ws)}
		if *expires != "" {
			if spec.ExpiresAt, err = time.Parse(time.RFC3339, *expires); err != nil {
				return fmt.Errorf("keys create: -expires: %w", err)
			}
		}
		plaintext, k, err := admin.Create(ctx, spec)
		if err != nil {
			return err
		}
		printNewKey(stdout, plaintext, k)
		return nil
	case "list":
		keys, err := admin.List(ctx, *owner)
		if err != nil {
			return err
		}
		printKeys(stdout, keys)
		return nil
	case "show":
		k, err := admin.Get(ctx, id)
		if err != nil {
			return err
		}
		printKey(stdout, k)
		return nil
	case "update":
		var u sqlstore.Update
		if set["name"] {
			u.Name = name
		}
		if set["products"] {
			u.Products = splitProducts(*products)
		}
		if set["per-minute"] {
			u.PerMinute = perMinute
		}
		if set["per-day"] {
			u.PerDay = perDay
		}
		if set["windows"] {
			u.Windows = make([]auth.Window, 0, len(ws)) // empty, not nil: "none" removes them
			u.Windows = append(u.Windows, authWindows(ws)...)
		}
		if set["expires"] {
			var t time.Time
			if *expires != "never" {
				if t, err = time.Parse(time.RFC3339, *expires); err != nil {
					return fmt.Errorf("keys update: -expires: %w", err)
				}
			}
			u.ExpiresAt = &t
		}
		k, err := admin.Update(ctx, id, u)
		if err != nil {
			return err
		}
		printKey(stdout, k)
		return nil
	case "disable", "enable", "delete":
		op := map[string]func(context.Context, string) error{"disable": admin.Disable, "enable": admin.Enable, "delete": admin.Delete}[cmd]
		if err := op(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%sd %s\n", cmd, id) // disabled, enabled, deleted
		return nil
	case "owner-limits":
		return ownerLimitsCommand(ctx, admin, pos, set, ownerLimits{*perMinute, *perDay, ws}, *del, stdout)
	case "rotate":
		if !set["overlap"] {
			return errors.New("keys rotate: -overlap DURATION is required (0s ends the old key now)")
		}
		plaintext, k, err := admin.Rotate(ctx, id, *overlap)
		if err != nil {
			return err
		}
		printNewKey(stdout, plaintext, k)
		return nil
	}
	return nil
}

// ownerLimits are the limit flags of keys owner-limits.
type ownerLimits struct {
	perMinute, perDay int
	windows           []windowConfig
}

// ownerLimitsCommand runs keys owner-limits: list (no owner), show, set
// (a limit flag given) or delete the allowance of pos[0].
func ownerLimitsCommand(ctx context.Context, admin *sqlstore.Admin, pos []string, set map[string]bool, l ownerLimits, del bool, stdout io.Writer) error {
	if len(pos) == 0 {
		if del || set["per-minute"] || set["per-day"] || set["windows"] {
			return errors.New("keys owner-limits: an owner is required to set or delete an allowance")
		}
		all, err := admin.ListOwnerLimits(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "OWNER\tPER-MINUTE\tPER-DAY\tWINDOWS")
		for _, o := range all {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", printable(o.Owner), o.PerMinute, o.PerDay, formatWindows(o.Windows))
		}
		return tw.Flush()
	}
	owner := pos[0]
	switch {
	case del:
		if err := admin.DeleteOwnerLimits(ctx, owner); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted the allowance of %s\n", printable(owner))
		return nil
	case set["per-minute"] || set["per-day"] || set["windows"]:
		o := sqlstore.OwnerLimits{Owner: owner, PerMinute: l.perMinute, PerDay: l.perDay, Windows: authWindows(l.windows)}
		if err := admin.SetOwnerLimits(ctx, o); err != nil {
			return err
		}
	}
	o, err := admin.OwnerLimits(ctx, owner)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "owner: %s\nper-minute: %d\nper-day: %d\nwindows: %s\n", printable(o.Owner), o.PerMinute, o.PerDay, formatWindows(o.Windows))
	return nil
}

// splitProducts is the products of a -products flag: comma-separated slugs,
// spaces and empty items dropped.
func splitProducts(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// printNewKey prints a key just made (created or rotated): its plaintext,
// shown this once, and its id.
func printNewKey(w io.Writer, plaintext string, k sqlstore.Key) {
	fmt.Fprintf(w, "%s\nid: %s\n", plaintext, k.ID)
}

// status is a key's state for people: active, disabled or expired.
func status(k sqlstore.Key) string {
	switch k.Err(time.Now()) {
	case auth.ErrKeyDisabled:
		return "disabled"
	case auth.ErrKeyExpired:
		return "expired"
	}
	return "active"
}

func orNever(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

// printable is s as the terminal may show it: s itself when every character
// of it is printable (or a space), else s quoted as a Go string literal
// ("ci\x1b[2J"), whose escapes leave no control character, invalid UTF-8 or
// invisible format character (a bidirectional override) for the terminal to
// act on. The Admin API refuses control characters in names and owners; this
// covers what was stored otherwise.
func printable(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) {
		return s
	}
	return strconv.Quote(s)
}

// printKey prints k's record, one "field: value" line each, never the key.
func printKey(w io.Writer, k sqlstore.Key) {
	fmt.Fprintf(w, "id: %s\nowner: %s\nname: %s\nproducts: %s\nper-minute: %d\nper-day: %d\nwindows: %s\nstatus: %s\nexpires: %s\nallowance: %s\ncreated: %s\nlast-used: %s\nrequests: %d\n",
		printable(k.ID), printable(k.Owner), printable(k.Name), printable(strings.Join(k.Products, ",")), k.PerMinute, k.PerDay, formatWindows(k.Windows), status(k), orNever(k.ExpiresAt),
		printable(k.Allowance), orNever(k.CreatedAt), orNever(k.LastUsedAt), k.Requests)
}

// formatWindows writes a key's windows as the -windows flag reads them, or
// "none".
func formatWindows(ws []auth.Window) string {
	if len(ws) == 0 {
		return "none"
	}
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.Per.String() + "=" + strconv.Itoa(w.Limit)
	}
	return strings.Join(parts, ",")
}

func printKeys(w io.Writer, keys []sqlstore.Key) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tOWNER\tNAME\tPRODUCTS\tPER-MINUTE\tPER-DAY\tSTATUS\tEXPIRES\tLAST-USED\tREQUESTS")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%d\n", printable(k.ID), printable(k.Owner), printable(k.Name), printable(strings.Join(k.Products, ",")),
			k.PerMinute, k.PerDay, status(k), orNever(k.ExpiresAt), orNever(k.LastUsedAt), k.Requests)
	}
	tw.Flush()
}

// dbKeys opens the key database at url for the gateway: migrated, with its
// cache, change poll and counts of use (see sqlstore.Store; the gateway wraps
// its product handler in the store's CountUse), and its Admin, which lists
// the keys for the admin page.
func dbKeys(ctx context.Context, url string, logger *slog.Logger) (*sqlstore.Store, *sqlstore.Admin, func(), error) {
	db, err := sqlstore.Open(url)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("-db: %w", err)
	}
	if err := sqlstore.Migrate(ctx, db); err != nil {
		db.Close()
		return nil, nil, nil, fmt.Errorf("-db: %w", err)
	}
	s, err := sqlstore.New(db, sqlstore.Config{Logger: logger})
	if err != nil {
		db.Close()
		return nil, nil, nil, fmt.Errorf("-db: %w", err)
	}
	admin, err := sqlstore.NewAdmin(db, sqlstore.AdminConfig{})
	if err != nil {
		s.Close()
		db.Close()
		return nil, nil, nil, fmt.Errorf("-db: %w", err)
	}
	logger.Info("keys and owners' allowances served from the database; the configuration's keys and owners are ignored")
	return s, admin, func() { s.Close(); db.Close() }, nil
}
