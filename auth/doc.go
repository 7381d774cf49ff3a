// Package auth checks the first things a keyed, per-product API asks of a
// request: its API key (401) and its product (404, 403), each a plain
// net/http middleware that writes its refusals through errorsjson. It does
// four jobs, one or two files each:
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
//     the [Products] middleware, which authorizes the key for the product.
//
// The request body (400, 413, 415) is checked by package
// github.com/gatehouse-go/gatehouse/inputs, whose required fields are by
// default those of the product [Products] found. Used together, in this order:
//
//	keys := auth.NewMemoryStore(key) // or auth.NewCache(yourStore, auth.CacheConfig{})
//	products := auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true, Required: []string{"Premium"}})
//	h := auth.Middleware(auth.Config{Store: keys})(
//		auth.Products(auth.ProductConfig{Catalog: products})(inputs.Middleware(inputs.Config{})(backend)))
//	mux.Handle("POST /api/{productSlug}", h)
//
// Handlers below read what the checks found with [KeyFrom], [ProductFrom]
// and inputs.From: one context value that the checks share, so that a request
// is copied once rather than three times (package internal/found says why and
// what it buys).
//
// A configuration that cannot work (a Config without a Store, a ProductConfig
// without a Catalog, NewCache of a nil store, a nil handler to wrap) makes the
// constructor panic when it is called, with the error of [Config.Validate] or
// [ProductConfig.Validate]: never a handler that answers 401 or 404 to every
// request. docs/adopting.md in the repository gives the rule, the same in
// every package of gatehouse.
package auth
