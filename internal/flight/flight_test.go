package flight

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitCallers waits, without sleeping, until n callers have asked for key.
func waitCallers[K comparable, V any](g *Group[K, V], key K, n int) {
	for g.Callers(key) < n {
		runtime.Gosched()
	}
}

type ctxKey struct{}

// TestDoShares: callers of one key while its call is in flight share its one
// run and its result; fn sees the first caller's values.
func TestDoShares(t *testing.T) {
	var g Group[string, string]
	release := make(chan struct{})
	runs := 0
	fn := func(ctx context.Context) (string, error) {
		runs++ // only one run at a time, or the race detector says so
		<-release
		return ctx.Value(ctxKey{}).(string), nil
	}
	const n = 10
	got := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		ctx := context.WithValue(context.Background(), ctxKey{}, "first")
		if i > 0 {
			waitCallers(&g, "k", 1) // the first caller starts the call
			ctx = context.WithValue(context.Background(), ctxKey{}, "other")
		}
		wg.Go(func() {
			v, err := g.Do(ctx, "k", time.Minute, fn)
			if err != nil {
				t.Error(err)
			}
			got <- v
		})
	}
	waitCallers(&g, "k", n)
	close(release)
	wg.Wait()
	close(got)
	for v := range got {
		if v != "first" {
			t.Errorf("Do = %q, want the first caller's value", v)
		}
	}
	if runs != 1 {
		t.Errorf("%d runs, want 1", runs)
	}
	if g.Callers("k") != 0 {
		t.Error("the call is still in flight after it returned")
	}
}

// TestDoCallerGoesAway: the caller that started the call goes away; it gets
// its context's error at once, the call goes on, and the other caller gets
// its result.
func TestDoCallerGoesAway(t *testing.T) {
	var g Group[string, string]
	release := make(chan struct{})
	fn := func(ctx context.Context) (string, error) {
		select {
		case <-release:
			return "answer", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := g.Do(ctx, "k", time.Minute, fn)
		first <- err
	}()
	waitCallers(&g, "k", 1)
	second := make(chan string, 1)
	go func() {
		v, err := g.Do(context.Background(), "k", time.Minute, fn)
		if err != nil {
			t.Error(err)
		}
		second <- v
	}()
	waitCallers(&g, "k", 2)
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("first caller: %v, want context.Canceled", err)
	}
	close(release)
	if v := <-second; v != "answer" {
		t.Errorf("second caller: %q, want answer", v)
	}
}

// TestDoTimeout: the call's own context ends after the timeout, for every
// caller, and the call is over then: the next Do runs fn again.
func TestDoTimeout(t *testing.T) {
	var g Group[string, string]
	block := func(ctx context.Context) (string, error) {
		<-ctx.Done()
		return "", ctx.Err()
	}
	if _, err := g.Do(context.Background(), "k", time.Millisecond, block); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Do = %v, want context.DeadlineExceeded", err)
	}
	if g.Callers("k") != 0 {
		t.Error("the call is still in flight after its timeout")
	}
	v, err := g.Do(context.Background(), "k", time.Minute, func(context.Context) (string, error) { return "again", nil })
	if v != "again" || err != nil {
		t.Errorf("Do after the timeout = %q, %v; want again", v, err)
	}
}

// TestDoPanic: fn's panic is raised in the caller, with fn's stack, and the
// key is free again.
func TestDoPanic(t *testing.T) {
	var g Group[string, string]
	for range 2 {
		func() {
			defer func() {
				err, ok := recover().(error)
				if !ok || !strings.Contains(err.Error(), "broken store") || !strings.Contains(err.Error(), "TestDoPanic") {
					t.Errorf("recovered %v, want an error with fn's panic and stack", err)
				}
			}()
			g.Do(context.Background(), "k", time.Minute, func(context.Context) (string, error) { panic("broken store") })
		}()
		if g.Callers("k") != 0 {
			t.Fatal("a call that panicked stays in flight")
		}
	}
}
