package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// Errors of the lifecycle. Compare with errors.Is.
var (
	// ErrNotFound reports an ID that names no key.
	ErrNotFound = errors.New("sqlstore: no key with this ID")
	// ErrInvalid reports a key specification that cannot be stored (no
	// owner, no product, a negative limit, a product slug with spaces, a name
	// or owner with a control character).
	ErrInvalid = errors.New("sqlstore: invalid key")
)

// changeRetention is how long a row of gatehouse_changes is kept. A replica
// that has not polled for longer (its database link was down) finds a gap in
// the version numbers and drops its whole cache instead.
const changeRetention = time.Hour

// Key is a key's record with what only an administrator sees: when it was
// created, and its use. Its owner is the embedded auth.Key's Owner.
type Key struct {
	auth.Key
	// CreatedAt is when the key was created.
	CreatedAt time.Time
	// LastUsedAt is the last time a request was let through with the key, as
	// of the last flush of a [Store]'s counts; zero means never.
	LastUsedAt time.Time
	// Requests counts the requests let through with the key, as of the last
	// flush.
	Requests int64
}

// Spec says what a new key may do.
type Spec struct {
	// Name is a label for administrators: UTF-8 without control characters,
	// like Owner, since both are printed to their terminals.
	Name string
	// Owner identifies the customer the key belongs to; required.
	Owner string
	// Products lists the product slugs the key may call ("*": every one);
	// at least one.
	Products []string
	// PerMinute and PerDay are the key's limits; 0 means the gateway's default.
	PerMinute, PerDay int
	// Windows are the key's further limits (see auth.Key.Windows): each a
	// Limit of at least 1 per a whole number of seconds from 1s to 31 days.
	Windows []ratelimit.Rate
	// ExpiresAt is when the key stops working; zero means never.
	ExpiresAt time.Time
}

// Update lists the changes to a key; a nil field is left as it is.
type Update struct {
	Name              *string
	Products          []string // nil: unchanged
	PerMinute, PerDay *int
	// Windows replaces the key's further windows; nil: unchanged, an empty
	// non-nil slice removes them all.
	Windows []ratelimit.Rate
	// ExpiresAt is the new expiry; a pointer to the zero time removes it.
	ExpiresAt *time.Time
}

// Admin is the key lifecycle on a database migrated by [Migrate]: create,
// list, show, update, disable, enable, delete and rotate. Every change is
// recorded in gatehouse_changes, which every [Store] polls, so that every
// replica drops the changed key from its cache within its poll interval,
// and in the audit trail (see [Admin.Audit]), under the actor [Admin.As]
// names: a change is refused without one. Admin is safe for simultaneous use.
type Admin struct {
	db     *sql.DB
	q      queries
	aq     auditQueries
	format auth.Format
	now    func() time.Time
	actor  string // who makes the changes; "" refuses them (see As)
}

// AdminConfig configures [NewAdmin]. Its zero value is sane.
type AdminConfig struct {
	// Format is the format of the keys minted; the zero value is ila_.
	Format auth.Format
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// NewAdmin returns the lifecycle API on db, a PostgreSQL (pgx stdlib) or
// SQLite (modernc.org/sqlite) database.
func NewAdmin(db *sql.DB, cfg AdminConfig) (*Admin, error) {
	d, err := dialectOf(db)
	if err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Admin{db: db, q: newQueries(d), aq: newAuditQueries(d), format: cfg.Format, now: cfg.Now}, nil
}

// Create stores a new key made to spec and returns its plaintext, to be shown
// once to its owner (only its SHA-256 is stored), and its record. The key's
// allowance is its own ID.
func (a *Admin) Create(ctx context.Context, spec Spec) (plaintext string, k Key, err error) {
	if err := spec.check(); err != nil {
		return "", Key{}, err
	}
	plaintext, ak := a.format.NewKey()
	now := a.now()
	k = Key{Key: ak, CreatedAt: now.Truncate(time.Millisecond)}
	k.Owner, k.Name, k.Products, k.PerMinute, k.PerDay = spec.Owner, spec.Name, spec.Products, spec.PerMinute, spec.PerDay
	k.Windows = windowsOrNil(spec.Windows)
	k.ExpiresAt = spec.ExpiresAt.Truncate(time.Millisecond)
	k.Allowance = k.ID
	err = a.write(ctx, func(tx *sql.Tx, rec *auditRow) ([]string, error) {
		*rec = keyAudit(AuditCreate, k, nil, keyFields(k))
		return []string{k.HashHex()}, a.insert(ctx, tx, &k, now)
	})
	if err != nil {
		return "", Key{}, fmt.Errorf("sqlstore: create: %w", err)
	}
	return plaintext, k, nil
}

func (a *Admin) insert(ctx context.Context, tx *sql.Tx, k *Key, now time.Time) error {
	products, err := json.Marshal(k.Products)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, a.q.insert, k.ID, k.HashHex(), k.Owner, k.Name, string(products),
		k.PerMinute, k.PerDay, boolInt(k.Disabled), millis(k.ExpiresAt), k.Allowance, now.UnixMilli(), now.UnixMilli(),
		encodeWindows(k.Windows))
	return err
}

// Get returns the key with the given ID, or an error wrapping [ErrNotFound].
func (a *Admin) Get(ctx context.Context, id string) (Key, error) {
	k, err := scanKey(a.db.QueryRowContext(ctx, a.q.byID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return k, err
}

// List returns the keys of owner, or every key when owner is "", sorted by
// owner and ID.
func (a *Admin) List(ctx context.Context, owner string) ([]Key, error) {
	var rows *sql.Rows
	var err error
	if owner == "" {
		rows, err = a.db.QueryContext(ctx, a.q.list)
	} else {
		rows, err = a.db.QueryContext(ctx, a.q.listOwner, owner)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list: %w", err)
	}
	defer rows.Close()
	var keys []Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// Update changes the fields of u that are set on the key with the given ID and
// returns the new record.
func (a *Admin) Update(ctx context.Context, id string, u Update) (Key, error) {
	var k Key
	err := a.write(ctx, func(tx *sql.Tx, rec *auditRow) ([]string, error) {
		var err error
		if k, err = scanKey(tx.QueryRowContext(ctx, a.q.byID, id)); err != nil {
			return nil, err
		}
		before := keyFields(k)
		if u.Name != nil {
			k.Name = *u.Name
		}
		if u.Products != nil {
			k.Products = u.Products
		}
		if u.PerMinute != nil {
			k.PerMinute = *u.PerMinute
		}
		if u.PerDay != nil {
			k.PerDay = *u.PerDay
		}
		if u.ExpiresAt != nil {
			k.ExpiresAt = u.ExpiresAt.Truncate(time.Millisecond)
		}
		if u.Windows != nil {
			k.Windows = windowsOrNil(u.Windows)
		}
		if u.Name != nil {
			// Only the new name's text: a key stored before names were
			// checked can still be updated (its name replaced, say).
			if err := checkText("name", k.Name); err != nil {
				return nil, err
			}
		}
		spec := Spec{Name: k.Name, Owner: k.Owner, Products: k.Products, PerMinute: k.PerMinute, PerDay: k.PerDay, Windows: k.Windows}
		if err := spec.checkScope(); err != nil {
			return nil, err
		}
		*rec = keyAudit(AuditUpdate, k, before, keyFields(k))
		products, err := json.Marshal(k.Products)
		if err != nil {
			return nil, err
		}
		_, err = tx.ExecContext(ctx, a.q.update, k.Name, string(products), k.PerMinute, k.PerDay, millis(k.ExpiresAt), encodeWindows(k.Windows), a.now().UnixMilli(), id)
		return []string{k.HashHex()}, err
	})
	if err != nil {
		return Key{}, a.wrap("update", id, err)
	}
	return k, nil
}

// Disable refuses the key with the given ID from now on (every replica within
// its poll interval). It is not an error to disable a disabled key.
func (a *Admin) Disable(ctx context.Context, id string) error {
	return a.setDisabled(ctx, AuditDisable, id, true)
}

// Enable lets the key with the given ID be used again.
func (a *Admin) Enable(ctx context.Context, id string) error {
	return a.setDisabled(ctx, AuditEnable, id, false)
}

func (a *Admin) setDisabled(ctx context.Context, op AuditAction, id string, disabled bool) error {
	err := a.write(ctx, func(tx *sql.Tx, rec *auditRow) ([]string, error) {
		k, err := scanKey(tx.QueryRowContext(ctx, a.q.byID, id))
		if err != nil {
			return nil, err
		}
		before := keyFields(k)
		k.Disabled = disabled
		*rec = keyAudit(op, k, before, keyFields(k))
		_, err = tx.ExecContext(ctx, a.q.setDisabled, boolInt(disabled), a.now().UnixMilli(), id)
		return []string{k.HashHex()}, err
	})
	return a.wrap(string(op), id, err)
}

// Delete removes the key with the given ID; requests with it are refused as
// unknown.
func (a *Admin) Delete(ctx context.Context, id string) error {
	err := a.write(ctx, func(tx *sql.Tx, rec *auditRow) ([]string, error) {
		k, err := scanKey(tx.QueryRowContext(ctx, a.q.byID, id))
		if err != nil {
			return nil, err
		}
		*rec = keyAudit(AuditDelete, k, keyFields(k), nil)
		_, err = tx.ExecContext(ctx, a.q.delete, id)
		return []string{k.HashHex()}, err
	})
	return a.wrap("delete", id, err)
}

// Rotate replaces the key with the given ID by a new one with the same name,
// owner, scope, limits and expiry, and returns the new key's plaintext (shown
// once) and record. The old key keeps working for overlap (but no longer than
// its own expiry), so that its owner can deploy the new one; both spend one
// allowance, the old key's, so a rotation never doubles what the owner may
// spend. A disabled key is not rotated: enable it first.
func (a *Admin) Rotate(ctx context.Context, id string, overlap time.Duration) (plaintext string, k Key, err error) {
	if overlap < 0 {
		return "", Key{}, fmt.Errorf("%w: negative overlap", ErrInvalid)
	}
	now := a.now()
	err = a.write(ctx, func(tx *sql.Tx, rec *auditRow) ([]string, error) {
		old, err := scanKey(tx.QueryRowContext(ctx, a.q.byID, id))
		if err != nil {
			return nil, err
		}
		if old.Disabled {
			return nil, fmt.Errorf("%w: key %s is disabled", ErrInvalid, id)
		}
		before := keyFields(old)
		var ak auth.Key
		plaintext, ak = a.format.NewKey()
		k = old
		k.ID, k.Hash = ak.ID, ak.Hash
		k.CreatedAt = now.Truncate(time.Millisecond)
		k.LastUsedAt, k.Requests = time.Time{}, 0
		if err := a.insert(ctx, tx, &k, now); err != nil {
			return nil, err
		}
		until := now.Add(overlap).Truncate(time.Millisecond)
		if old.ExpiresAt.IsZero() || until.Before(old.ExpiresAt) {
			if _, err := tx.ExecContext(ctx, a.q.setExpiry, millis(until), now.UnixMilli(), id); err != nil {
				return nil, err
			}
			old.ExpiresAt = until
		}
		after := keyFields(old)
		after["rotated_to"] = marshalJSON(k.ID)
		*rec = keyAudit(AuditRotate, old, before, after)
		return []string{old.HashHex(), k.HashHex()}, nil
	})
	if err != nil {
		return "", Key{}, a.wrap("rotate", id, err)
	}
	return plaintext, k, nil
}

// write runs change in a transaction and records a change for each key hash
// it returns, under a new version each, and the audit row change sets, under
// the last version, in the same transaction: the audit row is written if and
// only if the change is. Without an actor it changes nothing.
func (a *Admin) write(ctx context.Context, change func(*sql.Tx, *auditRow) ([]string, error)) error {
	if err := a.checkActor(); err != nil {
		return err
	}
	tx, err := a.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if a.aq.lock != "" {
		if _, err := tx.ExecContext(ctx, a.aq.lock); err != nil {
			return err
		}
	}
	var rec auditRow
	hashes, err := change(tx, &rec)
	if err != nil {
		return err
	}
	at := a.now()
	now := at.UnixMilli()
	var v int64
	for _, h := range hashes {
		// The row lock taken here orders concurrent writers, so versions
		// become visible in their order and a poller never skips one.
		if err := tx.QueryRowContext(ctx, a.q.bumpVersion).Scan(&v); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, a.q.insertChange, v, h, now); err != nil {
			return err
		}
	}
	if err := a.record(ctx, tx, v, at, rec); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, a.q.pruneChanges, now-changeRetention.Milliseconds()); err != nil {
		return err
	}
	return tx.Commit()
}

// wrap adds the operation to err and turns "no rows" into ErrNotFound.
func (a *Admin) wrap(op, id string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlstore: %s: %w: %s", op, ErrNotFound, id)
	}
	return fmt.Errorf("sqlstore: %s %s: %w", op, id, err)
}

func (s Spec) check() error {
	if err := checkText("name", s.Name); err != nil {
		return err
	}
	if err := checkText("owner", s.Owner); err != nil {
		return err
	}
	return s.checkScope()
}

// checkScope checks what Spec.check does but the text of the name and owner:
// an owner is required, and the products, limits and windows must be usable.
func (s Spec) checkScope() error {
	switch {
	case strings.TrimSpace(s.Owner) == "":
		return fmt.Errorf("%w: no owner", ErrInvalid)
	case len(s.Products) == 0:
		return fmt.Errorf("%w: no product", ErrInvalid)
	case s.PerMinute < 0 || s.PerDay < 0:
		return fmt.Errorf("%w: negative limit", ErrInvalid)
	}
	if err := checkWindows(s.Windows); err != nil {
		return err
	}
	for _, p := range s.Products {
		if p == "" || strings.ContainsAny(p, " ,") || checkText("", p) != nil {
			return fmt.Errorf("%w: product slug %q", ErrInvalid, p)
		}
	}
	return nil
}

// checkText returns an error wrapping ErrInvalid if s, the text of field (a
// key's name or owner), is not UTF-8 or holds a control character (C0, DEL or
// C1): an administrator's terminal would act on one (ESC starts an escape
// sequence, BEL rings, a newline forges a line of keys list).
func checkText(field, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s %q: not UTF-8", ErrInvalid, field, s)
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return fmt.Errorf("%w: %s %q: control character %U", ErrInvalid, field, s, r)
	}
	return nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// keyColumns are the columns scanKey reads, in its order.
const keyColumns = `id, hash, owner, name, products, per_minute, per_day, disabled, expires_at, allowance, created_at, last_used_at, request_count, windows`

func scanKey(s scanner) (Key, error) {
	var k Key
	var hash, products, windows string
	var disabled int
	var expires, lastUsed sql.NullInt64
	var created int64
	if err := s.Scan(&k.ID, &hash, &k.Owner, &k.Name, &products, &k.PerMinute, &k.PerDay, &disabled, &expires, &k.Allowance, &created, &lastUsed, &k.Requests, &windows); err != nil {
		return Key{}, err
	}
	var err error
	if k.Windows, err = decodeWindows(windows); err != nil {
		return Key{}, fmt.Errorf("sqlstore: key %s: windows: %w", k.ID, err)
	}
	if k.Hash, err = auth.ParseHash(hash); err != nil {
		return Key{}, fmt.Errorf("sqlstore: key %s: %w", k.ID, err)
	}
	if err := json.Unmarshal([]byte(products), &k.Products); err != nil {
		return Key{}, fmt.Errorf("sqlstore: key %s: products: %w", k.ID, err)
	}
	k.Disabled = disabled != 0
	k.ExpiresAt = fromMillis(expires)
	k.CreatedAt = time.UnixMilli(created)
	k.LastUsedAt = fromMillis(lastUsed)
	return k, nil
}

func millis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

func fromMillis(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMilli(n.Int64)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// queries are the package's SQL in a database's dialect, rewritten once.
type queries struct {
	insert, byID, list, listOwner, update, setDisabled, delete, setExpiry string
	bumpVersion, insertChange, pruneChanges                               string
	lookup, version, changes, used                                        string
	upsertOwner, ownerByName, listOwners, deleteOwner                     string
}

func newQueries(d dialect) queries {
	return queries{
		insert: d.rebind(`INSERT INTO gatehouse_keys (id, hash, owner, name, products, per_minute, per_day, disabled, expires_at, allowance, created_at, updated_at, windows)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		byID:         d.rebind(`SELECT ` + keyColumns + ` FROM gatehouse_keys WHERE id = ?`),
		list:         `SELECT ` + keyColumns + ` FROM gatehouse_keys ORDER BY owner, id`,
		listOwner:    d.rebind(`SELECT ` + keyColumns + ` FROM gatehouse_keys WHERE owner = ? ORDER BY id`),
		update:       d.rebind(`UPDATE gatehouse_keys SET name = ?, products = ?, per_minute = ?, per_day = ?, expires_at = ?, windows = ?, updated_at = ? WHERE id = ?`),
		setDisabled:  d.rebind(`UPDATE gatehouse_keys SET disabled = ?, updated_at = ? WHERE id = ?`),
		delete:       d.rebind(`DELETE FROM gatehouse_keys WHERE id = ?`),
		setExpiry:    d.rebind(`UPDATE gatehouse_keys SET expires_at = ?, updated_at = ? WHERE id = ?`),
		bumpVersion:  `UPDATE gatehouse_version SET version = version + 1 WHERE id = 1 RETURNING version`,
		insertChange: d.rebind(`INSERT INTO gatehouse_changes (version, key_hash, changed_at) VALUES (?, ?, ?)`),
		pruneChanges: d.rebind(`DELETE FROM gatehouse_changes WHERE changed_at < ?`),
		lookup:       d.rebind(`SELECT id, name, products, per_minute, per_day, disabled, expires_at, allowance, owner, windows FROM gatehouse_keys WHERE hash = ?`),
		version:      `SELECT version FROM gatehouse_version WHERE id = 1`,
		changes:      d.rebind(`SELECT version, key_hash FROM gatehouse_changes WHERE version > ? ORDER BY version LIMIT 1000`),
		upsertOwner: d.rebind(`INSERT INTO gatehouse_owner_limits (owner, per_minute, per_day, windows, updated_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (owner) DO UPDATE SET per_minute = excluded.per_minute, per_day = excluded.per_day, windows = excluded.windows, updated_at = excluded.updated_at`),
		ownerByName: d.rebind(`SELECT ` + ownerColumns + ` FROM gatehouse_owner_limits WHERE owner = ?`),
		listOwners:  `SELECT ` + ownerColumns + ` FROM gatehouse_owner_limits ORDER BY owner`,
		deleteOwner: d.rebind(`DELETE FROM gatehouse_owner_limits WHERE owner = ?`),
		used: d.rebind(`UPDATE gatehouse_keys SET request_count = request_count + ?,
	last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < ? THEN ? ELSE last_used_at END
WHERE id = ?`),
	}
}
