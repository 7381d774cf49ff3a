// This file holds found: the one context value the three checks share.

package auth

import (
	"context"
	"encoding/json"
	"sync/atomic"
)

// found is what the checks found about one request: its key, product and
// inputs. It exists because each check would otherwise copy the request to
// give it a context of its own (r.WithContext, a 304-byte http.Request each time):
// [Middleware] puts one found in the request's context, with
// context.WithValue, and [Products] and [Inputs] below it fill in their part
// of it in place. One copy of the request instead of three; what it costs is
// this file, and that a handler above a check may see, once the check has
// run, what it found.
//
// Each part is filled in once. A part that is already there (a request sent
// through Products twice, or one context shared by sub-requests sent at once)
// is not overwritten: that request gets a found of its own, a copy with its
// part, in a new context. So every handler sees the parts of its own request.
//
// The found is an ordinary context value. A context type of its own, holding
// the found inline, would save one allocation of 24 bytes per request and no
// measurable time: BenchmarkChain (Middleware, Products, Inputs) measured
// 2026-11-28, benchstat of 10 interleaved runs, 12 allocs and 1000 B/op against
// 13 and 1024 B/op, and no difference in time (p=0.58); so it is not kept.
type found struct {
	key     *Key
	product atomic.Pointer[Product]
	inputs  atomic.Pointer[map[string]json.RawMessage]
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
	c := f.clone()
	c.product.Store(p)
	return context.WithValue(ctx, foundKey{}, c), true
}

// withInputs is withProduct for the inputs.
func withInputs(ctx context.Context, m map[string]json.RawMessage) (_ context.Context, copied bool) {
	f := foundIn(ctx)
	if f != nil && f.inputs.CompareAndSwap(nil, &m) {
		return ctx, false
	}
	c := f.clone()
	c.inputs.Store(&m)
	return context.WithValue(ctx, foundKey{}, c), true
}

// clone returns a copy of f, or an empty found if f is nil.
func (f *found) clone() *found {
	c := &found{}
	if f != nil {
		c.key = f.key
		c.product.Store(f.product.Load())
		c.inputs.Store(f.inputs.Load())
	}
	return c
}
