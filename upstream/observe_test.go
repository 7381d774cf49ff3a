package upstream

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// events collects events, safe for concurrent use.
type events struct {
	mu  sync.Mutex
	got []Event
}

func (e *events) observe(ev Event) {
	e.mu.Lock()
	e.got = append(e.got, ev)
	e.mu.Unlock()
}

func (e *events) take() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	got := e.got
	e.got = nil
	return got
}

// TestObserveCallsAndBreaker: each call reports its class and time to the
// answer, and the breaker reports open, half-open and closed as it moves.
func TestObserveCallsAndBreaker(t *testing.T) {
	var status atomic.Int64
	status.Store(200)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	}))
	defer up.Close()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); now = now.Add(time.Millisecond); return now }
	ev := &events{}
	p, err := NewProxy(Target{Name: "quote", URL: up.URL, Breaker: BreakerConfig{Failures: 2, CoolDown: time.Minute},
		Now: clock, Logger: slog.New(slog.DiscardHandler), Observe: ev.observe})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	codes := []int{serve(t, p, "", "{}").Code}
	status.Store(500)
	codes = append(codes, serve(t, p, "", "{}").Code, serve(t, p, "", "{}").Code, serve(t, p, "", "{}").Code)
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	status.Store(200)
	codes = append(codes, serve(t, p, "", "{}").Code)
	if want := []int{200, 500, 500, 503, 200}; !slices.Equal(codes, want) {
		t.Fatalf("codes %v, want %v", codes, want)
	}
	want := []Event{
		{Kind: Call, Name: "quote", Class: "2xx", Duration: time.Millisecond},
		{Kind: Call, Name: "quote", Class: "5xx", Duration: time.Millisecond},
		{Kind: Call, Name: "quote", Class: "5xx", Duration: time.Millisecond},
		{Kind: Breaker, Name: "quote", State: BreakerOpen},
		{Kind: Call, Name: "quote", Class: "open"},
		{Kind: Breaker, Name: "quote", State: BreakerHalfOpen},
		{Kind: Call, Name: "quote", Class: "2xx", Duration: time.Millisecond},
		{Kind: Breaker, Name: "quote", State: BreakerClosed},
	}
	if got := ev.take(); !slices.Equal(got, want) {
		t.Errorf("events\n got %+v\nwant %+v", got, want)
	}
}

// TestObserveAbandoned: a call whose caller went away is "abandoned", not an
// error of the upstream.
func TestObserveAbandoned(t *testing.T) {
	arrived := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
	}))
	defer up.Close()
	ev := &events{}
	p, err := NewProxy(Target{Name: "quote", URL: up.URL, Logger: slog.New(slog.DiscardHandler), Observe: ev.observe})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-arrived; cancel() }()
	p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/api/quote", nil).WithContext(ctx))
	if got := ev.take(); len(got) != 1 || got[0].Kind != Call || got[0].Class != "abandoned" {
		t.Errorf("events %+v, want one abandoned call", got)
	}
}

// TestObserveRetryAndProbe: a Transport reports each retried attempt, and
// Health each probe.
func TestObserveRetryAndProbe(t *testing.T) {
	s := &script{answers: []answer{{status: 503}, {status: 429, retryAfter: "3"}, {status: 200}}}
	up := httptest.NewServer(s)
	defer up.Close()
	ev := &events{}
	sl := &recordedSleep{}
	tr := &Transport{Name: "quote", Observe: ev.observe, Sleep: sl.sleep, Jitter: func() float64 { return 0.5 }}
	req, _ := http.NewRequest("GET", up.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("RoundTrip: %v, %v", resp, err)
	}
	resp.Body.Close()
	// Each event says what was waited (half of the 503's first 1 s step; the
	// 429's Retry-After) and why.
	want := []Event{
		{Kind: Retry, Name: "quote", Class: "5xx", Status: 503, Duration: 500 * time.Millisecond},
		{Kind: Retry, Name: "quote", Class: "4xx", Status: 429, Duration: 3 * time.Second},
	}
	if got := ev.take(); !slices.Equal(got, want) || !slices.Equal(sl.waits, []time.Duration{500 * time.Millisecond, 3 * time.Second}) {
		t.Errorf("retry events %+v, waits %v; want %+v, the waits of the events", got, sl.waits, want)
	}
	// An attempt with no answer: the reason, never the address.
	tr.MaxAttempts = 2
	req, _ = http.NewRequest("GET", "http://"+closedAddr(t), nil)
	if resp, err := tr.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Fatal("an answer from a refused address")
	}
	want = []Event{{Kind: Retry, Name: "quote", Class: "error", Reason: "connection refused", Duration: 500 * time.Millisecond}}
	if got := ev.take(); !slices.Equal(got, want) {
		t.Errorf("retry events %+v, want %+v", got, want)
	}

	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer down.Close()
	h := NewHealth(HealthConfig{Logger: slog.New(slog.DiscardHandler), Observe: ev.observe})
	h.Set(map[string]Target{"pdf": {Name: "pdf", URL: down.URL}})
	if st := h.States(); len(st) != 0 {
		t.Errorf("States before a probe: %v, want none", st)
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/health", nil))
	got := ev.take()
	if len(got) != 1 || got[0].Kind != Probe || got[0].Name != "pdf" || got[0].OK {
		t.Errorf("probe events %+v, want one failed probe of pdf", got)
	}
	if st := h.States(); st["pdf"] != HealthDown {
		t.Errorf("States after a failed probe: %v, want pdf down", st)
	}
	if got := ev.take(); len(got) != 0 {
		t.Errorf("States probed: %+v", got)
	}
}

// TestEventKindString: each kind reads as its Go name in logs and %v.
func TestEventKindString(t *testing.T) {
	var got []string
	for _, k := range []EventKind{Call, Retry, Breaker, Probe, 9} {
		got = append(got, k.String())
	}
	if want := []string{"Call", "Retry", "Breaker", "Probe", "EventKind(9)"}; !slices.Equal(got, want) {
		t.Errorf("names %q, want %q", got, want)
	}
}

// TestTraceContextReachesUpstream: a caller's traceparent and tracestate go
// to the upstream unchanged (W3C Trace Context).
func TestTraceContextReachesUpstream(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const ts = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
	var gotTP, gotTS []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotTP, gotTS = r.Header.Values("Traceparent"), r.Header.Values("Tracestate")
	}))
	defer up.Close()
	p, err := NewProxy(Target{Name: "quote", URL: up.URL, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r := httptest.NewRequest("POST", "/api/quote", nil).WithContext(context.Background())
	r.Header.Set("Traceparent", tp)
	r.Header.Set("Tracestate", ts)
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, r)
	if rec.Code != 200 || !slices.Equal(gotTP, []string{tp}) || !slices.Equal(gotTS, []string{ts}) {
		t.Errorf("status %d, upstream saw traceparent %q tracestate %q", rec.Code, gotTP, gotTS)
	}
}
