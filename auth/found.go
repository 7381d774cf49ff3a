package auth

import (
	"context"

	"github.com/gatehouse-go/gatehouse/internal/found"
)

// withKey returns ctx with a new found value (package internal/found) holding
// k: the one context value the checks below fill in.
func withKey(ctx context.Context, k *Key) context.Context {
	return found.WithKey(ctx, k)
}

// withProduct records p as the product of the request whose context is ctx:
// in ctx's found value if its product is not yet set, else in a copy in a
// new context, which it returns with copied=true.
func withProduct(ctx context.Context, p *Product) (_ context.Context, copied bool) {
	return found.With(ctx, found.Product, p)
}
