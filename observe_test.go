package gatehouse

import (
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestObserveRequests: each request reaches ObserveRequests's function once
// with its route's slug and its status; other routes carry no product.
func TestObserveRequests(t *testing.T) {
	h, k, _, _ := newTestStack(t)
	var mu sync.Mutex
	var got []RequestEvent
	observe := func(e RequestEvent) {
		if e.Duration <= 0 {
			t.Errorf("event %+v without a duration", e)
		}
		e.Duration = 0
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
	}
	h = ObserveRequests(observe)(h)
	post(h, "/api/quote", k.valid, "application/json", `{"inputs":{"Premium":1,"Age":2}}`)
	post(h, "/api/quote", "", "application/json", `{}`)
	post(h, "/api/nope", k.valid, "application/json", `{}`)
	post(h, "/api/quote/extra", k.valid, "application/json", `{}`)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/health", nil))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/quote", nil)) // not the product route: 405
	want := []RequestEvent{
		{Product: "quote", Status: 200},
		{Product: "quote", Status: 401},
		{Product: "nope", Status: 404},
		{Product: "", Status: 404},
		{Product: "", Status: 200},
		{Product: "", Status: 405},
	}
	if !slices.Equal(got, want) {
		t.Errorf("events\n got %+v\nwant %+v", got, want)
	}
	if ObserveRequests(nil)(h) == nil {
		t.Error("ObserveRequests(nil) returned nil")
	}
}

// traceparentRE is the W3C Trace Context traceparent grammar, as a reference
// for TraceID.
// A later version's further parts are any field text: no control character
// but HTAB.
var traceparentRE = regexp.MustCompile(`(?s)^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$`)

func traceIDReference(v string) (string, bool) {
	m := traceparentRE.FindStringSubmatch(v)
	if m == nil || m[1] == "ff" || m[1] == "00" && m[5] != "" ||
		strings.ContainsFunc(m[5], func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) ||
		strings.Trim(m[2], "0") == "" || strings.Trim(m[3], "0") == "" {
		return "", false
	}
	return m[2], true
}

func TestTraceID(t *testing.T) {
	const id = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, tt := range []struct {
		in   string
		want string
	}{
		{"00-" + id + "-00f067aa0ba902b7-01", id},
		{"00-" + id + "-00f067aa0ba902b7-00", id},
		{"01-" + id + "-00f067aa0ba902b7-01-future", id},
		{"01-" + id + "-00f067aa0ba902b7-01", id},
		{"00-" + id + "-00f067aa0ba902b7-01-", ""}, // version 00 has nothing after flags
		{"01-" + id + "-00f067aa0ba902b7-01x", ""}, // a later version's extra part starts with -
		{"01-" + id + "-00f067aa0ba902b7-01-a\tb", id},
		{"01-" + id + "-00f067aa0ba902b7-01-\n", ""}, // no control character but HTAB
		{"01-" + id + "-00f067aa0ba902b7-01-\x7f", ""},
		{"ff-" + id + "-00f067aa0ba902b7-01", ""}, // version ff is invalid
		{"00-" + strings.ToUpper(id) + "-00f067aa0ba902b7-01", ""},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""},
		{"00-" + id + "-0000000000000000-01", ""},
		{"00-" + id + "-00f067aa0ba902b7", ""},
		{"", ""},
	} {
		got, ok := TraceID(tt.in)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("TraceID(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

// FuzzTraceID: TraceID agrees with the grammar's reference on every input, so
// that a log line never carries a trace id made of what is not one.
func FuzzTraceID(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n")
	f.Fuzz(func(t *testing.T, v string) {
		got, ok := TraceID(v)
		want, wantOK := traceIDReference(v)
		if got != want || ok != wantOK {
			t.Fatalf("TraceID(%q) = %q, %v; reference %q, %v", v, got, ok, want, wantOK)
		}
	})
}
