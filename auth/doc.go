// Package auth checks the first things a keyed, per-product API asks of a
// request: its API key (401), its product (404, 403) and its inputs (400,
// 413, 415), each a plain net/http middleware that writes its refusals
// through errorsjson. It does five jobs, one or two files each:
//
//   - Keys (key.go): the [Key] record, the public [Format] of plaintext keys
//     (ila_, 32 base62 characters, a 6-character checksum), minting with
//     [NewKey], and the SHA-256 hash ([HashKey]) stores index keys by; the
//     plaintext is shown once to its owner and never stored. The key check
//     itself is [Middleware] (middleware.go).
//   - Stores (store.go, cache.go): the [Store] interface the key check asks,
//     [MemoryStore], and [Cache] in front of a slow Store.
//   - The failed-key throttle (throttle.go): [Throttle], off by
//     default, slows clients that send failing keys (429) without slowing
//     valid keys; a clientaddr.Source says which address a request comes from.
//   - Products (product.go): the [Catalog] interface, [MemoryCatalog], and
//     the [Products] middleware.
//   - Inputs (inputs.go, scanner.go): the [Inputs] middleware, which reads the
//     body within a bound and checks it as encoding/json would decode it, with
//     a scanner of its own.
//
// Used together, in this order:
//
//	keys := auth.NewMemoryStore(key) // or auth.NewCache(yourStore, auth.CacheConfig{})
//	products := auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true, Required: []string{"Premium"}})
//	h := auth.Middleware(auth.Config{Store: keys})(
//		auth.Products(auth.ProductConfig{Catalog: products})(auth.Inputs(auth.InputConfig{})(backend)))
//	mux.Handle("POST /api/{productSlug}", h)
//
// Handlers below read what the checks found with [KeyFrom], [ProductFrom] and
// [InputsFrom]: one context value that the three checks share, so that a
// request is copied once rather than three times (found.go says why and what
// it costs).
//
// What an upstream decodes is what [Inputs] checked: it refuses (400) a body
// in which two member names, of the body's object or of its inputs object,
// are equal under the case folding with which encoding/json matches names to
// struct fields ("Inputs" and "inputs", "Premium" and "premium", "ſ" and "s"),
// exact repeats included, and forwards the body's bytes unchanged. Its buffer
// grows with the bytes that arrive, never with the Content-Length announced.
// See docs/inputs.md.
//
// A configuration that cannot work (a Config without a Store, a ProductConfig
// without a Catalog, NewCache of a nil store, a nil handler to wrap) makes the
// constructor panic when it is called, with the error of [Config.Validate] or
// [ProductConfig.Validate]: never a handler that answers 401 or 404 to every
// request. docs/adopting.md in the repository gives the rule, the same in
// every package of gatehouse.
package auth
