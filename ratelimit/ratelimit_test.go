package ratelimit

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/clientaddr"
	"github.com/gatehouse-go/gatehouse/errorsjson"
	"github.com/gatehouse-go/gatehouse/internal/seconds"
	"github.com/gatehouse-go/gatehouse/internal/testclock"
)

// newClock is the settable time for Config.Now of these tests.
func newClock() *testclock.Clock { return testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// step is one request in a scenario: advance the clock by wait, then ask.
type step struct {
	wait       time.Duration
	limits     Limits
	allowed    bool
	minuteLeft int
	dayLeft    int
	retryAfter int64 // whole seconds, rounded up; 0 when allowed
}

func TestMemoryStoreTake(t *testing.T) {
	small := Limits{PerMinute: 2, PerDay: 3}
	tests := []struct {
		name  string
		steps []step
	}{
		{"new key is full", []step{
			{0, small, true, 1, 2, 0},
		}},
		{"minute window spends out", []step{
			{0, small, true, 1, 2, 0},
			{0, small, true, 0, 1, 0},
			{0, small, false, 0, 1, 30}, // 2/min: one token per 30 s
		}},
		{"refusal spends nothing", []step{
			{0, small, true, 1, 2, 0},
			{0, small, true, 0, 1, 0},
			{0, small, false, 0, 1, 30},
			{0, small, false, 0, 1, 30},
			{10 * time.Second, small, false, 0, 1, 20},
			{20 * time.Second, small, true, 0, 0, 0}, // exactly at Retry-After
		}},
		{"refill timing", []step{
			{0, Limits{PerMinute: 60, PerDay: 1000}, true, 59, 999, 0},
			{999 * time.Millisecond, Limits{PerMinute: 60, PerDay: 1000}, true, 58, 998, 0}, // 0.999 token back: floor
			{time.Second, Limits{PerMinute: 60, PerDay: 1000}, true, 58, 997, 0},
			{time.Hour, Limits{PerMinute: 60, PerDay: 1000}, true, 59, 999, 0},
		}},
		{"day window is the later one", []step{
			{0, small, true, 1, 2, 0},
			{30 * time.Second, small, true, 1, 1, 0},
			{30 * time.Second, small, true, 1, 0, 0},
			{time.Minute, small, false, 2, 0, 86400/3 - 120}, // exactly: 28,800 s a token
		}},
		{"retry-after rounds up", []step{
			{0, Limits{PerMinute: 7, PerDay: 100}, true, 6, 99, 0},
			{0, Limits{PerMinute: 7, PerDay: 100}, true, 5, 98, 0},
			{0, Limits{PerMinute: 7, PerDay: 100}, true, 4, 97, 0},
			{0, Limits{PerMinute: 7, PerDay: 100}, true, 3, 96, 0},
			{0, Limits{PerMinute: 7, PerDay: 100}, true, 2, 95, 0},
			{0, Limits{PerMinute: 7, PerDay: 100}, true, 1, 94, 0},
			{0, Limits{PerMinute: 7, PerDay: 100}, true, 0, 93, 0},
			{0, Limits{PerMinute: 7, PerDay: 100}, false, 0, 93, 9}, // 60/7 = 8.571 s
			{8571 * time.Millisecond, Limits{PerMinute: 7, PerDay: 100}, false, 0, 93, 1},
			{time.Millisecond, Limits{PerMinute: 7, PerDay: 100}, true, 0, 92, 0}, // the clock counts whole milliseconds
		}},
		{"limit raised applies on next request", []step{
			{0, small, true, 1, 2, 0},
			{0, small, true, 0, 1, 0},
			{0, small, false, 0, 1, 30},
			{0, Limits{PerMinute: 120, PerDay: 3}, false, 0, 1, 1}, // tokens stay, refill is 2/s
			{500 * time.Millisecond, Limits{PerMinute: 120, PerDay: 3}, true, 0, 0, 0},
		}},
		{"limit lowered keeps the time until full", []step{
			{0, Limits{PerMinute: 60, PerDay: 100}, true, 59, 99, 0},
			// 1 s from full; at 5/min that is 1/12 of a request, so 4.9 are
			// left, and 3.9 after this one.
			{0, Limits{PerMinute: 5, PerDay: 100}, true, 3, 98, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			s := NewMemoryStore(MemoryConfig{})
			for i, st := range tt.steps {
				c.Advance(st.wait)
				d, err := s.Take(context.Background(), Charge{Key: "k", Limits: st.limits}, c.Now())
				if err != nil {
					t.Fatal(err)
				}
				got := step{st.wait, st.limits, d.Allowed, d.Minute.Remaining, d.Day.Remaining, seconds.Ceil(d.RetryAfter)}
				if !reflect.DeepEqual(got, st) {
					t.Errorf("step %d: got %+v, want %+v", i, got, st)
				}
				if d.Minute.Limit != st.limits.PerMinute || d.Day.Limit != st.limits.PerDay {
					t.Errorf("step %d: limits %d/%d, want %+v", i, d.Minute.Limit, d.Day.Limit, st.limits)
				}
			}
		})
	}
}

// TestRetryAfterPasses checks, for many limits and states, that a request
// refused with Retry-After N is refused N-1 seconds later and passes N seconds
// later, the header's promise to the second.
func TestRetryAfterPasses(t *testing.T) {
	for _, l := range []Limits{{PerMinute: 1, PerDay: 1000}, {PerMinute: 3, PerDay: 1000}, {PerMinute: 7, PerDay: 100}, {PerMinute: 60, PerDay: 10000}, {PerMinute: 59, PerDay: 1000}, {PerMinute: 1000, PerDay: 20}, {PerMinute: 13, PerDay: 17}, {PerMinute: 100000, PerDay: 1000000}} {
		for _, offset := range []time.Duration{0, time.Millisecond, 333 * time.Millisecond, 999 * time.Millisecond} {
			c := newClock()
			s := NewMemoryStore(MemoryConfig{})
			ctx := context.Background()
			var d Decision
			for i := 0; ; i++ {
				var err error
				if d, err = s.Take(ctx, Charge{Key: "k", Limits: l}, c.Now()); err != nil {
					t.Fatal(err)
				}
				if !d.Allowed {
					break
				}
				if i < 5 {
					c.Advance(offset)
				}
			}
			if d.Minute.Remaining != 0 && d.Day.Remaining != 0 {
				t.Errorf("%+v: refused with both windows' remaining above 0: %+v", l, d)
			}
			n := seconds.Ceil(d.RetryAfter)
			if n < 1 {
				t.Fatalf("%+v: Retry-After %d", l, n)
			}
			if n > 1 {
				c.Advance(time.Duration(n-1) * time.Second)
				if d2, _ := s.Take(ctx, Charge{Key: "k", Limits: l}, c.Now()); d2.Allowed {
					t.Errorf("%+v offset %v: passed at Retry-After-1 = %d s", l, offset, n-1)
				}
				c.Advance(time.Second)
			} else {
				c.Advance(time.Duration(n) * time.Second)
			}
			if d2, _ := s.Take(ctx, Charge{Key: "k", Limits: l}, c.Now()); !d2.Allowed {
				t.Errorf("%+v offset %v: refused at Retry-After = %d s: %+v", l, offset, n, d2)
			}
		}
	}
}

func TestInvalidLimits(t *testing.T) {
	s := NewMemoryStore(MemoryConfig{})
	for _, l := range []Limits{{PerMinute: 0, PerDay: 1}, {PerMinute: 1, PerDay: 0}, {PerMinute: -1, PerDay: 5}} {
		if _, err := s.Take(context.Background(), Charge{Key: "k", Limits: l}, time.Now()); !errors.Is(err, ErrInvalidLimits) {
			t.Errorf("%+v: err = %v, want ErrInvalidLimits", l, err)
		}
	}
	if n := s.Len(); n != 0 {
		t.Errorf("Len = %d after invalid limits, want 0", n)
	}
}

// keyHeader keys requests on their X-Key header with the limits in X-Per-Minute
// and X-Per-Day; no X-Key is an unauthenticated request.
func keyHeader(r *http.Request) (Charge, bool) {
	k := r.Header.Get("X-Key")
	if k == "" {
		return Charge{}, false
	}
	pm, _ := strconv.Atoi(r.Header.Get("X-Per-Minute"))
	pd, _ := strconv.Atoi(r.Header.Get("X-Per-Day"))
	return Charge{Key: k, Limits: Limits{PerMinute: pm, PerDay: pd}}, true
}

// statusHandler answers with the status in the X-Status header, as downstream
// layers do (a 403, a 404, a 502...).
var statusHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	status, _ := strconv.Atoi(r.Header.Get("X-Status"))
	if status == 0 {
		status = http.StatusOK
	}
	if status >= 400 {
		errorsjson.Write(w, r, status, errorsjson.Message(status))
		return
	}
	w.WriteHeader(status)
})

func TestMiddlewareHeadersOnEveryStatus(t *testing.T) {
	c := newClock()
	h := Middleware(Config{Key: keyHeader, Now: c.Now, Limits: Limits{PerMinute: 10, PerDay: 100}})(statusHandler)
	tests := []struct {
		status                     int
		limit, remaining           string
		dailyLimit, dailyRemaining string
	}{
		{200, "10", "9", "100", "99"},
		{400, "10", "8", "100", "98"},
		{403, "10", "7", "100", "97"},
		{404, "10", "6", "100", "96"},
		{500, "10", "5", "100", "95"},
		{502, "10", "4", "100", "94"},
		{503, "10", "3", "100", "93"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/p", nil)
			r.Header.Set("X-Key", "a")
			r.Header.Set("X-Status", strconv.Itoa(tt.status))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d", rec.Code, tt.status)
			}
			for name, want := range map[string]string{
				"X-RateLimit-Limit":           tt.limit,
				"X-RateLimit-Remaining":       tt.remaining,
				"X-RateLimit-Daily-Limit":     tt.dailyLimit,
				"X-RateLimit-Daily-Remaining": tt.dailyRemaining,
				"Retry-After":                 "",
				"RateLimit":                   "",
			} {
				if got := rec.Header().Get(name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestMiddleware429(t *testing.T) {
	c := newClock()
	called := 0
	h := Middleware(Config{Key: keyHeader, Now: c.Now})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called++
	}))
	do := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/api/p", nil)
		r.Header.Set("X-Key", "k")
		r.Header.Set("X-Per-Minute", "2")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	do()
	do()
	rec := do()
	if rec.Code != http.StatusTooManyRequests || called != 2 {
		t.Fatalf("third request: status %d, handler called %d times; want 429 and 2", rec.Code, called)
	}
	var body errorsjson.Body
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error != errorsjson.MsgRateLimited {
		t.Errorf("body %q (%v), want error %q", rec.Body.String(), err, errorsjson.MsgRateLimited)
	}
	want := map[string]string{
		"Retry-After":                 "30",
		"X-RateLimit-Limit":           "2",
		"X-RateLimit-Remaining":       "0",
		"X-RateLimit-Daily-Limit":     "10000", // the default
		"X-RateLimit-Daily-Remaining": "9998",
		"Content-Type":                "application/json",
	}
	for name, v := range want {
		if got := rec.Header().Get(name); got != v {
			t.Errorf("%s = %q, want %q", name, got, v)
		}
	}
	c.Advance(29 * time.Second)
	if rec := do(); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
		t.Errorf("at 29 s: status %d Retry-After %q, want 429 and 1", rec.Code, rec.Header().Get("Retry-After"))
	}
	c.Advance(time.Second)
	if rec := do(); rec.Code != http.StatusOK || rec.Header().Get("Retry-After") != "" {
		t.Errorf("at Retry-After: status %d Retry-After %q, want 200 and none", rec.Code, rec.Header().Get("Retry-After"))
	}
}

func TestDraftHeaders(t *testing.T) {
	c := newClock()
	h := Middleware(Config{Key: keyHeader, Now: c.Now, DraftHeaders: true})(statusHandler)
	tests := []struct {
		name                  string
		wait                  time.Duration
		policy, limit, remain string
		rateLimit             string
	}{
		{"first", 0, `"minute";q=60;w=60, "day";q=10000;w=86400`, "60", "59", `"minute";r=59;t=1, "day";r=9999;t=9`},
		{"second", 0, `"minute";q=60;w=60, "day";q=10000;w=86400`, "60", "58", `"minute";r=58;t=2, "day";r=9998;t=18`},
		{"after 500ms", 500 * time.Millisecond, `"minute";q=60;w=60, "day";q=10000;w=86400`, "60", "57", `"minute";r=57;t=3, "day";r=9997;t=26`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.Advance(tt.wait)
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("X-Key", "k")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			for name, want := range map[string]string{
				"RateLimit-Policy":      tt.policy,
				"RateLimit":             tt.rateLimit,
				"X-RateLimit-Limit":     tt.limit,
				"X-RateLimit-Remaining": tt.remain,
			} {
				if got := rec.Header().Get(name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestKeyNotOK(t *testing.T) {
	s := NewMemoryStore(MemoryConfig{})
	h := Middleware(Config{Key: keyHeader, Store: s, Limits: Limits{PerMinute: 1}})(statusHandler)
	for i := 0; i < 5; i++ {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("request %d: status %d, want 200", i, rec.Code)
		}
		for name := range rec.Header() {
			t.Errorf("header %s set on a request without a key", name)
		}
	}
	if n := s.Len(); n != 0 {
		t.Errorf("store holds %d keys, want 0", n)
	}
}

func TestDefaultKeyIsClientIP(t *testing.T) {
	h := Middleware(Config{Key: ByClientIP, Limits: Limits{PerMinute: 1}})(statusHandler)
	for _, tt := range []struct {
		remote string
		status int
	}{
		{"192.0.2.1:1234", 200},
		{"192.0.2.1:5678", 429}, // same IP, other port
		{"192.0.2.2:1234", 200},
		{"[2001:db8::1]:80", 200},
		{"[2001:db8::1]:81", 429},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != tt.status {
			t.Errorf("%s: status %d, want %d", tt.remote, rec.Code, tt.status)
		}
	}
}

type failingStore struct{}

var errDown = errors.New("store down")

func (failingStore) Take(context.Context, Charge, time.Time) (Decision, error) {
	return Decision{}, errDown
}

func TestStoreError(t *testing.T) {
	tests := []struct {
		name       string
		policy     func(http.ResponseWriter, *http.Request, error) bool
		status     int
		retryAfter string
		called     bool
	}{
		{"default fails closed", nil, 503, "1", false},
		{"fail open", FailOpen, 200, "", true},
		{"custom", func(w http.ResponseWriter, r *http.Request, err error) bool {
			if !errors.Is(err, errDown) {
				t.Errorf("err = %v, want errDown", err)
			}
			w.WriteHeader(http.StatusTeapot)
			return false
		}, 418, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			h := Middleware(Config{Key: ByClientIP, Store: failingStore{}, OnStoreError: tt.policy, Logger: quiet})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called = true
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if rec.Code != tt.status || called != tt.called || rec.Header().Get("Retry-After") != tt.retryAfter {
				t.Errorf("status %d, next called %v, Retry-After %q; want %d, %v, %q",
					rec.Code, called, rec.Header().Get("Retry-After"), tt.status, tt.called, tt.retryAfter)
			}
			if rec.Header().Get("X-RateLimit-Limit") != "" {
				t.Errorf("rate-limit headers set without a decision")
			}
			if tt.status == 503 {
				var body errorsjson.Body
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error != errorsjson.MsgUpstreamUnavailable {
					t.Errorf("body %q, want %q", rec.Body.String(), errorsjson.MsgUpstreamUnavailable)
				}
			}
		})
	}
}

func TestOnLimited(t *testing.T) {
	var got Decision
	h := Middleware(Config{Key: ByClientIP, Limits: Limits{PerMinute: 1}, OnLimited: func(w http.ResponseWriter, r *http.Request, d Decision) {
		got = d
		w.WriteHeader(http.StatusTeapot)
	}})(statusHandler)
	for _, want := range []int{200, 418} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != want {
			t.Errorf("status %d, want %d", rec.Code, want)
		}
		if want == 418 && rec.Header().Get("Retry-After") != "60" {
			t.Errorf("Retry-After %q before OnLimited, want 60", rec.Header().Get("Retry-After"))
		}
	}
	if got.Allowed || got.RetryAfter <= 0 {
		t.Errorf("OnLimited got %+v", got)
	}
}

// TestConcurrentOneKey races 1,000 goroutines on one key limited to 100: exactly
// 100 pass, whatever the interleaving.
func TestConcurrentOneKey(t *testing.T) {
	c := newClock()
	h := Middleware(Config{Key: ByClientIP, Now: c.Now, Limits: Limits{PerMinute: 100, PerDay: 1000}})(statusHandler)
	var passed, refused atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			switch rec.Code {
			case 200:
				passed.Add(1)
			case 429:
				refused.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if passed.Load() != 100 || refused.Load() != 900 {
		t.Errorf("passed %d, refused %d; want 100 and 900", passed.Load(), refused.Load())
	}
}

// A Config without a key function is refused when the middleware is built:
// keying on RemoteAddr by default would limit every caller behind a proxy as
// one, so the client IP is a choice made by name (ByClientIP).
func TestNilKeyRefused(t *testing.T) {
	if err := (Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "Config.Key is nil") {
		t.Errorf("Validate of a Config without Key: %v, want the nil-Key error", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Middleware accepted a Config without Key")
			}
		}()
		Middleware(Config{})
	}()
	if err := (Config{Key: ByClientIP}).Validate(); err != nil {
		t.Errorf("Validate with ByClientIP: %v", err)
	}
}

// ByClientIP keys on the host of RemoteAddr with the Config's Limits.
func TestByClientIP(t *testing.T) {
	h := Middleware(Config{Key: ByClientIP, Limits: Limits{PerMinute: 1, PerDay: 10}, Now: newClock().Now})(statusHandler)
	for _, tt := range []struct {
		remote string
		code   int
	}{
		{"192.0.2.1:1000", 200},
		{"192.0.2.1:2000", 429}, // same IP, other port: same bucket
		{"192.0.2.2:1000", 200},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != tt.code || rec.Header().Get("X-RateLimit-Limit") != "1" {
			t.Errorf("%s: %d limit %q, want %d limit \"1\"", tt.remote, rec.Code, rec.Header().Get("X-RateLimit-Limit"), tt.code)
		}
	}
}

// TestByClient: ByClient keys on the address its Source tells, one bucket an
// address: behind a trusted proxy, the address the proxy wrote; a caller's
// own header from elsewhere is not believed; an IPv4-mapped address is its
// IPv4 address; and a RemoteAddr that is not an address is a bucket of its
// own, keyed as it is, not a way around the limit.
func TestByClient(t *testing.T) {
	key := ByClient(clientaddr.Source{
		Header:         "X-Forwarded-For",
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	})
	h := Middleware(Config{Key: key, Limits: Limits{PerMinute: 1, PerDay: 10}, Now: newClock().Now})(statusHandler)
	for _, tt := range []struct {
		remote, forwarded string
		code              int
	}{
		{"10.0.0.1:1000", "203.0.113.1", 200},
		{"10.0.0.2:1000", "203.0.113.1", 429}, // another proxy, the same client
		{"10.0.0.1:1000", "203.0.113.2", 200}, // the same proxy, another client
		{"192.0.2.1:1000", "203.0.113.3", 200},
		{"192.0.2.1:2000", "203.0.113.4", 429},       // not a proxy: its own address
		{"[::ffff:192.0.2.1]:1000", "", 429},         // the same address, mapped
		{"10.0.0.3:1000", "::ffff:203.0.113.2", 429}, // 203.0.113.2, mapped
		{"pipe", "", 200},
		{"pipe", "", 429}, // no address: keyed on RemoteAddr as it is
		{"other-pipe", "", 200},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		if tt.forwarded != "" {
			r.Header.Set("X-Forwarded-For", tt.forwarded)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != tt.code {
			t.Errorf("%s (X-Forwarded-For %q): %d, want %d", tt.remote, tt.forwarded, rec.Code, tt.code)
		}
	}
}

// TestClientKey: the key of a client is the text of its address, whatever
// form RemoteAddr has it in, or RemoteAddr itself if that is not an address;
// read from a RemoteAddr that begins with the address's text, as a server's
// connections have it, it costs no allocation.
func TestClientKey(t *testing.T) {
	for _, tt := range []struct {
		remote, want string
		free         bool // no allocation
	}{
		{"192.0.2.1:5", "192.0.2.1", true},
		{"[2001:db8::1]:5", "2001:db8::1", true},
		{"[fe80::1%eth0]:5", "fe80::1%eth0", true},
		{"192.0.2.1", "192.0.2.1", false},
		{"[2001:db8:0::1]:5", "2001:db8::1", false},
		{"[::ffff:192.0.2.1]:5", "192.0.2.1", false},
		{"2001:db8::1", "2001:db8::1", false},
		{"pipe", "pipe", false},
		{"", "", false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		if got := clientKey(clientaddr.Source{}, r); got != tt.want {
			t.Errorf("key of %q = %q, want %q", tt.remote, got, tt.want)
		}
		if !tt.free || testing.CoverMode() != "" {
			continue
		}
		if n := testing.AllocsPerRun(100, func() { clientKey(clientaddr.Source{}, r) }); n != 0 {
			t.Errorf("key of %q: %v allocations, want 0", tt.remote, n)
		}
	}
}
