package auth

import (
	"context"
	"net/http"

	"github.com/gatehouse-go/gatehouse/internal/found"
)

// withKey returns ctx with a new found value (package internal/found) holding
// k: the one context value the checks below fill in.
func withKey(ctx context.Context, k *Key) context.Context {
	return found.WithKey(ctx, k)
}

// requestWithKey returns a copy of r whose context is withKey(r.Context(), k),
// the copy and the value made in one allocation.
func requestWithKey(r *http.Request, k *Key) *http.Request {
	return found.RequestWithKey(r, k)
}

// withProduct records p as the product of the request whose context is ctx:
// in ctx's found value if its product is not yet set, else in a copy in a
// new context, which it returns with copied=true.
func withProduct(ctx context.Context, p *Product) (_ context.Context, copied bool) {
	return found.With(ctx, found.Product, p)
}
