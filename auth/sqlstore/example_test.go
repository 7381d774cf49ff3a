package sqlstore_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
)

// Keys in a SQLite file: migrate, create a key, and serve keys from the
// database: the key's request passes, a made-up key's does not. With
// PostgreSQL, only the URL changes.
func Example() {
	dir, _ := os.MkdirTemp("", "sqlstore-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	db, err := sqlstore.Open("sqlite:" + filepath.Join(dir, "keys.db")) // or "postgres://…"
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if err := sqlstore.Migrate(ctx, db); err != nil {
		log.Fatal(err)
	}

	admin, err := sqlstore.NewAdmin(db, sqlstore.AdminConfig{})
	if err != nil {
		log.Fatal(err)
	}
	// As names who makes the change, for the audit trail: a change without
	// an actor is refused.
	plaintext, key, err := admin.As("alice").Create(ctx, sqlstore.Spec{
		Name:      "ci",
		Owner:     "acme",
		Products:  []string{"quote"},
		PerMinute: 60,
		PerDay:    10_000,
	})
	if err != nil {
		log.Fatal(err)
	}
	// plaintext is for the customer: it is shown once, and only its SHA-256
	// is stored.

	store, err := sqlstore.New(db, sqlstore.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close() // stops the change poll, writes the last counts of use

	handler, err := gatehouse.New(gatehouse.Config{
		Auth:     auth.Config{Store: store},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true})},
		// Your upstreams, counting the requests let through.
		Product: store.CountUse(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"quote":42}`) })),
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}

	fmt.Println(key.Owner, key.Products)
	madeUp, _ := auth.NewKey()
	for _, k := range []string{plaintext, madeUp} {
		r := httptest.NewRequest("POST", "/api/quote", strings.NewReader(`{"inputs":{}}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+k)
		r.Header.Set("X-Request-ID", "example")
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Body.String())
	}
	// Output:
	// acme [quote]
	// 200 {"quote":42}
	// 401 {"error":"Invalid or inactive API key","request_id":"example"}
}

// A rotation: the new key is shown once; the old one keeps working for an
// hour, and both spend one allowance.
func ExampleAdmin_Rotate() {
	dir, _ := os.MkdirTemp("", "sqlstore-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	db, _ := sqlstore.Open("sqlite:" + filepath.Join(dir, "keys.db"))
	defer db.Close()
	sqlstore.Migrate(ctx, db)
	admin, _ := sqlstore.NewAdmin(db, sqlstore.AdminConfig{})
	_, old, _ := admin.As("alice").Create(ctx, sqlstore.Spec{Owner: "acme", Products: []string{"quote"}})

	newPlaintext, rotated, err := admin.As("alice").Rotate(ctx, old.ID, time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	_ = newPlaintext // give it to the customer

	fmt.Println(rotated.Allowance == old.ID)
	// Output: true
}

// The keys of one customer, with their last use.
func ExampleAdmin_List() {
	dir, _ := os.MkdirTemp("", "sqlstore-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	db, _ := sqlstore.Open("sqlite:" + filepath.Join(dir, "keys.db"))
	defer db.Close()
	sqlstore.Migrate(ctx, db)
	admin, _ := sqlstore.NewAdmin(db, sqlstore.AdminConfig{})
	admin.As("alice").Create(ctx, sqlstore.Spec{Name: "ci", Owner: "acme", Products: []string{"quote"}})

	keys, err := admin.List(ctx, "acme")
	if err != nil {
		log.Fatal(err)
	}
	for _, k := range keys {
		fmt.Println(k.Name, k.Requests, k.LastUsedAt.IsZero())
	}
	// Output: ci 0 true
}
