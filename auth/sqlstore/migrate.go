package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"
)

// migrations are the schema's versions, applied in the order of their number
// (0001_keys.sql is version 1). A version, once released, is never edited: a
// change is a new file.
//
//go:embed migrations/*.sql
var migrations embed.FS

// Migrate brings db's schema to the newest version this package knows,
// applying each missing migration in its own transaction and recording it in
// gatehouse_schema_migrations. It is safe to call on every start and from
// several replicas at once: each step, from the creation of
// gatehouse_schema_migrations on, holds a lock (PostgreSQL's advisory lock,
// SQLite's write lock), so that a replica starting with another waits for it.
func Migrate(ctx context.Context, db *sql.DB) error {
	d, err := dialectOf(db)
	if err != nil {
		return err
	}
	// CREATE TABLE IF NOT EXISTS is not safe to run concurrently on
	// PostgreSQL (two sessions can both find no table, and one fails on the
	// catalog's unique index): it runs under the lock too.
	err = locked(ctx, db, d, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS gatehouse_schema_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at BIGINT NOT NULL
)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	slices.Sort(files)
	for _, f := range files {
		base := strings.TrimPrefix(f, "migrations/")
		num, _, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return fmt.Errorf("sqlstore: migration %s: name must start with its number", base)
		}
		text, err := migrations.ReadFile(f)
		if err != nil {
			return err
		}
		if err := apply(ctx, db, d, v, string(text)); err != nil {
			return fmt.Errorf("sqlstore: migration %s: %w", base, err)
		}
	}
	return nil
}

// apply runs migration v in one transaction unless it is already recorded.
func apply(ctx context.Context, db *sql.DB, d dialect, v int, text string) error {
	return locked(ctx, db, d, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, d.rebind(`SELECT COUNT(*) FROM gatehouse_schema_migrations WHERE version = ?`), v).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		for _, stmt := range statements(text) {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO gatehouse_schema_migrations (version, applied_at) VALUES (?, ?)`), v, time.Now().UnixMilli())
		return err
	})
}

// locked runs f in a transaction that holds the schema's lock from its
// start, and commits it: replicas starting together wait there for one
// another. On PostgreSQL the lock is an advisory lock held until the
// transaction ends; on SQLite it is the write lock, which a transaction of a
// database opened by [Open] takes at BEGIN.
func locked(ctx context.Context, db *sql.DB, d dialect, f func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if d == postgresDialect {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7261636874)`); err != nil {
			return err
		}
	}
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// statements splits a migration into its statements: they end with ";" at the
// end of a line; lines starting with "--" are comments.
func statements(text string) []string {
	var out []string
	var cur strings.Builder
	for line := range strings.Lines(text) {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		cur.WriteString(line)
		if strings.HasSuffix(strings.TrimSpace(line), ";") {
			if s := strings.TrimSpace(cur.String()); s != ";" {
				out = append(out, strings.TrimSuffix(s, ";"))
			}
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}
