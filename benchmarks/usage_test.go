package benchmarks

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
)

// BenchmarkGatewayUsage is the whole gateway handler (gatehouse.New: request
// id, checks, a product answering 200; no request log) serving one key in
// parallel, with Config.Usage off and on (a sqlstore.Usage on a SQLite file,
// writing every 10 s): what counting usage costs a request. run.sh reports
// the ratio of on to off.
func BenchmarkGatewayUsage(b *testing.B) {
	plain, k := auth.NewKey()
	k.Owner, k.Products, k.PerMinute, k.PerDay = "acme", []string{"quote"}, 1_000_000_000, 1_000_000_000
	db, err := sqlstore.Open("sqlite:" + filepath.Join(b.TempDir(), "keys.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := sqlstore.Migrate(b.Context(), db); err != nil {
		b.Fatal(err)
	}
	for _, on := range []bool{false, true} {
		name := "off"
		cfg := gatehouse.Config{
			Auth:     auth.Config{Store: auth.NewMemoryStore(k)},
			Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true})},
			Product:  http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{}`) }),
			Logger:   slog.New(slog.DiscardHandler),
		}
		if on {
			name = "on"
			u, err := sqlstore.NewUsage(db, sqlstore.UsageConfig{})
			if err != nil {
				b.Fatal(err)
			}
			defer u.Close()
			cfg.Usage = u
		}
		h, err := gatehouse.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r := httptest.NewRequest("POST", "/api/quote", strings.NewReader(`{"inputs":{}}`))
					r.Header.Set("X-API-Key", plain)
					r.Header.Set("Content-Type", "application/json")
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					if w.Code != 200 {
						b.Fatalf("%d %s", w.Code, w.Body)
					}
				}
			})
		})
	}
}
