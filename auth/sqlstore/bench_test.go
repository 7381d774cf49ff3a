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

// BenchmarkLookup100Keys spreads lookups over 100 keys with the default TTL
// (60s) and reports the queries made per 10,000 lookups: about 100 per TTL in
// all, whatever b.N is, so the figure falls as b.N grows. TestQueriesPerTTL
// asserts the exact count with a fixed clock.
func BenchmarkLookup100Keys(b *testing.B) {
	ctx := context.Background()
	db, _ := openDB(b, "sqlite")
	a := newAdmin(b, db, nil)
	var hashes [][32]byte
	for i := range 100 {
		plain, _, err := a.Create(ctx, spec("acme", i))
		if err != nil {
			b.Fatal(err)
		}
		hashes = append(hashes, auth.HashKey(plain))
	}
	s := newStore(b, db, sqlstore.Config{PollInterval: -1, FlushInterval: -1, Logger: quiet})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Lookup(ctx, hashes[i%100]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(s.Stats().Lookups), "queries")
	b.ReportMetric(float64(s.Stats().Lookups)*10_000/float64(b.N), "queries/10k-lookups")
}
