// Package gatehouse puts the front door of a keyed, per-product API (API
// keys, rate limits, product authorization, input checks, forwarding) in
// front of a net/http handler. It composes five packages that each also work
// alone:
//
//	errorsjson  one JSON error shape, request ids, panic recovery
//	auth        API keys (ila_…), key stores and cache, failed-key throttle, products
//	inputs      the request body: JSON, within a bound, with the product's required inputs
//	ratelimit   per-key per-minute and per-day limits with X-RateLimit-* headers
//	upstream    forwarding to each product's upstream, health, a retrying client
//
// [Middleware] stacks the per-request checks in the contract's order
// (docs/contract.md, docs/checks.md) in front of a product handler, and [New]
// builds a whole server handler with GET /health and POST /api/{productSlug}:
//
//	h, err := gatehouse.New(gatehouse.Config{
//		Auth:     auth.Config{Store: auth.NewMemoryStore(key)},
//		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(product)},
//		Product:  backend, // an upstream.Proxy, or any http.Handler
//	})
//	if err != nil {
//		log.Fatal(err) // a Config that cannot work: no key store, catalog or product handler
//	}
//	http.ListenAndServe("127.0.0.1:8080", h)
//
// [Config] holds each package's own config under its own name (Auth,
// RateLimit, Products, Inputs); its Logger and Now reach every layer that sets
// none of its own. New and Middleware return every reason a Config cannot
// work, each the error its layer's own Validate gives (the one the layer's
// constructor panics with, used alone), rather than a handler that fails at
// request time; docs/adopting.md in the repository gives the rule, the same
// in every package of gatehouse.
//
// The checks run in this order, and the first that fails answers:
//
//  1. key: missing → 401 "No API key provided"; malformed, unknown, disabled or
//     expired → 401 "Invalid or inactive API key"
//  2. the key's rate limit, per minute and per day → 429 with Retry-After
//  3. product: unknown or inactive → 404; key not scoped to it → 403
//  4. body: not JSON, no inputs object, a required field absent → 400; too large → 413;
//     Content-Type not JSON → 415
//  5. the product handler (upstream: 502 for its auth failures, 503 when unavailable)
//
// Every response to a request with a valid key carries X-RateLimit-Limit,
// X-RateLimit-Remaining, X-RateLimit-Daily-Limit and X-RateLimit-Daily-Remaining,
// because the limiter sets them before any later check can answer.
package gatehouse
