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
	"github.com/gatehouse-go/gatehouse/ratelimit"
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

// Upstreams sends each product's requests to that product's handler (an
// upstream.Proxy, typically), and can be given a new set at run time; a
// product without one gets 503 with Retry-After.
func ExampleUpstreams() {
	plaintext, key := auth.NewKey()
	key.Products = []string{"quote", "claims"}
	upstreams := &gatehouse.Upstreams{}
	upstreams.Set(map[string]http.Handler{
		"quote": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"quote":42}`) }),
	})
	h, err := gatehouse.New(gatehouse.Config{
		Auth: auth.Config{Store: auth.NewMemoryStore(key)},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(
			auth.Product{Slug: "quote", Active: true},
			auth.Product{Slug: "claims", Active: true},
		)},
		Product: upstreams,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	for _, slug := range []string{"quote", "claims"} {
		r := httptest.NewRequest("POST", "/api/"+slug, strings.NewReader(`{"inputs":{}}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+plaintext)
		r.Header.Set("X-Request-ID", "example")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(slug, w.Code, w.Header().Get("Retry-After"), w.Body.String())
	}
	// Output:
	// quote 200  {"quote":42}
	// claims 503 5 {"error":"Upstream service temporarily unavailable","request_id":"example"}
}

// Each layer is told what it decides through the Observe field of its own
// config, and the root's Observe each request New answers: here the key
// checks, the rate-limit decisions and the requests, printed.
// promgatehouse's Metrics has a method for each field, to count them instead.
func ExampleConfig_observe() {
	plaintext, key := auth.NewKey()
	key.Products = []string{"quote"}
	key.PerMinute = 1
	h, err := gatehouse.New(gatehouse.Config{
		Auth: auth.Config{
			Store:   auth.NewMemoryStore(key),
			Observe: func(e auth.Event) { fmt.Println("key:", e.Result) },
		},
		RateLimit: ratelimit.Config{
			Observe: func(e ratelimit.Event) { fmt.Printf("rate limit: %v %q\n", e.Result, e.Window) },
		},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true})},
		Product:  http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		Observe:  func(e gatehouse.RequestEvent) { fmt.Println("request:", e.Product, e.Status) },
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	for range 2 {
		r := httptest.NewRequest("POST", "/api/quote", strings.NewReader(`{"inputs":{}}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+plaintext)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	// Output:
	// key: KeyValid
	// rate limit: Passed ""
	// request: quote 200
	// key: KeyValid
	// rate limit: Refused "minute"
	// request: quote 429
}
