package upstream

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBreakerOutcomes(t *testing.T) {
	t0 := time.Unix(0, 0)
	tests := []struct {
		name     string
		outcomes []outcome // after the breaker was opened once, when wantOpen is about the half-open state
		halfOpen bool      // start half-open (opened, cool-down over) instead of closed
		wantOpen bool
		wantNext bool // the next request is let through
	}{
		{"failures open at the threshold", []outcome{failed, failed, failed}, false, true, false},
		{"abandoned calls do not reset the count", []outcome{failed, abandoned, failed, abandoned, failed}, false, true, false},
		{"a success resets the count", []outcome{failed, failed, succeeded, failed}, false, false, true},
		{"abandoned calls alone do nothing", []outcome{abandoned, abandoned, abandoned, abandoned}, false, false, true},
		{"an abandoned probe leaves it half-open", []outcome{abandoned}, true, false, true},
		{"a failed probe opens it", []outcome{failed}, true, true, false},
		{"a successful probe closes it", []outcome{succeeded}, true, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBreaker(BreakerConfig{Failures: 3, CoolDown: time.Second})
			now := t0
			if tt.halfOpen {
				for range 3 {
					_, probe, _ := b.allow(now)
					b.done(probe, failed, now)
				}
				now = now.Add(time.Second)
			}
			for i, o := range tt.outcomes {
				ok, probe, _ := b.allow(now)
				if !ok {
					t.Fatalf("call %d refused", i+1)
				}
				if probe != tt.halfOpen {
					t.Fatalf("call %d: probe = %v, want %v", i+1, probe, tt.halfOpen)
				}
				b.done(probe, o, now)
			}
			if got := b.open(now); got != tt.wantOpen {
				t.Errorf("open = %v, want %v", got, tt.wantOpen)
			}
			ok, probe, _ := b.allow(now)
			if ok != tt.wantNext {
				t.Errorf("next request let through = %v, want %v", ok, tt.wantNext)
			}
			// After an abandoned probe the next request is the probe again,
			// and a second one waits for it.
			if tt.name == "an abandoned probe leaves it half-open" {
				if !probe {
					t.Errorf("the next request is not the probe")
				}
				if ok2, _, wait := b.allow(now); ok2 || wait != time.Second {
					t.Errorf("a request beside the new probe: ok=%v wait=%v, want refused for 1 s", ok2, wait)
				}
			}
		})
	}
}

// gatewayFor serves p on a real socket, as the stack does (with a request id),
// and reports on the returned channel each time p has finished a request.
func gatewayFor(t *testing.T, p http.Handler) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	finished := make(chan struct{}, 100)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { finished <- struct{}{} }()
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(gw.Close)
	return gw, finished
}

// hangingUpstream answers nothing until the call is cancelled, and reports on
// the returned channel each request it received.
func hangingUpstream(t *testing.T) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	arrived := make(chan struct{}, 100)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // a server notices a closed connection only once the body is read
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(up.Close)
	return up, arrived
}

// post sends one caller request to the gateway and returns the status and
// whether the upstream got the call. With abandon, it hangs up as soon as the
// upstream has the call, as a client with a short timeout does (status 0).
func post(t *testing.T, gw *httptest.Server, arrived <-chan struct{}, abandon bool) (int, bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", gw.URL, strings.NewReader(`{"inputs":{}}`))
	req.Header.Set("Content-Type", "application/json")
	var wg sync.WaitGroup
	if abandon {
		wg.Go(func() {
			select {
			case <-arrived:
				cancel()
			case <-time.After(5 * time.Second):
				t.Error("the upstream never got the call")
			}
		})
	}
	resp, err := gw.Client().Do(req)
	wg.Wait()
	if abandon {
		if err == nil {
			resp.Body.Close()
			t.Fatalf("an abandoned call got an answer: %d", resp.StatusCode)
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("abandoned call: %v", err)
		}
		return 0, true
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case <-arrived:
		return resp.StatusCode, true
	default: // refused by the breaker: the upstream was not called
		return resp.StatusCode, false
	}
}

// TestProxyAbandonedCallsKeepBreaker: over real sockets, callers that hang up
// before the upstream answers neither reset the failure count (upstream
// timeouts interleaved with them still open the breaker at the threshold) nor
// close a half-open breaker (an abandoned probe leaves it half-open, and the
// next request is the probe).
func TestProxyAbandonedCallsKeepBreaker(t *testing.T) {
	noGoroutineLeak(t)
	up, arrived := hangingUpstream(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p, err := NewProxy(Target{
		URL: up.URL, Timeout: 300 * time.Millisecond, RetryAfter: time.Second,
		Breaker: BreakerConfig{Failures: 3, CoolDown: 10 * time.Second},
		Logger:  slog.New(slog.DiscardHandler), Now: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	gw, finished := gatewayFor(t, p)

	// timeout, abandoned, timeout, abandoned, timeout: open at the third timeout.
	for i, abandon := range []bool{false, true, false, true, false} {
		if i == 4 && p.Open() {
			t.Fatalf("open after 2 timeouts and 2 abandoned calls: want closed until the third timeout")
		}
		status, called := post(t, gw, arrived, abandon)
		if !called || !abandon && status != 503 {
			t.Fatalf("call %d: status %d, upstream called %v; want a call, and 503 (upstream timeout)", i+1, status, called)
		}
		<-finished
	}
	if !p.Open() {
		t.Fatal("3 upstream timeouts interleaved with 2 abandoned calls did not open the breaker")
	}

	// Cool-down over: the probe is abandoned. The breaker stays half-open: the
	// next request is the probe, and its timeout opens the breaker at once.
	mu.Lock()
	now = now.Add(10 * time.Second)
	mu.Unlock()
	post(t, gw, arrived, true)
	<-finished
	if p.Open() {
		t.Fatal("an abandoned probe opened the breaker")
	}
	if status, called := post(t, gw, arrived, false); status != 503 || !called {
		t.Fatalf("the next probe: status %d, upstream called %v; want 503 from an upstream timeout", status, called)
	}
	<-finished
	if !p.Open() {
		t.Fatal("after an abandoned probe, a failed request did not reopen the breaker: the abandoned probe closed it")
	}
	if status, called := post(t, gw, arrived, false); status != 503 || called {
		t.Fatalf("reopened: status %d, upstream called %v; want 503 without a call", status, called)
	}
	<-finished
}

// TestProxyCallerGoneMidBodyKeepsBreaker: over real sockets, a caller that
// hangs up while a success's body streams back counts neither as a failure
// nor as a success of the upstream: after one failure (a 500) the failure
// count is still 1 and the breaker closed, whether the upstream pauses after
// its first piece (the proxy's read is cancelled) or keeps sending (the
// proxy's write to the caller fails, or its read is cancelled, whichever
// comes first).
func TestProxyCallerGoneMidBodyKeepsBreaker(t *testing.T) {
	piece := strings.Repeat("p", 32<<10)
	for _, tt := range []struct {
		name string
		send func(w http.ResponseWriter, r *http.Request) // after the first piece
	}{
		{"upstream pauses", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }},
		{"upstream keeps sending", func(w http.ResponseWriter, r *http.Request) {
			for range 1 << 15 { // 1 GiB at most: far more than the sockets buffer
				if _, err := io.WriteString(w, piece); err != nil {
					return
				}
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			noGoroutineLeak(t)
			var calls sync.Mutex
			first := true
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Lock()
				fail := first
				first = false
				calls.Unlock()
				if fail {
					w.WriteHeader(http.StatusInternalServerError)
					return
				}
				io.WriteString(w, piece)
				w.(http.Flusher).Flush() // no Content-Length: streamed, piece by piece
				tt.send(w, r)
			}))
			defer up.Close()
			ev := &events{}
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			p, err := NewProxy(Target{
				Name: "quote", URL: up.URL, Breaker: BreakerConfig{Failures: 3, CoolDown: 10 * time.Second},
				MaxResponseBytes: 2 << 30, Logger: slog.New(slog.DiscardHandler),
				Now: func() time.Time { return now }, Observe: ev.observe,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			gw, finished := gatewayFor(t, p)

			resp, err := gw.Client().Get(gw.URL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			<-finished
			if resp.StatusCode != 500 {
				t.Fatalf("first call: status %d, want 500", resp.StatusCode)
			}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", gw.URL, nil)
			resp, err = gw.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(piece))
			_, rerr := io.ReadFull(resp.Body, got)
			cancel() // hang up mid-body
			_, cerr := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			<-finished
			if resp.StatusCode != 200 || rerr != nil || string(got) != piece || !errors.Is(cerr, context.Canceled) {
				t.Fatalf("status %d, first piece read: %v, after hanging up: %v; want 200, the piece, then context.Canceled",
					resp.StatusCode, rerr, cerr)
			}

			p.breaker.mu.Lock()
			failures, state := p.breaker.failures, p.breaker.state()
			p.breaker.mu.Unlock()
			if failures != 1 || state != BreakerClosed {
				t.Errorf("after a failure and a caller gone mid-body: %d failures, %s; want 1, closed", failures, state)
			}
			want := []Event{{Kind: Call, Name: "quote", Class: "5xx"}, {Kind: Call, Name: "quote", Class: "2xx"}}
			if got := ev.take(); !slices.Equal(got, want) {
				t.Errorf("events %+v, want %+v", got, want)
			}
		})
	}
}
