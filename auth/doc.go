// Package auth checks the first things a keyed, per-product API asks of a
// request: its API key (401), its product (404, 403) and its inputs (400, 413),
// each a plain net/http middleware that writes its refusals through errorsjson:
//
//	keys := auth.NewMemoryStore(key)                      // or auth.NewCache(yourStore, auth.CacheConfig{})
//	products := auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true, Required: []string{"Premium"}})
//	h := auth.Middleware(auth.Config{Store: keys})(       // 401: no, malformed, unknown, disabled or expired key
//		auth.Products(auth.ProductConfig{Catalog: products})( // 404: unknown product; 403: key not scoped to it
//			auth.Inputs(auth.InputConfig{})(backend)))    // 400/413/415: the body; backend can still read it
//	mux.Handle("POST /api/{productSlug}", h)
//
// Handlers below read what the checks found with [KeyFrom], [ProductFrom] and
// [InputsFrom].
//
// What an upstream decodes is what [Inputs] checked: it refuses (400) a body
// in which two member names, of the body's object or of its inputs object,
// are equal under the case folding with which encoding/json matches names to
// struct fields ("Inputs" and "inputs", "Premium" and "premium", "ſ" and "s"),
// exact repeats included, and forwards the body's bytes unchanged. Its buffer
// grows with the bytes that arrive, never with the Content-Length announced.
// See docs/inputs.md.
//
// [Throttle], off by default, slows clients that send failing keys (429 once
// an address has spent its failed attempts) without slowing valid keys.
//
// Keys look like ila_ followed by 32 base62 characters and a 6-character
// checksum (see [Format]). [NewKey] mints one; stores hold only its SHA-256
// hash ([HashKey]), and the plaintext is shown once to its owner.
package auth
