package gatehouse

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-go/gatehouse/auth"
)

// TestUpstreamsNoHandler: a product the catalog holds but Upstreams has no
// handler for gets the contract's 503, with Retry-After like every other 503,
// over a real socket.
func TestUpstreamsNoHandler(t *testing.T) {
	plain, rec := auth.NewKey()
	rec.Products = []string{"*"}
	var ups Upstreams
	ups.Set(map[string]http.Handler{"quote": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") })})
	srv := httptest.NewServer(mustNew(t, Config{
		Auth:     auth.Config{Store: auth.NewMemoryStore(rec)},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true}, auth.Product{Slug: "pdf", Active: true})},
		Product:  &ups,
		Logger:   discardLogger(),
	}))
	defer srv.Close()
	for _, tt := range []struct {
		slug, body, retryAfter string
		status                 int
	}{
		{"quote", "{}", "", 200},
		{"pdf", `{"error":"Upstream service temporarily unavailable","request_id":"u1"}` + "\n", "5", 503},
	} {
		req, _ := http.NewRequest("POST", srv.URL+"/api/"+tt.slug, strings.NewReader(`{"inputs":{}}`))
		req.Header.Set("X-API-Key", plain)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Request-ID", "u1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || string(b) != tt.body || resp.Header.Get("Retry-After") != tt.retryAfter {
			t.Errorf("%s: %d %q Retry-After %q, want %d %q %q", tt.slug, resp.StatusCode, b, resp.Header.Get("Retry-After"), tt.status, tt.body, tt.retryAfter)
		}
	}
}
