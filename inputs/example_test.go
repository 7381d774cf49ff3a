package inputs_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/inputs"
)

// The inputs check behind auth's key and product checks: the product handler
// sees the key, the product, the parsed inputs and the whole body.
func ExampleMiddleware() {
	plaintext, key := auth.NewKey()
	key.Products = []string{"quote"}
	keys := auth.NewMemoryStore(key)
	products := auth.NewMemoryCatalog(
		auth.Product{Slug: "quote", Active: true, Required: []string{"Premium"}},
		auth.Product{Slug: "claims", Active: true},
	)

	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.ProductFrom(r.Context())
		in, _ := inputs.From(r.Context())
		var premium int
		json.Unmarshal(in["Premium"], &premium)
		fmt.Fprintf(w, "%s: premium %d, %d bytes of body\n", p.Slug, premium, r.ContentLength)
	})
	mux := http.NewServeMux()
	mux.Handle("POST /api/{productSlug}",
		auth.Middleware(auth.Config{Store: keys})(
			auth.Products(auth.ProductConfig{Catalog: products})(
				inputs.Middleware(inputs.Config{})(backend))))

	for _, c := range []struct{ path, body string }{
		{"/api/quote", `{"inputs": {"Premium": 100000}}`},
		{"/api/quote", `{"inputs": {}}`},
		{"/api/quote", `{"Premium": 100000}`},
		{"/api/claims", `{"inputs": {}}`},
		{"/api/nope", `{"inputs": {}}`},
	} {
		req := httptest.NewRequest("POST", c.path, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", plaintext)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	// Output:
	// 200 quote: premium 100000, 31 bytes of body
	// 400 {"error":"Missing required input field: Premium"}
	// 400 {"error":"Missing inputs object"}
	// 403 {"error":"Your API key does not have access to this product"}
	// 404 {"error":"Product not found"}
}
