// Package sqlstore keeps gatehouse's API keys in PostgreSQL (through pgx's
// stdlib driver) or SQLite (modernc.org/sqlite, pure Go), with a lifecycle
// (create, list, show, update, disable, enable, delete, rotate), an audit
// trail of every change (who, when, each field before and after), a cached
// [auth.Store] that every replica keeps in step within a second, and the
// usage each key was charged for, counted exactly for billing ([Usage]).
//
//	db, _ := sqlstore.Open("sqlite:keys.db") // or "postgres://…"
//	_ = sqlstore.Migrate(ctx, db)
//	admin, _ := sqlstore.NewAdmin(db, sqlstore.AdminConfig{})
//	plaintext, key, _ := admin.As("alice").Create(ctx, sqlstore.Spec{Owner: "acme", Products: []string{"quote"}})
//	trail, _ := admin.Audit(ctx, sqlstore.AuditQuery{KeyID: key.ID})
//	store, _ := sqlstore.New(db, sqlstore.Config{})
//	usage, _ := sqlstore.NewUsage(db, sqlstore.UsageConfig{})
//	// gatehouse.Config{Auth: auth.Config{Store: store}, Usage: usage, Product: store.CountUse(upstreams)}
//
// Keys are stored by their SHA-256 only. See docs/keys.md for the schema, the
// audit trail, the revocation timing, the stale window and the behaviour when
// the database fails, and docs/usage.md for how usage is counted and exported.
package sqlstore
