package auth

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/authtest"
)

// t0 is the tests' fixed "now".
var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return t0 }

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// assertError checks that rec holds the JSON error shape with status and msg.
func assertError(t *testing.T, rec *httptest.ResponseRecorder, status int, msg string) {
	t.Helper()
	authtest.AssertError(t, rec, status, msg)
}

// okHandler answers 200 "ok" and records that it ran.
type okHandler struct{ calls int }

func (h *okHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.calls++
	io.WriteString(w, "ok")
}

// keysOf returns the records s holds, sorted by ID.
func keysOf(s *MemoryStore) []Key {
	var keys []Key
	for _, k := range s.keys.load().toMap() {
		keys = append(keys, *k)
	}
	slices.SortFunc(keys, func(a, b Key) int { return strings.Compare(a.ID, b.ID) })
	return keys
}

// productsOf returns the products c holds, sorted by slug.
func productsOf(c *MemoryCatalog) []Product {
	var products []Product
	for _, p := range c.products.all() {
		products = append(products, *p)
	}
	slices.SortFunc(products, func(a, b Product) int { return strings.Compare(a.Slug, b.Slug) })
	return products
}
