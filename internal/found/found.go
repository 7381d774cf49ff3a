// Package found holds what the checks found about one request (its key,
// product and inputs) in one context value that auth and inputs share.
// auth.Middleware puts one in the request's context, and auth.Products and
// inputs.Middleware below it fill in their part of it rather than each
// copying the request with a context of its own: one context value and one
// copy of the request instead of three, which is most of what the checks
// allocate.
//
// Each part is filled in once. A part that is already there (a request sent
// through a check twice, or one context shared by sub-requests sent at once)
// is not overwritten: that request gets a value of its own, a copy with its
// part, in a new context. So every handler sees the parts of its own request,
// and a handler above a check may see, once the check has run, what it found.
//
// It is the one custom context type of the module, kept because it pays
// against a context.WithValue per check: docs/performance.md has what it
// buys and how that is measured.
package found

import (
	"context"
	"net/http"
	"sync/atomic"
)

// Part names a part of what the checks found, after the key.
type Part int

const (
	Product Part = iota // auth.Products' *auth.Product
	Inputs              // inputs.Middleware's map[string]json.RawMessage
	parts
)

// ctx is a context carrying what was found: one allocation for both, where
// context.WithValue would take two.
type ctx struct {
	context.Context
	key   any
	parts [parts]atomic.Value
}

type ctxKey struct{}

func (c *ctx) Value(key any) any {
	if key == (ctxKey{}) {
		return c
	}
	return c.Context.Value(key)
}

func in(parent context.Context) *ctx {
	c, _ := parent.Value(ctxKey{}).(*ctx)
	return c
}

// WithKey returns parent with a new value holding key, and no parts.
func WithKey(parent context.Context, key any) context.Context {
	return &ctx{Context: parent, key: key}
}

// RequestWithKey returns a copy of r whose context is WithKey(r.Context(),
// key), as r.WithContext would, with the copy and the context value made in
// one allocation instead of two (what that buys is in docs/performance.md).
// The copy holds the value, so the two go together; what the one allocation
// changes is that a context made from the value, kept after the request,
// keeps the copy's bytes too.
func RequestWithKey(r *http.Request, key any) *http.Request {
	both := new(requestAndCtx)
	both.ctx = ctx{Context: r.Context(), key: key}
	// WithContext is inlined here and the copy it makes does not escape,
	// so it is made on the stack and copied once more into both.req
	// (auth's TestRequestWithKey counts one allocation).
	both.req = *r.WithContext(&both.ctx)
	return &both.req
}

// requestAndCtx is what RequestWithKey allocates.
type requestAndCtx struct {
	req http.Request
	ctx ctx
}

// Key returns the key WithKey put in ctx, or nil.
func Key(parent context.Context) any {
	if c := in(parent); c != nil {
		return c.key
	}
	return nil
}

// With records v, which must not be nil, as part p of the request whose
// context is parent: in parent's value if that part is not yet set, else in a
// copy in a new context, which it returns with copied=true.
func With(parent context.Context, p Part, v any) (_ context.Context, copied bool) {
	c := in(parent)
	if c != nil && c.parts[p].CompareAndSwap(nil, v) {
		return parent, false
	}
	cc := &ctx{Context: parent}
	if c != nil {
		cc.key = c.key
		for i := range c.parts {
			if old := c.parts[i].Load(); old != nil {
				cc.parts[i].Store(old)
			}
		}
	}
	cc.parts[p].Store(v)
	return cc, true
}

// Get returns part p of what was found in ctx, or nil.
func Get(parent context.Context, p Part) any {
	if c := in(parent); c != nil {
		return c.parts[p].Load()
	}
	return nil
}
