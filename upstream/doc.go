// Package upstream is the far side of a gatehouse stack: it forwards each
// product's requests to the service that computes them, translates that
// service's failures into the answers of the API's contract (docs/contract.md
// in the repository), reports health, and gives Go callers that contract's
// retry rules as an http.RoundTripper.
//
//	p, err := upstream.NewProxy(upstream.Target{URL: "http://127.0.0.1:9000/quote",
//		Header: http.Header{"Authorization": {"Bearer " + secret}}})
//	mux.Handle("POST /api/quote", p)          // 401/403 → 502; down, slow, 429, 503 → 503 + Retry-After
//	health := upstream.NewHealth(upstream.HealthConfig{}); health.Set(map[string]upstream.Target{"quote": t})
//	client := &http.Client{Transport: &upstream.Transport{}} // paces on X-RateLimit-*, retries 429, 503, 500 as the contract says
package upstream
