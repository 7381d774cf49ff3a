package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
	"github.com/gatehouse-go/gatehouse/internal/cli"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// keysUsageHead starts the usage of gatehouse keys; writeKeysUsage follows it
// with every command's synopsis.
const keysUsageHead = `usage: gatehouse keys COMMAND -db URL [flags] [ID]

URL is sqlite:PATH or postgres://user@host:port/db; every command creates or
updates the schema first. A command takes only its own flags, before or after
its ID or OWNER: gatehouse keys COMMAND -h lists them. Commands:
`

// keysSub is one keys command: what its usage shows, and its flags.
type keysSub struct {
	name string
	// args is its positional argument: "" (none), "ID" (a key's ID,
	// required) or "[OWNER]" (an owner, or none).
	args string
	// flags is the synopsis of its flags besides -db URL.
	flags string
	// about says what it does and prints, in lines of at most 70 characters.
	about string
	// define defines its flags besides -db on fs and returns what runs the
	// command once fs has parsed them.
	define func(fs *flag.FlagSet) keysRun
	// changes says that it changes keys or owners' limits: it also takes
	// -actor, whom the audit trail records as making its changes.
	changes bool
}

// keysRun runs a keys command on the key database's admin; pos holds its
// positional argument, if any.
type keysRun func(ctx context.Context, admin *sqlstore.Admin, pos []string, stdout io.Writer) error

// keysSubs returns the keys commands in the order the usage lists them.
func keysSubs() []keysSub {
	return []keysSub{
		{name: "migrate", about: `create or update the schema; print "schema up to date"`, define: keysMigrate},
		{name: "create", flags: "-owner OWNER -products a,b [-name NAME] [-per-minute N] [-per-day N] [-windows 1h=1000,...] [-expires RFC3339]",
			about: `create a key; print it (shown once) on the first line, then "id: ID"`, define: keysCreate, changes: true},
		{name: "list", flags: "[-owner OWNER]", about: "print every key, or the owner's, one line each (never the key)", define: keysList},
		{name: "show", args: "ID", about: "print the key's record, one field a line (never the key)", define: keysShow},
		{name: "update", args: "ID", flags: "[-name NAME] [-products a,b] [-per-minute N] [-per-day N] [-windows 1h=1000,...|none] [-expires RFC3339|never]",
			about: "change the fields whose flag is given, then print the key's record", define: keysUpdate, changes: true},
		keysSwitch("disable", "the key stops working until enabled; print \"disabled ID\"", (*sqlstore.Admin).Disable),
		keysSwitch("enable", "a disabled key works again; print \"enabled ID\"", (*sqlstore.Admin).Enable),
		keysSwitch("delete", "remove the key for good; print \"deleted ID\"", (*sqlstore.Admin).Delete),
		{name: "owner-limits", args: "[OWNER]", flags: "[-per-minute N] [-per-day N] [-windows 1h=1000,...] [-delete]",
			about: "the allowance all of OWNER's keys share: with a limit flag, set it\n" +
				"(replacing it); with -delete, remove it; else show it; with no OWNER,\n" +
				"list every owner's", define: keysOwnerLimits, changes: true},
		{name: "rotate", args: "ID", flags: "-overlap DURATION",
			about: `print a new key on the first line, then "id: ID"; the old key keeps` + "\n" +
				"working for DURATION, and both share one rate limit", define: keysRotate, changes: true},
		{name: "audit", args: "[ID]", flags: "[-since T] [-limit N]",
			about: "print the changes made to the key ID, or to every key and owner,\n" +
				"newest first: a header, then a line each with the time, actor,\n" +
				"action, key, owner and each changed field before and after (never\n" +
				"a key)", define: keysAudit},
	}
}

// synopsis is c's name, then -db URL when withDB, its positional argument
// and its flags.
func (c keysSub) synopsis(withDB bool) string {
	s := c.name
	if withDB {
		s += " -db URL"
	}
	for _, part := range []string{c.args, c.flags} {
		if part != "" {
			s += " " + part
		}
	}
	if c.changes {
		s += " [-actor NAME]"
	}
	return s
}

// usage writes c's usage to w: its synopsis, what it does, and the flags fs
// defines.
func (c keysSub) usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: gatehouse keys %s\n\n%s\n\nflags:\n", c.synopsis(true), c.about)
	fs.PrintDefaults()
}

// writeKeysUsage writes the usage of gatehouse keys: keysUsageHead, then
// each command's synopsis and what it does.
func writeKeysUsage(w io.Writer) {
	io.WriteString(w, keysUsageHead)
	for _, c := range keysSubs() {
		fmt.Fprintf(w, "  %s\n      %s\n", c.synopsis(false), strings.ReplaceAll(c.about, "\n", "\n      "))
	}
}

// keysCommand runs "gatehouse keys COMMAND …": the key lifecycle of a
// database (see keysSubs), through the sqlstore package's Admin. Each command
// has a flag set of its own, so that a flag it does not take (keys show ID
// -per-minute 5) is an error, with the command's usage, rather than ignored.
// With no argument, or -h, it lists the commands and succeeds, as gatehouse -h
// does: that is how a reader finds them.
func keysCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || slices.Contains([]string{"-h", "-help", "--h", "--help"}, args[0]) {
		writeKeysUsage(stderr)
		return nil
	}
	if strings.HasPrefix(args[0], "-") {
		writeKeysUsage(stderr)
		return errors.New("keys: a command is required")
	}
	subs := keysSubs()
	i := slices.IndexFunc(subs, func(c keysSub) bool { return c.name == args[0] })
	if i < 0 {
		writeKeysUsage(stderr)
		return fmt.Errorf("keys: unknown command %q", args[0])
	}
	c := subs[i]
	fs := cli.FlagSet("keys "+c.name, stderr)
	fs.Usage = func() { c.usage(stderr, fs) }
	dbURL := fs.String("db", "", "database URL: sqlite:PATH or postgres://…")
	var actor *string
	if c.changes {
		actor = fs.String("actor", "", "who makes the change, for the audit trail (default: the OS user running the command)")
	}
	run := c.define(fs)
	pos, err := c.parse(fs, args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp):
		return nil
	case err != nil:
		return fmt.Errorf("keys %s: %w", c.name, err)
	case *dbURL == "":
		return errors.New("keys: -db URL is required")
	case c.args == "ID" && len(pos) == 0:
		return fmt.Errorf("keys %s: exactly one key ID is required", c.name)
	}
	var as string
	if c.changes {
		if as, err = actorName(*actor); err != nil {
			return fmt.Errorf("keys %s: %w", c.name, err)
		}
	}
	db, err := openDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	admin, err := sqlstore.NewAdmin(db, sqlstore.AdminConfig{})
	if err != nil {
		return err
	}
	return run(ctx, admin.As(as), pos, stdout)
}

// actorName is who a keys command makes its changes as: flagValue (-actor),
// else the name of the OS user running the command.
func actorName(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	u, err := user.Current()
	if err != nil {
		return "", fmt.Errorf("-actor NAME is required: the OS user is unknown: %w", err)
	}
	return u.Username, nil
}

// parse parses args with fs and returns c's positional argument, if it takes
// one and args hold it: flags may come before and after it (keys show ID -db
// URL, keys show -db URL ID), and cli.Parse refuses any other argument.
func (c keysSub) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	if c.args == "" {
		return nil, cli.Parse(fs, args)
	}
	if err := fs.Parse(args); err != nil || fs.NArg() == 0 {
		return nil, err
	}
	pos := fs.Args()
	return pos[:1], cli.Parse(fs, pos[1:])
}

// given returns the names of the flags that fs parsed from the command line,
// to tell a flag set to its zero value from one left out.
func given(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// limitFlags are the flags of an allowance: a key's (create, update) or an
// owner's (owner-limits).
type limitFlags struct {
	perMinute, perDay *int
	windows           *string
}

// defineLimits defines -per-minute, -per-day and -windows on fs; zero says
// what a limit of 0 means, and windowsNote (if not "") what else -windows
// takes.
func defineLimits(fs *flag.FlagSet, zero, windowsNote string) limitFlags {
	return limitFlags{
		perMinute: fs.Int("per-minute", 0, "requests per minute (0: "+zero+")"),
		perDay:    fs.Int("per-day", 0, "requests per day (0: "+zero+")"),
		windows:   fs.String("windows", "", "further windows, PERIOD=LIMIT comma-separated: 1h=1000,720h=100000"+windowsNote),
	}
}

// parseWindows is -windows as windows, or an error naming the command cmd
// and the flag.
func (l limitFlags) parseWindows(cmd string) ([]ratelimit.Rate, error) {
	ws, err := parseWindows(*l.windows)
	if err != nil {
		return nil, fmt.Errorf("keys %s: -windows: %w", cmd, err)
	}
	return ws, nil
}

// keyFlags are the flags of a key's fields that create sets and update
// changes (create also takes -owner).
type keyFlags struct {
	name, products, expires *string
	limitFlags
}

// defineKeyFlags defines keyFlags on fs; update says they are update's,
// whose -expires also takes never and -windows none.
func defineKeyFlags(fs *flag.FlagSet, update bool) keyFlags {
	expires, windowsNote := "expiry, RFC 3339 (empty: never)", ""
	if update {
		expires, windowsNote = "expiry, RFC 3339, or never", " (none removes them)"
	}
	return keyFlags{
		name:       fs.String("name", "", "the key's name"),
		products:   fs.String("products", "", "comma-separated product slugs, or *"),
		expires:    fs.String("expires", "", expires),
		limitFlags: defineLimits(fs, "the gateway's default", windowsNote),
	}
}

// keysMigrate is keys migrate, which takes no flag besides -db: keysCommand
// has migrated the schema by the time it runs.
func keysMigrate(*flag.FlagSet) keysRun {
	return func(_ context.Context, _ *sqlstore.Admin, _ []string, stdout io.Writer) error {
		fmt.Fprintln(stdout, "schema up to date")
		return nil
	}
}

// keysCreate defines the flags of keys create and returns what runs it.
func keysCreate(fs *flag.FlagSet) keysRun {
	f := defineKeyFlags(fs, false)
	owner := fs.String("owner", "", "the key's owner (required), whose allowance its keys share")
	return func(ctx context.Context, admin *sqlstore.Admin, _ []string, stdout io.Writer) error {
		ws, err := f.parseWindows("create")
		if err != nil {
			return err
		}
		spec := sqlstore.Spec{Name: *f.name, Owner: *owner, Products: splitProducts(*f.products), PerMinute: *f.perMinute, PerDay: *f.perDay, Windows: ws}
		if *f.expires != "" {
			if spec.ExpiresAt, err = time.Parse(time.RFC3339, *f.expires); err != nil {
				return fmt.Errorf("keys create: -expires: %w", err)
			}
		}
		plaintext, k, err := admin.Create(ctx, spec)
		if err != nil {
			return err
		}
		printNewKey(stdout, plaintext, k)
		return nil
	}
}

// keysList defines the flag of keys list and returns what runs it.
func keysList(fs *flag.FlagSet) keysRun {
	owner := fs.String("owner", "", "list only this owner's keys")
	return func(ctx context.Context, admin *sqlstore.Admin, _ []string, stdout io.Writer) error {
		keys, err := admin.List(ctx, *owner)
		if err != nil {
			return err
		}
		printKeys(stdout, keys)
		return nil
	}
}

// keysShow is keys show, which takes no flag besides -db.
func keysShow(*flag.FlagSet) keysRun {
	return func(ctx context.Context, admin *sqlstore.Admin, pos []string, stdout io.Writer) error {
		k, err := admin.Get(ctx, pos[0])
		if err != nil {
			return err
		}
		printKey(stdout, k)
		return nil
	}
}

// keysUpdate defines the flags of keys update and returns what runs it: each
// flag given changes its field, the others stay.
func keysUpdate(fs *flag.FlagSet) keysRun {
	f := defineKeyFlags(fs, true)
	return func(ctx context.Context, admin *sqlstore.Admin, pos []string, stdout io.Writer) error {
		ws, err := f.parseWindows("update")
		if err != nil {
			return err
		}
		set := given(fs)
		var u sqlstore.Update
		if set["name"] {
			u.Name = f.name
		}
		if set["products"] {
			u.Products = splitProducts(*f.products)
		}
		if set["per-minute"] {
			u.PerMinute = f.perMinute
		}
		if set["per-day"] {
			u.PerDay = f.perDay
		}
		if set["windows"] {
			u.Windows = make([]ratelimit.Rate, 0, len(ws)) // empty, not nil: "none" removes them
			u.Windows = append(u.Windows, ws...)
		}
		if set["expires"] {
			var t time.Time
			if *f.expires != "never" {
				if t, err = time.Parse(time.RFC3339, *f.expires); err != nil {
					return fmt.Errorf("keys update: -expires: %w", err)
				}
			}
			u.ExpiresAt = &t
		}
		k, err := admin.Update(ctx, pos[0], u)
		if err != nil {
			return err
		}
		printKey(stdout, k)
		return nil
	}
}

// keysSwitch is the keys command name (disable, enable or delete), which
// takes no flag besides -db: it does op to the key and prints "named ID"
// (disabled, enabled, deleted).
func keysSwitch(name, about string, op func(*sqlstore.Admin, context.Context, string) error) keysSub {
	return keysSub{name: name, args: "ID", about: about, changes: true, define: func(*flag.FlagSet) keysRun {
		return func(ctx context.Context, admin *sqlstore.Admin, pos []string, stdout io.Writer) error {
			if err := op(admin, ctx, pos[0]); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%sd %s\n", name, pos[0])
			return nil
		}
	}}
}

// keysOwnerLimits defines the flags of keys owner-limits and returns what
// runs it (see ownerLimitsCommand).
func keysOwnerLimits(fs *flag.FlagSet) keysRun {
	l := defineLimits(fs, "none", "")
	del := fs.Bool("delete", false, "remove the owner's allowance")
	return func(ctx context.Context, admin *sqlstore.Admin, pos []string, stdout io.Writer) error {
		ws, err := l.parseWindows("owner-limits")
		if err != nil {
			return err
		}
		set := given(fs)
		limit := set["per-minute"] || set["per-day"] || set["windows"]
		return ownerLimitsCommand(ctx, admin, pos, limit, sqlstore.OwnerLimits{PerMinute: *l.perMinute, PerDay: *l.perDay, Windows: ws}, *del, stdout)
	}
}

// keysRotate defines the flag of keys rotate and returns what runs it.
func keysRotate(fs *flag.FlagSet) keysRun {
	overlap := fs.Duration("overlap", 0, "how long the old key keeps working (required; 0s ends it now)")
	return func(ctx context.Context, admin *sqlstore.Admin, pos []string, stdout io.Writer) error {
		if !given(fs)["overlap"] {
			return errors.New("keys rotate: -overlap DURATION is required (0s ends the old key now)")
		}
		plaintext, k, err := admin.Rotate(ctx, pos[0], *overlap)
		if err != nil {
			return err
		}
		printNewKey(stdout, plaintext, k)
		return nil
	}
}

// ownerLimitsCommand runs keys owner-limits: list (no owner), show, set
// (limit: a limit flag given, with the limits l) or delete the allowance of
// pos[0].
func ownerLimitsCommand(ctx context.Context, admin *sqlstore.Admin, pos []string, limit bool, l sqlstore.OwnerLimits, del bool, stdout io.Writer) error {
	if len(pos) == 0 {
		if del || limit {
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
	case limit:
		l.Owner = owner
		if err := admin.SetOwnerLimits(ctx, l); err != nil {
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
func formatWindows(ws []ratelimit.Rate) string {
	if len(ws) == 0 {
		return "none"
	}
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.Period.String() + "=" + strconv.Itoa(w.Limit)
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

// keyDB is the gateway's key database (-db): the database, its Store of
// keys, its Admin, which lists the keys for the admin page, and its usage
// recorder (nil with -usage-flush 0).
type keyDB struct {
	db    *sql.DB
	store *sqlstore.Store
	admin *sqlstore.Admin
	usage *sqlstore.Usage
}

// close writes the usage left and closes the store and the database.
func (k *keyDB) close(logger *slog.Logger) {
	if k.usage != nil {
		if err := k.usage.Close(); err != nil {
			logger.Error("usage not written at shutdown", "err", err.Error())
		}
	}
	k.store.Close()
	k.db.Close()
}

// dbKeys opens the key database at url for the gateway: migrated, with its
// cache, change poll and counts of use (see sqlstore.Store; the gateway wraps
// its product handler in the store's CountUse), its Admin and, unless
// usageFlush is 0, its usage recorder.
func dbKeys(ctx context.Context, url string, usageFlush time.Duration, logger *slog.Logger) (*keyDB, error) {
	db, err := openDB(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("-db: %w", err)
	}
	s, err := sqlstore.New(db, sqlstore.Config{Logger: logger})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("-db: %w", err)
	}
	k := &keyDB{db: db, store: s}
	if k.admin, err = sqlstore.NewAdmin(db, sqlstore.AdminConfig{}); err != nil {
		k.close(logger)
		return nil, fmt.Errorf("-db: %w", err)
	}
	if usageFlush > 0 {
		if k.usage, err = sqlstore.NewUsage(db, sqlstore.UsageConfig{FlushInterval: usageFlush, Logger: logger}); err != nil {
			k.close(logger)
			return nil, fmt.Errorf("-db: %w", err)
		}
	}
	logger.Info("keys and owners' allowances served from the database; the configuration's keys and owners are ignored")
	return k, nil
}

// openDB opens the key database at url, as the gateway and every keys command
// do: with its schema created or updated (sqlstore.Migrate), or closed again.
func openDB(ctx context.Context, url string) (*sql.DB, error) {
	db, err := sqlstore.Open(url)
	if err != nil {
		return nil, err
	}
	if err := sqlstore.Migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}
