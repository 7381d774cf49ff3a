package auth_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"time"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/clientaddr"
)

// Mint a key: show the plaintext once to its owner, store only the record.
func ExampleNewKey() {
	plaintext, key := auth.NewKey()
	key.Name = "Acme Insurance"
	key.Products = []string{"quote"}
	key.PerMinute = 120

	fmt.Println(strings.HasPrefix(plaintext, "ila_"), len(plaintext))
	fmt.Println(auth.Format{}.Check(plaintext))
	fmt.Println(key.Hash == auth.HashKey(plaintext), len(key.HashHex()))
	// Output:
	// true 42
	// <nil>
	// true 64
}

// A typo is caught by the key's checksum, before any store is asked.
func ExampleFormat_Check() {
	fmt.Println(auth.Format{}.Check("ila_00000000000000000000000000000000000000"))
	fmt.Println(auth.Format{}.Check("sk_live_abc"))
	// Output:
	// auth: API key checksum mismatch
	// auth: malformed API key
}

// The key middleware on a ServeMux route.
func ExampleMiddleware() {
	plaintext, key := auth.NewKey()
	key.ID = "key_demo"
	keys := auth.NewMemoryStore(key)

	mux := http.NewServeMux()
	mux.Handle("GET /whoami", auth.Middleware(auth.Config{Store: keys})(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			k, _ := auth.KeyFrom(r.Context())
			fmt.Fprintln(w, "hello", k.ID)
		})))

	for _, header := range []string{"Bearer " + plaintext, ""} {
		req := httptest.NewRequest("GET", "/whoami", nil)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	// Output:
	// 200 hello key_demo
	// 401 {"error":"No API key provided"}
}

// A Cache in front of a slow store; a MemoryStore stands in for it here.
func ExampleNewCache() {
	plaintext, key := auth.NewKey()
	var slow auth.Store = auth.NewMemoryStore(key)
	keys := auth.NewCache(slow, auth.CacheConfig{}) // 30s TTL, 5s for unknown keys
	h := auth.Middleware(auth.Config{Store: keys})(http.NotFoundHandler())

	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-API-Key", plaintext)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	// Output:
	// 404
}

// A Throttle allows each client address a few failed key attempts, then
// answers its guesses 429 until an attempt comes back; a valid key seen before
// still passes from that address. Behind a proxy, name its header and address.
func ExampleThrottle() {
	plaintext, key := auth.NewKey()
	throttle := auth.NewThrottle(auth.ThrottleConfig{
		Attempts: 3,
		Per:      time.Minute, // one attempt back every 20 s
		Client: clientaddr.Source{
			Header:         "X-Forwarded-For",
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		},
	})
	h := auth.Middleware(auth.Config{Store: auth.NewMemoryStore(key), Throttle: throttle})(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }))

	call := func(key string) {
		req := httptest.NewRequest("POST", "/", nil)
		req.RemoteAddr = "10.1.2.3:41000"                // the proxy...
		req.Header.Set("X-Forwarded-For", "203.0.113.7") // ...for this client
		req.Header.Set("X-API-Key", key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Print(rec.Code, " ", rec.Header().Get("Retry-After"), " ", rec.Body.String())
	}
	call(plaintext)
	for range 4 {
		guess, _ := auth.NewKey()
		call(guess)
	}
	call(plaintext)
	// Output:
	// 200  ok
	// 401  {"error":"Invalid or inactive API key"}
	// 401  {"error":"Invalid or inactive API key"}
	// 401  {"error":"Invalid or inactive API key"}
	// 429 20 {"error":"Rate limit exceeded"}
	// 200  ok
}

// A product whose PDF costs ten requests' worth: ?format=pdf spends 10 tokens,
// any other format (or none) the product's Cost, and a repeated parameter
// its dearest value.
func ExampleProduct_QueryCost() {
	p := auth.Product{Slug: "quote", Active: true, Cost: 2, FormatCosts: map[string]int{"pdf": 10}}
	fmt.Println(p.QueryCost(""), p.QueryCost("format=json"), p.QueryCost("format=pdf"), p.QueryCost("format=json&format=pdf"))
	// Output: 2 2 10 10
}

// Products lets a key through only to an active product it is scoped to,
// named by the route's {productSlug}; the handler finds the product with
// ProductFrom.
func ExampleProducts() {
	plaintext, key := auth.NewKey()
	key.Products = []string{"quote"}
	catalog := auth.NewMemoryCatalog(
		auth.Product{Slug: "quote", Active: true},
		auth.Product{Slug: "claims", Active: true},
		auth.Product{Slug: "legacy", Active: false},
	)
	checks := func(h http.Handler) http.Handler {
		return auth.Middleware(auth.Config{Store: auth.NewMemoryStore(key)})(auth.Products(auth.ProductConfig{Catalog: catalog})(h))
	}
	mux := http.NewServeMux()
	mux.Handle("POST /api/{productSlug}", checks(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.ProductFrom(r.Context())
		fmt.Fprintln(w, "computing", p.Slug)
	})))

	for _, slug := range []string{"quote", "claims", "legacy", "nothing"} {
		r := httptest.NewRequest("POST", "/api/"+slug, nil)
		r.Header.Set("Authorization", "Bearer "+plaintext)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Print(slug, " ", w.Code, " ", w.Body.String()) // the bodies end in a newline
	}
	// Output:
	// quote 200 computing quote
	// claims 403 {"error":"Your API key does not have access to this product"}
	// legacy 404 {"error":"Product not found"}
	// nothing 404 {"error":"Product not found"}
}
