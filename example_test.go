package gatehouse_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/errorsjson"
)

// New builds a whole gateway: here a caller with a key gets the product, one
// without gets the contract's 401.
func ExampleNew() {
	plaintext, key := auth.NewKey() // give plaintext to the caller; store key (its hash)
	key.Products = []string{"quote"}

	h, err := gatehouse.New(gatehouse.Config{
		Auth:     auth.Config{Store: auth.NewMemoryStore(key)},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true, Required: []string{"Premium"}})},
		Product: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"status":200,"response_data":{"outputs":{"Quote":42}}}`)
		}),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err) // an incomplete Config: no key store, catalog or product handler
	}

	for _, k := range []string{plaintext, ""} {
		r := httptest.NewRequest("POST", "/api/quote", strings.NewReader(`{"inputs":{"Premium":1200}}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Request-ID", "example")
		if k != "" {
			r.Header.Set("Authorization", "Bearer "+k)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Header().Get("X-RateLimit-Remaining"), strings.TrimSpace(w.Body.String()))
	}
	// Output:
	// 200 59 {"status":200,"response_data":{"outputs":{"Quote":42}}}
	// 401  {"error":"No API key provided","request_id":"example"}
}

// Middleware puts the same checks in front of a route of your own mux.
func ExampleMiddleware() {
	_, key := auth.NewKey()
	checks, err := gatehouse.Middleware(gatehouse.Config{
		Auth:     auth.Config{Store: auth.NewMemoryStore(key)},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true})},
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /v2/products/{productSlug}", checks(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, _ := auth.KeyFrom(r.Context())
		fmt.Fprintln(w, "hello", k.ID)
	})))

	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("POST", "/v2/products/quote", nil))
	fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
	// Output:
	// 401 {"error":"No API key provided"}
}

// RequestLog gives a stack of your own New's request line; here without the
// time and duration, which change from run to run.
func ExampleRequestLog() {
	_, key := auth.NewKey()
	checks, err := gatehouse.Middleware(gatehouse.Config{
		Auth:     auth.Config{Store: auth.NewMemoryStore(key)},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true})},
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /v2/{productSlug}", checks(http.NotFoundHandler()))
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "duration" {
				return slog.Attr{}
			}
			return a
		},
	}))
	h := errorsjson.RequestID(gatehouse.RequestLog(logger)(mux))

	r := httptest.NewRequest("POST", "/v2/quote", nil)
	r.Header.Set("X-Request-ID", "req-1")
	h.ServeHTTP(httptest.NewRecorder(), r)
	// Output:
	// level=INFO msg=request request_id=req-1 method=POST path=/v2/quote key_id="" product="" status=401 bytes=53
}
