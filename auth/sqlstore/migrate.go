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
// several replicas at once (PostgreSQL serialises them with an advisory lock;
// SQLite with its write lock).
func Migrate(ctx context.Context, db *sql.DB) error {
	d, err := dialectOf(db)
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS gatehouse_schema_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at BIGINT NOT NULL
)`); err != nil {
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
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if d == postgresDialect {
		// Replicas starting together wait here for the first to finish.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7261636874)`); err != nil {
			return err
		}
	}
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
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO gatehouse_schema_migrations (version, applied_at) VALUES (?, ?)`), v, time.Now().UnixMilli()); err != nil {
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
