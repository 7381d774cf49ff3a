package gatehouse

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/internal/testclock"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// chargeStack is a whole gateway (New) behind a real socket, on a test clock,
// whose product handler answers 200 {"ok":true}.
type chargeStack struct {
	url string
	clk *testclock.Clock
}

func newChargeStack(t *testing.T, keys []auth.Key, products []auth.Product, owners map[string][]ratelimit.Rate) *chargeStack {
	t.Helper()
	clk := testclock.New(t0)
	cfg := Config{
		Auth:     auth.Config{Store: auth.NewMemoryStore(keys...)},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(products...)},
		Product: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok":true}`)
		}),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:    clk.Now,
	}
	if owners != nil {
		cfg.Owners = func(_ context.Context, owner string) []ratelimit.Rate { return owners[owner] }
	}
	srv := httptest.NewServer(mustNew(t, cfg))
	t.Cleanup(srv.Close)
	return &chargeStack{url: srv.URL, clk: clk}
}

// chargeReply is what a call got: status, body, and the rate-limit headers
// ("" for an absent one).
type chargeReply struct {
	status int
	body   string
	h      map[string]string
}

var chargeHeaders = []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Daily-Limit", "X-RateLimit-Daily-Remaining", "Retry-After", "RateLimit-Policy", "RateLimit"}

func (s *chargeStack) post(t *testing.T, key, target string) chargeReply {
	t.Helper()
	req, _ := http.NewRequest("POST", s.url+target, strings.NewReader(`{"inputs":{}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", key)
	req.Header.Set("X-Request-ID", requestID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	got := chargeReply{status: resp.StatusCode, body: string(body), h: map[string]string{}}
	for _, name := range chargeHeaders {
		got.h[name] = resp.Header.Get(name)
	}
	return got
}

// expect checks a reply's status, body and every rate-limit header exactly;
// a header missing from want must be absent.
func (r chargeReply) expect(t *testing.T, what string, status int, body string, want map[string]string) {
	t.Helper()
	if r.status != status || r.body != body {
		t.Errorf("%s: %d %q, want %d %q", what, r.status, r.body, status, body)
	}
	for _, name := range chargeHeaders {
		if r.h[name] != want[name] {
			t.Errorf("%s: %s = %q, want %q", what, name, r.h[name], want[name])
		}
	}
}

// xrl is the four X-RateLimit headers of a key's minute and day.
func xrl(perMinute, minuteLeft, perDay, dayLeft int) map[string]string {
	return map[string]string{
		"X-RateLimit-Limit":           itoa(perMinute),
		"X-RateLimit-Remaining":       itoa(minuteLeft),
		"X-RateLimit-Daily-Limit":     itoa(perDay),
		"X-RateLimit-Daily-Remaining": itoa(dayLeft),
	}
}

// with returns h with more headers.
func with(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

const okBody = `{"ok":true}`

// TestProductCost: a product of cost 5 spends 5 from the key's minute and
// day, 10 with ?format=pdf, 5 with a format it does not price; a request
// whose cost does not fit is refused with Retry-After when that cost fits,
// spending nothing, and passes exactly then; an unknown product costs 1 and
// is answered 404 after the rate limit, and so does an inactive one
// whatever its own cost.
func TestProductCost(t *testing.T) {
	plain, k := auth.NewKey()
	k.Products = []string{"quote"}
	k.PerMinute, k.PerDay = 60, 1000
	k.Products = append(k.Products, "retired")
	s := newChargeStack(t, []auth.Key{k}, []auth.Product{
		{Slug: "quote", Active: true, Cost: 5, FormatCosts: map[string]int{"pdf": 10}},
		{Slug: "retired", Active: false, Cost: 50},
	}, nil)

	s.post(t, plain, "/api/quote").expect(t, "cost 5", 200, okBody, xrl(60, 55, 1000, 995))
	s.post(t, plain, "/api/quote?format=pdf").expect(t, "pdf, cost 10", 200, okBody, xrl(60, 45, 1000, 985))
	s.post(t, plain, "/api/quote?format=json").expect(t, "json, not priced: cost 5", 200, okBody, xrl(60, 40, 1000, 980))
	s.post(t, plain, "/api/quote?format=json&format=pdf").expect(t, "repeated: the dearest", 200, okBody, xrl(60, 30, 1000, 970))
	for range 3 {
		s.post(t, plain, "/api/quote?format=pdf")
	}
	// 0 left in the minute: a pdf waits for 10 tokens (1 s each at 60/min).
	limited := errorBody("Rate limit exceeded")
	s.post(t, plain, "/api/quote?format=pdf").expect(t, "pdf refused", 429, limited, with(xrl(60, 0, 1000, 940), "Retry-After", "10"))
	s.clk.Advance(5 * time.Second)
	s.post(t, plain, "/api/quote?format=pdf").expect(t, "pdf after 5 s", 429, limited, with(xrl(60, 5, 1000, 940), "Retry-After", "5"))
	s.post(t, plain, "/api/quote").expect(t, "cost 5 fits after 5 s", 200, okBody, xrl(60, 0, 1000, 935))
	s.clk.Advance(10 * time.Second)
	s.post(t, plain, "/api/quote?format=pdf").expect(t, "pdf when it fits", 200, okBody, xrl(60, 0, 1000, 925))
	s.clk.Advance(time.Second)
	s.post(t, plain, "/api/nope?format=pdf").expect(t, "unknown product: cost 1, then 404", 404, errorBody("Product not found"), xrl(60, 0, 1000, 924))
	s.clk.Advance(time.Second)
	s.post(t, plain, "/api/retired").expect(t, "inactive product: cost 1, not its 50, then 404", 404, errorBody("Product not found"), xrl(60, 0, 1000, 923))
}

// TestOwnerSharesAllowance: two keys of one owner spend one owner's
// allowance of 3 a day on top of their own limits; the key that finds it
// spent is refused with the owner's window in the draft headers and its
// Retry-After, and spends nothing; a key of an owner without an allowance,
// and a key without an owner, are limited by their own limits only.
func TestOwnerSharesAllowance(t *testing.T) {
	var plains [4]string
	var keys []auth.Key
	for i, owner := range []string{"acme", "acme", "globex", ""} {
		p, k := auth.NewKey()
		k.Products = []string{"quote"}
		k.PerMinute, k.PerDay = 60, 1000
		k.Owner = owner
		plains[i] = p
		keys = append(keys, k)
	}
	a, b, globex, none := plains[0], plains[1], plains[2], plains[3]
	s := newChargeStack(t, keys, []auth.Product{{Slug: "quote", Active: true}},
		map[string][]ratelimit.Rate{"acme": {{Limit: 3, Period: 24 * time.Hour}}})

	policy := `"minute";q=60;w=60, "day";q=1000;w=86400, "owner-day";q=3;w=86400`
	s.post(t, a, "/api/quote").expect(t, "a 1", 200, okBody, with(xrl(60, 59, 1000, 999),
		"RateLimit-Policy", policy, "RateLimit", `"minute";r=59;t=1, "day";r=999;t=87, "owner-day";r=2;t=28800`))
	s.post(t, a, "/api/quote")
	s.post(t, b, "/api/quote").expect(t, "b 1: the owner's third", 200, okBody, with(xrl(60, 59, 1000, 999),
		"RateLimit-Policy", policy, "RateLimit", `"minute";r=59;t=1, "day";r=999;t=87, "owner-day";r=0;t=86400`))
	s.post(t, b, "/api/quote").expect(t, "b 2: the owner's allowance is spent", 429, errorBody("Rate limit exceeded"), with(xrl(60, 59, 1000, 999),
		"Retry-After", "28800",
		"RateLimit-Policy", policy, "RateLimit", `"minute";r=59;t=1, "day";r=999;t=87, "owner-day";r=0;t=86400`))
	s.post(t, a, "/api/quote").expect(t, "a 3: the same owner", 429, errorBody("Rate limit exceeded"), with(xrl(60, 58, 1000, 998),
		"Retry-After", "28800",
		"RateLimit-Policy", policy, "RateLimit", `"minute";r=58;t=2, "day";r=998;t=173, "owner-day";r=0;t=86400`))
	for i := range 5 {
		s.post(t, globex, "/api/quote").expect(t, "owner without an allowance", 200, okBody, xrl(60, 59-i, 1000, 999-i))
		s.post(t, none, "/api/quote").expect(t, "no owner", 200, okBody, xrl(60, 59-i, 1000, 999-i))
	}
	s.clk.Advance(28800 * time.Second)
	s.post(t, b, "/api/quote").expect(t, "b when the owner's window can pay", 200, okBody, with(xrl(60, 60-1, 1000, 999),
		"RateLimit-Policy", policy, "RateLimit", `"minute";r=59;t=1, "day";r=999;t=87, "owner-day";r=0;t=86400`))
}

// TestKeyHourlyWindow: a key's own window of 2 an hour refuses the third
// request with its Retry-After and appears in the draft headers.
func TestKeyHourlyWindow(t *testing.T) {
	plain, k := auth.NewKey()
	k.Products = []string{"quote"}
	k.PerMinute, k.PerDay = 60, 1000
	k.Windows = []ratelimit.Rate{{Limit: 2, Period: time.Hour}}
	s := newChargeStack(t, []auth.Key{k}, []auth.Product{{Slug: "quote", Active: true}}, nil)

	policy := `"minute";q=60;w=60, "day";q=1000;w=86400, "hour";q=2;w=3600`
	s.post(t, plain, "/api/quote").expect(t, "1", 200, okBody, with(xrl(60, 59, 1000, 999),
		"RateLimit-Policy", policy, "RateLimit", `"minute";r=59;t=1, "day";r=999;t=87, "hour";r=1;t=1800`))
	s.post(t, plain, "/api/quote")
	s.post(t, plain, "/api/quote").expect(t, "3: the hour is spent", 429, errorBody("Rate limit exceeded"), with(xrl(60, 58, 1000, 998),
		"Retry-After", "1800",
		"RateLimit-Policy", policy, "RateLimit", `"minute";r=58;t=2, "day";r=998;t=173, "hour";r=0;t=3600`))
	s.clk.Advance(1799 * time.Second)
	if got := s.post(t, plain, "/api/quote"); got.status != 429 || got.h["Retry-After"] != "1" {
		t.Errorf("1 s before: %d Retry-After %q, want 429 and 1", got.status, got.h["Retry-After"])
	}
	s.clk.Advance(time.Second)
	if got := s.post(t, plain, "/api/quote"); got.status != 200 {
		t.Errorf("at Retry-After: %d, want 200", got.status)
	}
}

// TestKeyChargeAllocatesNothing: the default rate-limit key of a key with
// only its minute and day and a product of cost 1 allocates nothing, with or
// without an Owners function (that gives the owner none) and with a query.
func TestKeyChargeAllocatesNothing(t *testing.T) {
	plain, k := auth.NewKey()
	k.Products = []string{"quote"}
	k.Owner = "acme"
	cfg := Config{
		Auth:     auth.Config{Store: auth.NewMemoryStore(k)},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true, FormatCosts: map[string]int{"pdf": 1}})},
		Owners:   func(context.Context, string) []ratelimit.Rate { return nil },
	}.withDefaults()
	var allocs float64
	var charge ratelimit.Charge
	h := auth.Middleware(cfg.Auth)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		allocs = testing.AllocsPerRun(100, func() { charge, _ = cfg.keyCharge(r) })
	}))
	mux := http.NewServeMux()
	mux.Handle("POST /api/{productSlug}", h)
	req := httptest.NewRequest("POST", "/api/quote?format=pdf&x=1", nil)
	req.Header.Set("X-API-Key", plain)
	mux.ServeHTTP(httptest.NewRecorder(), req)
	if allocs != 0 {
		t.Errorf("keyCharge allocates %v times per request, want 0", allocs)
	}
	if charge.Key != k.ID || charge.Cost != 1 || charge.Owner != "" || charge.Limits.More != nil {
		t.Errorf("charge = %+v, want the key's own, cost 1, no owner, no windows", charge)
	}
}

// TestKeyChargeEmptyWindows: a key record whose Windows is empty but not nil
// sets no windows of its own, as a nil one: the charge's More is nil, which
// the limiter fills with RateLimit.Limits.More (ratelimit.Limits' rule for a
// nil More), rather than an empty More that would drop the default windows.
func TestKeyChargeEmptyWindows(t *testing.T) {
	for _, windows := range [][]ratelimit.Rate{nil, {}} {
		plain, k := auth.NewKey()
		k.Products = []string{"quote"}
		k.Windows = windows
		cfg := Config{
			Auth:     auth.Config{Store: auth.NewMemoryStore(k)},
			Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true})},
		}.withDefaults()
		var charge ratelimit.Charge
		h := auth.Middleware(cfg.Auth)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			charge, _ = cfg.keyCharge(r)
		}))
		req := httptest.NewRequest("POST", "/api/quote", nil)
		req.Header.Set("X-API-Key", plain)
		h.ServeHTTP(httptest.NewRecorder(), req)
		if charge.Key != k.ID || charge.Limits.More != nil {
			t.Errorf("Windows %#v: charge %+v, want the key's with a nil More", windows, charge)
		}
	}
}
