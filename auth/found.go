package auth

import (
	"context"
	"sync/atomic"
)

// found is what the key and product checks found about one request.
// [Middleware] puts one holding the key in the request's context, with
// context.WithValue, and [Products] below it records the product in it rather
// than copying the request with a context of its own.
//
// The product is recorded once. If it is already there (a request sent
// through Products twice, or one context shared by sub-requests sent at once),
// Products gives that request a found of its own, a copy with its product, in
// a new context. So every handler sees the key and product of its own request,
// and a handler between the two checks sees, once Products has run, the
// product it found (TestFoundParentKeepsItsOwn).
type found struct {
	key     *Key
	product atomic.Pointer[Product]
}

type foundKey struct{}

func foundIn(ctx context.Context) *found {
	f, _ := ctx.Value(foundKey{}).(*found)
	return f
}

// withKey returns ctx with a new found holding k.
func withKey(ctx context.Context, k *Key) context.Context {
	return context.WithValue(ctx, foundKey{}, &found{key: k})
}

// withProduct records p as the product of the request whose context is ctx:
// in ctx's found if its product is not yet set, else in a copy in a new
// context, which it returns with copied=true.
func withProduct(ctx context.Context, p *Product) (_ context.Context, copied bool) {
	f := foundIn(ctx)
	if f != nil && f.product.CompareAndSwap(nil, p) {
		return ctx, false
	}
	c := new(found)
	if f != nil {
		c.key = f.key
	}
	c.product.Store(p)
	return context.WithValue(ctx, foundKey{}, c), true
}
