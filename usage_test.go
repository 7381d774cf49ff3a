package gatehouse

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-go/gatehouse/auth"
)

// use is one request a UsageRecorder was told.
type use struct {
	keyID, owner, product string
	status, cost          int
}

// recorder is a UsageRecorder that keeps what it is told.
type recorder struct {
	mu   sync.Mutex
	uses []use
}

func (r *recorder) Record(keyID, owner, product string, status, cost int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.uses = append(r.uses, use{keyID, owner, product, status, cost})
}

// take returns what r was told since the last take.
func (r *recorder) take() []use {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.uses
	r.uses = nil
	return out
}

// TestUsageRecorded: Config.Usage is told, once answered, every request the
// rate limit charged, with the key's id and owner, the product slug, the
// status the caller got and the cost: 200, a format's cost, the upstream's
// 502, 404 for an unknown product and 403 for one the key may not use (each
// cost 1), 500 for a handler that panicked; and nothing for a request
// refused with 401 or 429.
// (b's 4 a minute: 403 spends 3, then 200 spends 1, then 429.)
func TestUsageRecorded(t *testing.T) {
	plainA, a := auth.NewKey()
	a.Owner, a.Products, a.PerMinute, a.PerDay = "acme", []string{"quote", "broken", "boom"}, 100, 1000
	plainB, b := auth.NewKey()
	b.Owner, b.Products, b.PerMinute, b.PerDay = "globex", []string{"quote"}, 4, 1000
	rec := &recorder{}
	srv := httptest.NewServer(mustNew(t, Config{
		Auth: auth.Config{Store: auth.NewMemoryStore(a, b)},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(
			auth.Product{Slug: "quote", Active: true, FormatCosts: map[string]int{"pdf": 10}},
			auth.Product{Slug: "broken", Active: true, Cost: 3},
			auth.Product{Slug: "boom", Active: true},
		)},
		Product: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, _ := auth.ProductFrom(r.Context())
			switch p.Slug {
			case "broken":
				w.WriteHeader(http.StatusBadGateway)
			case "boom":
				panic("boom")
			}
		}),
		Usage:  rec,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}))
	defer srv.Close()
	for _, c := range []struct {
		key, target string
		status      int
		want        []use
	}{
		{plainA, "/api/quote", 200, []use{{a.ID, "acme", "quote", 200, 1}}},
		{plainA, "/api/quote?format=pdf", 200, []use{{a.ID, "acme", "quote", 200, 10}}},
		{plainA, "/api/broken", 502, []use{{a.ID, "acme", "broken", 502, 3}}},
		{plainA, "/api/nope", 404, []use{{a.ID, "acme", "nope", 404, 1}}},
		{plainA, "/api/boom", 500, []use{{a.ID, "acme", "boom", 500, 1}}},
		{plainB, "/api/broken", 403, []use{{b.ID, "globex", "broken", 403, 3}}},
		{plainB, "/api/quote", 200, []use{{b.ID, "globex", "quote", 200, 1}}},
		{plainB, "/api/quote", 429, nil}, // 3 + 1 spent of 4 a minute
		{"gh_not_a_key", "/api/quote", 401, nil},
	} {
		req, _ := http.NewRequest("POST", srv.URL+c.target, strings.NewReader(`{"inputs":{}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", c.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s: %d, want %d", c.target, resp.StatusCode, c.status)
		}
		if got := rec.take(); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s answered %d: told %+v, want %+v", c.target, c.status, got, c.want)
		}
	}
}

// count is a UsageRecorder that only counts, allocating nothing.
type count struct{ n int }

func (c *count) Record(string, string, string, int, int) { c.n++ }

// TestUsageRecordAllocatesOne: telling a recorder about a request costs the
// request path one allocation, the writer wrapper that learns the status;
// without Config.Usage, none.
func TestUsageRecordAllocatesOne(t *testing.T) {
	plain, k := auth.NewKey()
	k.Products = []string{"quote"}
	for _, c := range []struct {
		usage UsageRecorder
		want  float64
	}{{&count{}, 1}, {nil, 0}} {
		cfg := Config{
			Auth:     auth.Config{Store: auth.NewMemoryStore(k)},
			Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true})},
			Usage:    c.usage,
		}.withDefaults()
		h := cfg.recordUsage(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
		var allocs float64
		check := auth.Middleware(cfg.Auth)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.SetPathValue("productSlug", "quote")
			allocs = testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) })
		}))
		req := httptest.NewRequest("POST", "/api/quote", nil)
		req.Header.Set("X-API-Key", plain)
		check.ServeHTTP(httptest.NewRecorder(), req)
		if allocs != c.want {
			t.Errorf("Usage %T: %v allocations a request, want %v", c.usage, allocs, c.want)
		}
	}
}
