package sqlstore_test

import (
	"context"
	"testing"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
)

// BenchmarkLookupCached compares a cached lookup of the SQL store with the
// memory store's lookup: the hot path of every request.
func BenchmarkLookupCached(b *testing.B) {
	ctx := context.Background()
	db, _ := openDB(b, "sqlite")
	plain, k, err := newAdmin(b, db, nil).Create(ctx, spec("acme", 1))
	if err != nil {
		b.Fatal(err)
	}
	hash := auth.HashKey(plain)
	stores := map[string]auth.Store{
		"memory":   auth.NewMemoryStore(k.Key),
		"sqlstore": newStore(b, db, sqlstore.Config{PollInterval: -1, FlushInterval: -1, Logger: quiet}),
	}
	for _, name := range []string{"memory", "sqlstore"} {
		s := stores[name]
		if _, err := s.Lookup(ctx, hash); err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Lookup(ctx, hash); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLookupUncached is a lookup that asks the database every time (TTL
// negative): what a key costs once per TTL.
func BenchmarkLookupUncached(b *testing.B) {
	for _, kind := range dialects {
		b.Run(kind, func(b *testing.B) {
			ctx := context.Background()
			db, _ := openDB(b, kind)
			plain, _, err := newAdmin(b, db, nil).Create(ctx, spec("acme", 1))
			if err != nil {
				b.Fatal(err)
			}
			hash := auth.HashKey(plain)
			s := newStore(b, db, sqlstore.Config{TTL: -1, PollInterval: -1, FlushInterval: -1, Logger: quiet})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Lookup(ctx, hash); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(s.Stats().Lookups)/float64(b.N), "queries/op")
		})
	}
}
