package gatehouse

import (
	"net/http"

	"github.com/gatehouse-go/gatehouse/auth"
)

// UsageRecorder is told, once the answer is written, each request that a
// key was charged for: the key's id and owner (auth.Key.ID and Owner), the
// product slug the product check read, the answer's status and the request's
// cost (the product's auth.Product.QueryCost, 1 for a product the catalog
// does not serve), as [Config].Usage asks. A refused key (401, 503) or
// a request the rate limit refused (429) is charged nothing and is not told.
// Record runs on the request path, after the answer: it must not block.
// sqlstore.Usage implements it, counting in memory and writing to the key
// database on an interval.
type UsageRecorder interface {
	Record(keyID, owner, product string, status, cost int)
}

// recordUsage returns next with every request reaching it, which the rate
// limit let through and charged, told to c.Usage after next answers: a
// handler that wrote nothing answered 200, one that panicked 500. Without
// c.Usage it is next itself. It allocates one writer wrapper per request.
func (c Config) recordUsage(next http.Handler) http.Handler {
	if c.Usage == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, ok := auth.KeyFrom(r.Context())
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		returned := false
		defer func() {
			status := sw.answered(returned)
			if status == 0 {
				status = http.StatusInternalServerError // a panic, which Recover answers 500
			}
			c.Usage.Record(k.ID, k.Owner, c.Products.SlugOf(r), status, c.cost(r))
		}()
		next.ServeHTTP(sw, r)
		returned = true
	})
}
