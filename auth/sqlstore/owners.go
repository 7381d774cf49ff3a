package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// OwnerLimits is the allowance that all the keys of one owner share, spent by
// each of their requests on top of the key's own limits: PerMinute and PerDay
// (0: none) and further Windows. The gateway decides how to apply it (see the
// root package's Config.Owners).
type OwnerLimits struct {
	// Owner is the owner, as in Key.Owner.
	Owner string
	// PerMinute and PerDay are the owner's limits per minute and per day; 0
	// means none.
	PerMinute, PerDay int
	// Windows are further windows (see auth.Key.Windows).
	Windows []ratelimit.Rate
}

// Rates returns o as the rate limiter's windows, for the root package's
// Config.Owners: a window of a minute for PerMinute and of a day for PerDay
// (each left out when 0), then Windows; nil for none.
func (o OwnerLimits) Rates() []ratelimit.Rate {
	var out []ratelimit.Rate
	if o.PerMinute > 0 {
		out = append(out, ratelimit.Rate{Limit: o.PerMinute, Period: time.Minute})
	}
	if o.PerDay > 0 {
		out = append(out, ratelimit.Rate{Limit: o.PerDay, Period: 24 * time.Hour})
	}
	return append(out, o.Windows...)
}

// ownerChangePrefix starts the key_hash of a change to an owner's limits in
// gatehouse_changes: a key's hash is 64 hex digits and never starts so.
const ownerChangePrefix = "owner:"

func (o OwnerLimits) check() error {
	if err := checkText("owner", o.Owner); err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(o.Owner) == "":
		return fmt.Errorf("%w: no owner", ErrInvalid)
	case o.PerMinute < 0 || o.PerDay < 0:
		return fmt.Errorf("%w: negative limit", ErrInvalid)
	case o.PerMinute == 0 && o.PerDay == 0 && len(o.Windows) == 0:
		return fmt.Errorf("%w: owner %s: no limit (delete the owner's limits instead)", ErrInvalid, o.Owner)
	}
	return checkWindows(o.Windows)
}

// SetOwnerLimits makes o the allowance of o.Owner's keys, replacing any; every
// replica's [Store] sees it within its poll interval. It returns an error
// wrapping [ErrInvalid] for an allowance without a limit, with a negative one,
// or with a window the rate limiter would refuse.
func (a *Admin) SetOwnerLimits(ctx context.Context, o OwnerLimits) error {
	if err := o.check(); err != nil {
		return err
	}
	err := a.write(ctx, func(tx *sql.Tx, rec *auditRow) ([]string, error) {
		before, err := a.ownerFieldsIn(ctx, tx, o.Owner)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		*rec = ownerAudit(AuditSetOwnerLimits, o.Owner, before, ownerFields(o))
		_, err = tx.ExecContext(ctx, a.q.upsertOwner, o.Owner, o.PerMinute, o.PerDay, encodeWindows(o.Windows), a.now().UnixMilli())
		return []string{ownerChangePrefix + o.Owner}, err
	})
	if err != nil {
		return fmt.Errorf("sqlstore: set owner limits: %w", err)
	}
	return nil
}

// OwnerLimits returns the allowance of owner, or an error wrapping
// [ErrNotFound] when it has none.
func (a *Admin) OwnerLimits(ctx context.Context, owner string) (OwnerLimits, error) {
	o, err := scanOwner(a.db.QueryRowContext(ctx, a.q.ownerByName, owner))
	if errors.Is(err, sql.ErrNoRows) {
		return OwnerLimits{}, fmt.Errorf("%w: owner %s has no limits", ErrNotFound, owner)
	}
	return o, err
}

// ListOwnerLimits returns every owner's allowance, sorted by owner.
func (a *Admin) ListOwnerLimits(ctx context.Context) ([]OwnerLimits, error) {
	rows, err := a.db.QueryContext(ctx, a.q.listOwners)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list owner limits: %w", err)
	}
	defer rows.Close()
	var out []OwnerLimits
	for rows.Next() {
		o, err := scanOwner(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// DeleteOwnerLimits removes owner's allowance: its keys keep only their own
// limits. It returns an error wrapping [ErrNotFound] if it had none.
func (a *Admin) DeleteOwnerLimits(ctx context.Context, owner string) error {
	err := a.write(ctx, func(tx *sql.Tx, rec *auditRow) ([]string, error) {
		before, err := a.ownerFieldsIn(ctx, tx, owner)
		if err != nil {
			return nil, err
		}
		*rec = ownerAudit(AuditDeleteOwnerLimits, owner, before, nil)
		res, err := tx.ExecContext(ctx, a.q.deleteOwner, owner)
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil, sql.ErrNoRows
		}
		return []string{ownerChangePrefix + owner}, nil
	})
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlstore: delete owner limits: %w: owner %s has no limits", ErrNotFound, owner)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: delete owner limits: %w", err)
	}
	return nil
}

// ownerColumns are the columns scanOwner reads, in its order.
const ownerColumns = `owner, per_minute, per_day, windows`

func scanOwner(s scanner) (OwnerLimits, error) {
	var o OwnerLimits
	var windows string
	if err := s.Scan(&o.Owner, &o.PerMinute, &o.PerDay, &windows); err != nil {
		return OwnerLimits{}, err
	}
	var err error
	if o.Windows, err = decodeWindows(windows); err != nil {
		return OwnerLimits{}, fmt.Errorf("sqlstore: owner %s: windows: %w", o.Owner, err)
	}
	return o, nil
}

// ownerEntry is a cached answer for one owner: its limits and their Rates,
// or nil for none.
//
// Owners have a cache of their own, not an [auth.Cache] (which holds key
// records by hash): an owner is named by key records, not by whoever sends
// requests, so "no limits" is an answer kept for TTL like any other and
// needs no bound, and a query is per request, under its context. It shares
// the Store's health (RetryInterval, the log), generation and StaleWindow.
type ownerEntry struct {
	limits  *OwnerLimits
	rates   []ratelimit.Rate
	fetched time.Time
}

// OwnerLimits returns the allowance of owner, nil when it has none, served
// from memory like keys: asked of the database at most once per owner per
// TTL, dropped from the cache by the poll when an [Admin] changes it. While
// the database fails, a cached answer is served for StaleWindow past its
// TTL; past that, or for an owner never cached, it returns an error. The
// result is shared: do not modify it. The cache holds one entry per owner
// asked about; owners are named by key records, not by callers.
func (s *Store) OwnerLimits(ctx context.Context, owner string) (*OwnerLimits, error) {
	e, err := s.owner(ctx, owner)
	return e.limits, err
}

// OwnerRates is the root package's Config.Owners over the database: the
// [OwnerLimits.Rates] of owner, served from the cache as [Store.OwnerLimits]
// is and made once per fetch, so that a request of an owner's key does not
// allocate them. It is nil when owner has no allowance, and while the
// database fails past StaleWindow (the owner's keys keep their own limits).
// The result is shared: do not modify it.
func (s *Store) OwnerRates(ctx context.Context, owner string) []ratelimit.Rate {
	e, err := s.owner(ctx, owner)
	if err != nil {
		return nil
	}
	return e.rates
}

// owner is OwnerLimits' and OwnerRates' answer for owner.
func (s *Store) owner(ctx context.Context, owner string) (ownerEntry, error) {
	now := s.cfg.Now()
	s.mu.Lock()
	e, ok := s.owners[owner]
	gen := s.gen
	downUntil := s.downUntil
	s.mu.Unlock()
	if ok && now.Before(e.fetched.Add(s.cfg.TTL)) {
		return e, nil
	}
	stale := func(cause error) (ownerEntry, error) {
		if ok && s.cfg.StaleWindow > 0 && now.Before(e.fetched.Add(s.cfg.TTL+s.cfg.StaleWindow)) {
			s.stale.Add(1)
			return e, nil
		}
		return ownerEntry{}, fmt.Errorf("sqlstore: owner limits: %w: %v", auth.ErrStoreUnavailable, cause)
	}
	if now.Before(downUntil) {
		return stale(errors.New("database failed recently"))
	}
	s.lookups.Add(1)
	qctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	o, err := scanOwner(s.db.QueryRowContext(qctx, s.q.ownerByName, owner))
	fetched := ownerEntry{fetched: now}
	switch {
	case err == nil:
		fetched.limits, fetched.rates = &o, o.Rates()
	case errors.Is(err, sql.ErrNoRows):
	case ctx.Err() != nil:
		return ownerEntry{}, ctx.Err()
	default:
		s.mu.Lock()
		s.failed(now, err)
		s.mu.Unlock()
		return stale(err)
	}
	s.mu.Lock()
	s.recovered()
	// An invalidation during the query may concern what it read: answer
	// with it but do not cache it.
	if s.gen == gen && s.cfg.TTL > 0 {
		s.owners[owner] = fetched
	}
	s.mu.Unlock()
	return fetched, nil
}
