package ratelimit

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestObserveDecisions: every decision reaches Observe once, with the window
// that refused, and a failing store's request with the policy's end.
func TestObserveDecisions(t *testing.T) {
	c := newClock()
	var got []Event
	key := Limits{PerMinute: 2, PerDay: 3}
	h := Middleware(Config{
		Key:     func(*http.Request) (Charge, bool) { return Charge{Key: "k", Limits: key}, true },
		Now:     c.Now,
		Observe: func(e Event) { got = append(got, e) },
		Logger:  quiet,
	})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	serve := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
		return rec.Code
	}
	codes := []int{serve(), serve(), serve()} // the minute's 2, then refused by the minute
	c.Advance(time.Minute)
	codes = append(codes, serve(), serve()) // the day's third, then refused by the day
	if want := []int{200, 200, 429, 200, 429}; !slices.Equal(codes, want) {
		t.Fatalf("codes %v, want %v", codes, want)
	}
	want := []Event{{Passed, ""}, {Passed, ""}, {Refused, "minute"}, {Passed, ""}, {Refused, "day"}}
	if !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}

	for _, tt := range []struct {
		policy func(http.ResponseWriter, *http.Request, error) bool
		want   Result
	}{{nil, StoreFailedClosed}, {FailOpen, StoreFailedOpen}} {
		got = nil
		h := Middleware(Config{Key: ByClientIP, Store: failingStore{}, OnStoreError: tt.policy, Logger: quiet,
			Observe: func(e Event) { got = append(got, e) }})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		if !slices.Equal(got, []Event{{Result: tt.want}}) {
			t.Errorf("store failure events %v, want %v", got, tt.want)
		}
	}
}

// TestPeekSpendsNothing: Peek tells what is left now, as Take's next answer
// would count it, and never takes a token.
func TestPeekSpendsNothing(t *testing.T) {
	s := NewMemoryStore(MemoryConfig{})
	c := newClock()
	l := Limits{PerMinute: 3, PerDay: 10}
	ctx := context.Background()
	d, _ := s.Peek(ctx, Charge{Key: "k", Limits: l}, c.Now())
	if !d.Allowed || d.Minute.Remaining != 3 || d.Day.Remaining != 10 {
		t.Fatalf("unseen key: %+v, want full windows", d)
	}
	for range 3 {
		s.Take(ctx, Charge{Key: "k", Limits: l}, c.Now())
	}
	for range 5 { // peeking many times spends nothing
		d, _ = s.Peek(ctx, Charge{Key: "k", Limits: l}, c.Now())
	}
	if d.Allowed || d.Minute.Remaining != 0 || d.Day.Remaining != 7 || d.RetryAfter != 20*time.Second {
		t.Fatalf("after 3 takes: %+v, want minute 0, day 7, retry in 20s", d)
	}
	c.Advance(20 * time.Second)
	d, _ = s.Peek(ctx, Charge{Key: "k", Limits: l}, c.Now())
	if !d.Allowed || d.Minute.Remaining != 1 || d.Day.Remaining != 7 {
		t.Fatalf("20s later: %+v, want minute 1 (refilled), day 7", d)
	}
	if td, _ := s.Take(ctx, Charge{Key: "k", Limits: l}, c.Now()); !td.Allowed || td.Minute.Remaining != 0 {
		t.Fatalf("take after peeks: %+v, want allowed with 0 left", td)
	}
	if _, err := s.Peek(ctx, Charge{Key: "k", Limits: Limits{PerMinute: -1}}, c.Now()); err == nil {
		t.Error("invalid limits peeked without error")
	}
	var _ Peeker = s
}

// TestCallerGoneIsNoStoreFailure: a store error that comes while the caller's
// context has ended is the caller's hang-up, not the store's failure: no
// ERROR line, no store-failure event, OnStoreError is not asked (a fail-open
// policy would send the request on for nobody) and next does not run.
func TestCallerGoneIsNoStoreFailure(t *testing.T) {
	for _, policy := range []func(http.ResponseWriter, *http.Request, error) bool{nil, FailOpen} {
		var events []Event
		var log strings.Builder
		called := false
		h := Middleware(Config{Key: ByClientIP, Store: failingStore{}, OnStoreError: policy,
			Logger:  slog.New(slog.NewTextHandler(&log, nil)),
			Observe: func(e Event) { events = append(events, e) }})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil).WithContext(ctx))
		if rec.Code != 503 || called || log.Len() != 0 || !slices.Equal(events, []Event{{Result: Abandoned}}) {
			t.Errorf("status %d, next called %v, log %q, events %v; want 503, false, no line, [Abandoned]",
				rec.Code, called, log.String(), events)
		}
	}
}

// TestResultString: each result reads as its Go name in logs and %v.
func TestResultString(t *testing.T) {
	var got []string
	for _, r := range []Result{Passed, Refused, StoreFailedOpen, StoreFailedClosed, Abandoned, 9} {
		got = append(got, r.String())
	}
	if want := []string{"Passed", "Refused", "StoreFailedOpen", "StoreFailedClosed", "Abandoned", "Result(9)"}; !slices.Equal(got, want) {
		t.Errorf("names %q, want %q", got, want)
	}
}
