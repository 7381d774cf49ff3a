// Package flight runs at most one call per key at a time and gives its result
// to every caller that asks for the same key meanwhile. It is the single
// flight of auth.Cache (which sqlstore.Store's Lookup goes through):
//
//	var g flight.Group[[32]byte, *auth.Key]
//	k, err := g.Do(r.Context(), hash, 2*time.Second, func(ctx context.Context) (*auth.Key, error) {
//		return store.Lookup(ctx, hash)
//	})
//
// The call belongs to no caller: it runs under a context of its own, bounded
// by its own timeout, and each caller stops waiting when its own context
// ends, so that one caller going away fails nobody else.
package flight

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// Group is a set of calls in flight, one at most per key. Its zero value is
// ready to use. A Group is safe for simultaneous use by multiple goroutines.
type Group[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*call[V]
}

// call is one call in flight.
type call[V any] struct {
	done    chan struct{}
	val     V
	err     error
	panic   *panicked // set if fn panicked
	callers int       // callers that asked for this call so far
}

// panicked is what [Group.Do] panics with when the call's fn panicked: the
// value fn panicked with and the stack of the goroutine it ran in, which the
// caller's own stack would not show.
type panicked struct {
	value any
	stack []byte
}

func (p *panicked) Error() string {
	return fmt.Sprintf("flight: call panicked: %v\n\n%s", p.value, p.stack)
}

// Do returns the result of fn for key: of the call for key in flight if
// there is one, else of a call it starts.
//
// fn runs in a goroutine of its own, under a context that carries ctx's
// values but not its cancellation (context.WithoutCancel) and ends after
// timeout: the call is shared, so no one caller's going away may end it for
// the others, and timeout bounds it instead. The goroutine ends when fn
// returns; fn must therefore return once its context ends. Do returns when
// the call does, or when ctx ends first, then with ctx.Err(); the call goes
// on for the other callers. fn's result is given to every caller that waits
// for it, and dropped when none does (fn should keep what it wants kept, as
// a cache does, before it returns). If fn panics, Do panics in every caller
// waiting, with an error that holds fn's panic value and stack.
func (g *Group[K, V]) Do(ctx context.Context, key K, timeout time.Duration, fn func(context.Context) (V, error)) (V, error) {
	g.mu.Lock()
	c, ok := g.calls[key]
	if !ok {
		c = &call[V]{done: make(chan struct{})}
		if g.calls == nil {
			g.calls = make(map[K]*call[V])
		}
		g.calls[key] = c
		go g.run(context.WithoutCancel(ctx), key, c, timeout, fn)
	}
	c.callers++
	g.mu.Unlock()
	select {
	case <-c.done:
		if c.panic != nil {
			panic(c.panic)
		}
		return c.val, c.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

// run makes call c of key and then ends it, a panic of fn included.
func (g *Group[K, V]) run(ctx context.Context, key K, c *call[V], timeout time.Duration, fn func(context.Context) (V, error)) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer func() {
		if v := recover(); v != nil {
			c.panic = &panicked{value: v, stack: debug.Stack()}
		}
		cancel()
		g.mu.Lock()
		delete(g.calls, key)
		g.mu.Unlock()
		close(c.done)
	}()
	c.val, c.err = fn(ctx)
}

// Callers returns how many callers have asked for the call for key in flight,
// the one that started it included; 0 if none is in flight. Tests use it to
// know that every caller has joined the call.
func (g *Group[K, V]) Callers(key K) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.calls[key]; ok {
		return c.callers
	}
	return 0
}
