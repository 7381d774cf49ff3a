package sqlstore_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
)

// Keys in a SQLite file: migrate, create a key, and serve keys from the
// database. With PostgreSQL, only the URL changes.
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
	plaintext, key, err := admin.Create(ctx, sqlstore.Spec{
		Name:      "ci",
		Owner:     "acme",
		Products:  []string{"quote"},
		PerMinute: 60,
		PerDay:    10_000,
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = plaintext // give it to the customer: it is shown once, and only its SHA-256 is stored

	store, err := sqlstore.New(db, sqlstore.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close() // stops the change poll, writes the last counts of use

	handler, err := gatehouse.New(gatehouse.Config{
		Auth:     auth.Config{Store: store},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true})},
		Product:  store.CountUse(http.NotFoundHandler()), // your upstreams, counting the requests let through
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = handler

	fmt.Println(key.Owner, key.Products)
	// Output: acme [quote]
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
	_, old, _ := admin.Create(ctx, sqlstore.Spec{Owner: "acme", Products: []string{"quote"}})

	newPlaintext, rotated, err := admin.Rotate(ctx, old.ID, time.Hour)
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
	admin.Create(ctx, sqlstore.Spec{Name: "ci", Owner: "acme", Products: []string{"quote"}})

	keys, err := admin.List(ctx, "acme")
	if err != nil {
		log.Fatal(err)
	}
	for _, k := range keys {
		fmt.Println(k.Name, k.Requests, k.LastUsedAt.IsZero())
	}
	// Output: ci 0 true
}
