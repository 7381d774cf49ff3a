package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNoActor refuses a change by an [Admin] that does not say who makes it:
// every change is recorded in the audit trail under its actor (see
// [Admin.As]).
var ErrNoActor = errors.New("sqlstore: no actor: say who makes the change with Admin.As")

// AuditAction is what a change recorded in the audit trail did.
type AuditAction string

// The actions of the audit trail, one for each change of the [Admin] API.
const (
	AuditCreate            AuditAction = "create"              // Admin.Create
	AuditUpdate            AuditAction = "update"              // Admin.Update
	AuditDisable           AuditAction = "disable"             // Admin.Disable
	AuditEnable            AuditAction = "enable"              // Admin.Enable
	AuditDelete            AuditAction = "delete"              // Admin.Delete
	AuditRotate            AuditAction = "rotate"              // Admin.Rotate
	AuditSetOwnerLimits    AuditAction = "set-owner-limits"    // Admin.SetOwnerLimits
	AuditDeleteOwnerLimits AuditAction = "delete-owner-limits" // Admin.DeleteOwnerLimits
)

// AuditEntry is one row of the audit trail (the table gatehouse_audit): one
// change made through an [Admin]. It never holds a key or a key's hash.
type AuditEntry struct {
	// Seq is the change's number (its version in gatehouse_version): rows
	// sort by it in the order their changes committed.
	Seq int64
	// At is when the change was made, by the clock of the Admin that made
	// it (AdminConfig.Now), to the millisecond.
	At time.Time
	// Actor is who made the change (see Admin.As).
	Actor string
	// Action is what the change did.
	Action AuditAction
	// KeyID is the changed key's ID ("" for a change to an owner's limits;
	// a rotation's is the old key's).
	KeyID string
	// Owner is the changed key's owner, or the owner whose limits changed.
	Owner string
	// Changes holds each field the change changed, by its column name
	// (name, owner, products, per_minute, per_day, windows, disabled,
	// expires_at, allowance; per_minute, per_day and windows for an owner's
	// limits), with its value before and after. A create has no Before and a
	// delete no After; a rotation adds rotated_to, the new key's ID, and the
	// old key's expires_at when the overlap cuts it. A change that changed
	// nothing (disabling a disabled key) has none.
	Changes AuditChanges
}

// AuditChanges are the fields a change changed, by column name.
type AuditChanges map[string]FieldChange

// String returns c as the changes column holds it: a JSON object, its
// fields sorted, HTML characters unescaped, as
// {"per_minute":{"before":60,"after":5}}.
func (c AuditChanges) String() string {
	return string(marshalJSON(c))
}

// FieldChange is a field's value before and after a change, as JSON: a
// string, a number, true or false, an array (products, windows) or null
// (expires_at for "never"; times are RFC 3339 in UTC). Before is nil for a
// field of a key or owner's limits that did not exist before, After for one
// removed.
type FieldChange struct {
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
}

// AuditQuery selects rows of the audit trail for [Admin.Audit].
type AuditQuery struct {
	// KeyID keeps the rows of this key only; "" keeps every row, owners'
	// limits included.
	KeyID string
	// Since keeps the rows at or after this time; zero keeps all.
	Since time.Time
	// Limit is the most rows returned, the newest; 0 means
	// DefaultAuditLimit. It is at most MaxAuditLimit, so that a read holds a
	// bounded number of rows in memory.
	Limit int
}

// Bounds of AuditQuery.Limit.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 10_000
)

// As returns an Admin like a that records its changes in the audit trail
// under actor: who makes them (a user name, a service's name). The actor is
// explicit, with each change, rather than taken from a context or the
// environment, so that a change whose author is unknown is refused rather
// than recorded as nobody's: a change through an Admin without an actor (as
// NewAdmin returns it, or As("")) fails with [ErrNoActor], and one with an
// actor that is blank, not UTF-8 or holds a control character fails with
// [ErrInvalid]. Reads need no actor. The Admin returned shares a's database
// and is as cheap as a: make one per caller or request.
func (a *Admin) As(actor string) *Admin {
	b := *a
	b.actor = actor
	return &b
}

// checkActor returns why a's changes cannot be recorded, if they cannot.
func (a *Admin) checkActor() error {
	if a.actor == "" {
		return ErrNoActor
	}
	if strings.TrimSpace(a.actor) == "" {
		return fmt.Errorf("%w: blank actor %q", ErrInvalid, a.actor)
	}
	return checkText("actor", a.actor)
}

// Audit returns the rows of the audit trail that q selects, newest first (by
// Seq), at most q.Limit of them. It returns an error wrapping [ErrInvalid]
// for a negative Limit or one above MaxAuditLimit. The package offers no way
// to change or remove a row: the trail only grows.
func (a *Admin) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	switch {
	case q.Limit < 0 || q.Limit > MaxAuditLimit:
		return nil, fmt.Errorf("%w: audit limit %d: want 0 to %d", ErrInvalid, q.Limit, MaxAuditLimit)
	case q.Limit == 0:
		q.Limit = DefaultAuditLimit
	}
	since := int64(-1 << 63)
	if !q.Since.IsZero() {
		since = q.Since.UnixMilli()
	}
	var rows *sql.Rows
	var err error
	if q.KeyID == "" {
		rows, err = a.db.QueryContext(ctx, a.aq.list, since, q.Limit)
	} else {
		rows, err = a.db.QueryContext(ctx, a.aq.listKey, q.KeyID, since, q.Limit)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: audit: %w", err)
	}
	defer rows.Close()
	out := make([]AuditEntry, 0, min(q.Limit, 64))
	for rows.Next() {
		var e AuditEntry
		var at int64
		var changes string
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.KeyID, &e.Owner, &changes); err != nil {
			return nil, fmt.Errorf("sqlstore: audit: %w", err)
		}
		if err := json.Unmarshal([]byte(changes), &e.Changes); err != nil {
			return nil, fmt.Errorf("sqlstore: audit row %d: changes: %w", e.Seq, err)
		}
		e.At = time.UnixMilli(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// auditRow is what a change tells [Admin.write] to record: the rest of the
// row (time, actor, number) is write's.
type auditRow struct {
	action       AuditAction
	keyID, owner string
	changes      AuditChanges
}

// fields are the audited fields of a key or an owner's limits, by column
// name, as JSON; nil for none (before a create, after a delete).
type fields map[string]json.RawMessage

// keyFields returns k's audited fields: all but its ID (the row's key_id),
// its hash, and its use.
func keyFields(k Key) fields {
	var expires any // null: never
	if !k.ExpiresAt.IsZero() {
		expires = k.ExpiresAt.UTC().Format(time.RFC3339Nano)
	}
	return fields{
		"owner":      marshalJSON(k.Owner),
		"name":       marshalJSON(k.Name),
		"products":   marshalJSON(k.Products),
		"per_minute": marshalJSON(k.PerMinute),
		"per_day":    marshalJSON(k.PerDay),
		"windows":    json.RawMessage(encodeWindows(k.Windows)),
		"disabled":   marshalJSON(k.Disabled),
		"expires_at": marshalJSON(expires),
		"allowance":  marshalJSON(k.Allowance),
	}
}

// ownerFields returns the audited fields of an owner's limits.
func ownerFields(o OwnerLimits) fields {
	return fields{
		"per_minute": marshalJSON(o.PerMinute),
		"per_day":    marshalJSON(o.PerDay),
		"windows":    json.RawMessage(encodeWindows(o.Windows)),
	}
}

// keyAudit is the row of a change to key k whose audited fields were before
// and are now after.
func keyAudit(action AuditAction, k Key, before, after fields) auditRow {
	return auditRow{action: action, keyID: k.ID, owner: k.Owner, changes: diff(before, after)}
}

// ownerAudit is the row of a change to owner's limits.
func ownerAudit(action AuditAction, owner string, before, after fields) auditRow {
	return auditRow{action: action, owner: owner, changes: diff(before, after)}
}

// diff returns each field whose value differs between before and after.
func diff(before, after fields) AuditChanges {
	out := AuditChanges{}
	for _, side := range []fields{before, after} {
		for name := range side {
			if b, a := before[name], after[name]; !bytes.Equal(b, a) {
				out[name] = FieldChange{Before: b, After: a}
			}
		}
	}
	return out
}

// marshalJSON returns v as JSON without HTML escapes (a name "A&B" stays
// so). v is one of the fields' values, which cannot fail to encode.
func marshalJSON(v any) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("sqlstore: audit: " + err.Error())
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// record writes rec into the audit trail in tx, under the change's number
// seq, at the time at, with a's actor.
func (a *Admin) record(ctx context.Context, tx *sql.Tx, seq int64, at time.Time, rec auditRow) error {
	_, err := tx.ExecContext(ctx, a.aq.insert, seq, at.UnixMilli(), a.actor, string(rec.action), rec.keyID, rec.owner, rec.changes.String())
	return err
}

// auditQueries are the audit trail's SQL in a database's dialect.
type auditQueries struct {
	insert, list, listKey string
	// lock starts every change: it waits for the change before to commit,
	// so that what a change reads (its audit row's before) is what that one
	// left, in the order of their numbers. On PostgreSQL it takes the row
	// lock of gatehouse_version that the change would take later anyway; on
	// SQLite it is "": a transaction of a database opened by Open takes the
	// write lock at BEGIN, and another one fails rather than read stale.
	lock string
}

func newAuditQueries(d dialect) auditQueries {
	const columns = `seq, at, actor, action, key_id, owner, changes`
	var lock string
	if d == postgresDialect {
		lock = `SELECT version FROM gatehouse_version WHERE id = 1 FOR UPDATE`
	}
	return auditQueries{
		lock:    lock,
		insert:  d.rebind(`INSERT INTO gatehouse_audit (` + columns + `) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		list:    d.rebind(`SELECT ` + columns + ` FROM gatehouse_audit WHERE at >= ? ORDER BY seq DESC LIMIT ?`),
		listKey: d.rebind(`SELECT ` + columns + ` FROM gatehouse_audit WHERE key_id = ? AND at >= ? ORDER BY seq DESC LIMIT ?`),
	}
}

// ownerFieldsIn returns the audited fields of owner's limits as tx sees
// them: nil and sql.ErrNoRows when it has none.
func (a *Admin) ownerFieldsIn(ctx context.Context, tx *sql.Tx, owner string) (fields, error) {
	o, err := scanOwner(tx.QueryRowContext(ctx, a.q.ownerByName, owner))
	if err != nil {
		return nil, err
	}
	return ownerFields(o), nil
}
