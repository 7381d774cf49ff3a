package gatehouse

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/errorsjson"
	"github.com/gatehouse-go/gatehouse/inputs"
	"github.com/gatehouse-go/gatehouse/internal/testclock"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// The keys of the test stack, minted once per test binary.
type testKeys struct {
	valid, tiny, disabled, expired, otherScope, unknown string
}

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// newTestStack returns a whole gateway whose product handler answers like an
// upstream, with fresh rate-limit state, its keys, its clock and its log.
func newTestStack(t *testing.T) (http.Handler, testKeys, *testclock.Clock, *bytes.Buffer) {
	t.Helper()
	var k testKeys
	var records []auth.Key
	add := func(dst *string, edit func(*auth.Key)) {
		plain, rec := auth.NewKey()
		rec.Products = []string{"quote", "panics"}
		edit(&rec)
		*dst = plain
		records = append(records, rec)
	}
	add(&k.valid, func(*auth.Key) {})
	add(&k.tiny, func(r *auth.Key) { r.PerMinute, r.PerDay = 2, 100 })
	add(&k.disabled, func(r *auth.Key) { r.Disabled = true })
	add(&k.expired, func(r *auth.Key) { r.ExpiresAt = t0.Add(-time.Second) })
	add(&k.otherScope, func(r *auth.Key) { r.Products = []string{"other"} })
	k.unknown, _ = auth.NewKey()

	clk := testclock.New(t0)
	logs := &bytes.Buffer{}
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.ProductFrom(r.Context())
		if p.Slug == "panics" {
			panic("backend bug")
		}
		in, _ := inputs.From(r.Context())
		body, _ := io.ReadAll(r.Body) // the body is still readable after validation
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"status":        200,
			"response_data": map[string]any{"outputs": map[string]any{"fields": slices.Sorted(maps.Keys(in)), "bytes": len(body)}},
		})
	})
	h := mustNew(t, Config{
		Auth: auth.Config{Store: auth.NewMemoryStore(records...)},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(
			auth.Product{Slug: "quote", Active: true, Required: []string{"Premium", "Age"}},
			auth.Product{Slug: "panics", Active: true},
			auth.Product{Slug: "retired", Active: false},
			auth.Product{Slug: "other", Active: true},
		)},
		RateLimit: ratelimit.Config{Limits: ratelimit.Limits{PerMinute: 60, PerDay: 10000}},
		Inputs:    inputs.Config{MaxBytes: 1024},
		Product:   backend,
		Logger:    slog.New(slog.NewJSONHandler(logs, nil)),
		Now:       clk.Now,
	})
	return h, k, clk, logs
}

// mustNew is New for a Config the test knows to be whole.
func mustNew(t testing.TB, cfg Config) http.Handler {
	t.Helper()
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

const requestID = "test-request-1"

func post(h http.Handler, path, key, contentType, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", path, strings.NewReader(body))
	if key != "" {
		r.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	r.Header.Set("X-Request-ID", requestID)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// errorBody is the exact body the stack writes for message.
func errorBody(message string) string {
	b, _ := json.Marshal(errorsjson.Body{Error: message, RequestID: requestID})
	return string(b) + "\n"
}

// usage is the rate-limit headers after n requests of a 60/min, 10000/day key.
func usage(n int) map[string]string {
	return map[string]string{
		"X-RateLimit-Limit":           "60",
		"X-RateLimit-Remaining":       itoa(60 - n),
		"X-RateLimit-Daily-Limit":     "10000",
		"X-RateLimit-Daily-Remaining": itoa(10000 - n),
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

var rateLimitHeaders = []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Daily-Limit", "X-RateLimit-Daily-Remaining", "Retry-After"}

// TestContract walks every row of docs/contract.md's status table through the
// whole stack, asserting status, body and headers exactly.
func TestContract(t *testing.T) {
	const good = `{"inputs":{"Premium":1200,"Age":42}}`
	tests := []struct {
		name        string
		path        string
		key         func(testKeys) string
		contentType string
		body        string
		wantStatus  int
		wantBody    string            // exact
		wantHeaders map[string]string // exact; a rate-limit header not named must be absent
	}{
		{"success", "/api/quote", func(k testKeys) string { return k.valid }, "application/json", good,
			200, `{"response_data":{"outputs":{"bytes":36,"fields":["Age","Premium"]}},"status":200}` + "\n", usage(1)},
		{"no key", "/api/quote", func(testKeys) string { return "" }, "application/json", good,
			401, errorBody(errorsjson.MsgNoKey), map[string]string{"WWW-Authenticate": "Bearer"}},
		{"not ila format", "/api/quote", func(testKeys) string { return "sk_live_abc" }, "application/json", good,
			401, errorBody(errorsjson.MsgInvalidKey), map[string]string{"WWW-Authenticate": "Bearer"}},
		{"bad checksum", "/api/quote", func(k testKeys) string { return k.valid[:len(k.valid)-1] + flip(k.valid[len(k.valid)-1]) }, "application/json", good,
			401, errorBody(errorsjson.MsgInvalidKey), map[string]string{"WWW-Authenticate": "Bearer"}},
		{"unknown key", "/api/quote", func(k testKeys) string { return k.unknown }, "application/json", good,
			401, errorBody(errorsjson.MsgInvalidKey), map[string]string{"WWW-Authenticate": "Bearer"}},
		{"disabled key", "/api/quote", func(k testKeys) string { return k.disabled }, "application/json", good,
			401, errorBody(errorsjson.MsgInvalidKey), map[string]string{"WWW-Authenticate": "Bearer"}},
		{"expired key", "/api/quote", func(k testKeys) string { return k.expired }, "application/json", good,
			401, errorBody(errorsjson.MsgInvalidKey), map[string]string{"WWW-Authenticate": "Bearer"}},
		{"key not scoped to product", "/api/quote", func(k testKeys) string { return k.otherScope }, "application/json", good,
			403, errorBody(errorsjson.MsgForbidden), usage(1)},
		{"unknown product", "/api/nope", func(k testKeys) string { return k.valid }, "application/json", good,
			404, errorBody(errorsjson.MsgProductNotFound), usage(1)},
		{"inactive product", "/api/retired", func(k testKeys) string { return k.valid }, "application/json", good,
			404, errorBody(errorsjson.MsgProductNotFound), usage(1)},
		{"body not JSON", "/api/quote", func(k testKeys) string { return k.valid }, "application/json", `{"inputs":`,
			400, errorBody(inputs.MsgBodyNotJSON), usage(1)},
		{"inputs missing", "/api/quote", func(k testKeys) string { return k.valid }, "application/json", `{"Premium":1}`,
			400, errorBody(inputs.MsgNoInputs), usage(1)},
		{"inputs not an object", "/api/quote", func(k testKeys) string { return k.valid }, "application/json", `{"inputs":[1]}`,
			400, errorBody(inputs.MsgInputsNotObject), usage(1)},
		{"required field absent", "/api/quote", func(k testKeys) string { return k.valid }, "application/json", `{"inputs":{"Age":42}}`,
			400, errorBody("Missing required input field: Premium"), usage(1)},
		{"wrong content type", "/api/quote", func(k testKeys) string { return k.valid }, "text/plain", good,
			415, errorBody(inputs.MsgUnsupportedMediaType), usage(1)},
		{"body over the bound", "/api/quote", func(k testKeys) string { return k.valid }, "application/json", `{"inputs":{"Premium":"` + strings.Repeat("x", 2000) + `"}}`,
			413, errorBody(errorsjson.MsgBodyTooLarge), usage(1)},
		{"panic in the product handler", "/api/panics", func(k testKeys) string { return k.valid }, "application/json", `{"inputs":{}}`,
			500, errorBody(errorsjson.MsgInternal), usage(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, keys, _, logs := newTestStack(t)
			rec := post(h, tt.path, tt.key(keys), tt.contentType, tt.body)
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := rec.Body.String(); got != tt.wantBody {
				t.Errorf("body = %q, want %q", got, tt.wantBody)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			if got := rec.Header().Get("X-Request-ID"); got != requestID {
				t.Errorf("X-Request-ID = %q, want %q", got, requestID)
			}
			assertHeaders(t, rec.Header(), tt.wantHeaders)
			if k := tt.key(keys); strings.HasPrefix(k, "ila_") && strings.Contains(logs.String(), k) {
				t.Errorf("the log holds the key: %s", logs.String())
			}
		})
	}
}

// assertHeaders checks want exactly and that no rate-limit header beyond want is set.
func assertHeaders(t *testing.T, h http.Header, want map[string]string) {
	t.Helper()
	for name, v := range want {
		if got := h.Values(name); len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want [%q]", name, got, v)
		}
	}
	for _, name := range rateLimitHeaders {
		if _, named := want[name]; !named && h.Get(name) != "" {
			t.Errorf("%s = %q, want it absent", name, h.Get(name))
		}
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// TestInvalidKeysLookAlike proves that an unknown, a disabled and an expired key
// get byte-identical answers, so the answer tells a guesser nothing.
func TestInvalidKeysLookAlike(t *testing.T) {
	h, keys, _, _ := newTestStack(t)
	var first *httptest.ResponseRecorder
	for _, key := range []string{keys.unknown, keys.disabled, keys.expired} {
		rec := post(h, "/api/quote", key, "application/json", `{"inputs":{}}`)
		if first == nil {
			first = rec
			continue
		}
		if rec.Code != first.Code || rec.Body.String() != first.Body.String() {
			t.Errorf("answers differ: %d %q vs %d %q", rec.Code, rec.Body, first.Code, first.Body)
		}
		a, b := rec.Header().Clone(), first.Header().Clone()
		if !maps.EqualFunc(a, b, slices.Equal) {
			t.Errorf("headers differ: %v vs %v", a, b)
		}
	}
}

// TestRateLimit proves the 429 row: the third request of a 2/min key is refused
// with Retry-After, spends nothing, and a retry after Retry-After passes.
func TestRateLimit(t *testing.T) {
	h, keys, clk, _ := newTestStack(t)
	body := `{"inputs":{"Premium":1,"Age":2}}`
	for i, wantRemaining := range []string{"1", "0"} {
		rec := post(h, "/api/quote", keys.tiny, "application/json", body)
		if rec.Code != 200 {
			t.Fatalf("request %d: status %d, want 200", i+1, rec.Code)
		}
		assertHeaders(t, rec.Header(), map[string]string{
			"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": wantRemaining,
			"X-RateLimit-Daily-Limit": "100", "X-RateLimit-Daily-Remaining": itoa(99 - i),
		})
	}
	for range 2 { // refused twice: the refusal spends nothing
		rec := post(h, "/api/quote", keys.tiny, "application/json", body)
		if rec.Code != 429 || rec.Body.String() != errorBody(errorsjson.MsgRateLimited) {
			t.Fatalf("got %d %q, want 429 %q", rec.Code, rec.Body, errorBody(errorsjson.MsgRateLimited))
		}
		// 2/min refills one token every 30 s.
		assertHeaders(t, rec.Header(), map[string]string{
			"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0",
			"X-RateLimit-Daily-Limit": "100", "X-RateLimit-Daily-Remaining": "98",
			"Retry-After": "30",
		})
	}
	// Rate limiting comes before the product check: a 429 even for an unknown product.
	if rec := post(h, "/api/nope", keys.tiny, "application/json", body); rec.Code != 429 {
		t.Errorf("unknown product while limited: %d, want 429", rec.Code)
	}
	clk.Advance(30 * time.Second)
	if rec := post(h, "/api/quote", keys.tiny, "application/json", body); rec.Code != 200 {
		t.Errorf("retry after Retry-After: %d, want 200", rec.Code)
	}
}

// TestInvalidKeysSpendNothing: failed authentication must not touch the
// rate-limit state of anyone.
func TestInvalidKeysSpendNothing(t *testing.T) {
	h, keys, _, _ := newTestStack(t)
	for range 5 {
		post(h, "/api/quote", keys.unknown, "application/json", `{}`)
	}
	rec := post(h, "/api/quote", keys.valid, "application/json", `{"inputs":{"Premium":1,"Age":2}}`)
	assertHeaders(t, rec.Header(), usage(1))
}

func TestRoutes(t *testing.T) {
	h, _, _, _ := newTestStack(t)
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantBody           string
		wantAllow          string
	}{
		{"health", "GET", "/health", 200, `{"status":"ok"}` + "\n", ""},
		{"unknown route", "GET", "/nowhere", 404, errorBody(errorsjson.MsgNotFound), ""},
		{"wrong method on the API", "GET", "/api/quote", 405, errorBody(errorsjson.MsgMethodNotAllowed), "POST"},
		{"wrong method on health", "DELETE", "/health", 405, errorBody(errorsjson.MsgMethodNotAllowed), "GET, HEAD"},
		// ServeMux would redirect these to the cleaned path, with no body.
		{"dot segment", "POST", "/api/./quote", 404, errorBody(errorsjson.MsgNotFound), ""},
		{"dot-dot segment", "GET", "/x/../health", 404, errorBody(errorsjson.MsgNotFound), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, nil)
			r.Header.Set("X-Request-ID", requestID)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tt.wantStatus || rec.Body.String() != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body, tt.wantStatus, tt.wantBody)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q", got)
			}
			if got := rec.Header().Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
		})
	}
}

// TestMaxHeaderBytes: New answers headers past Config.MaxHeaderBytes with
// the JSON 431; a negative bound is none.
func TestMaxHeaderBytes(t *testing.T) {
	for _, tt := range []struct {
		name   string
		bound  int
		status int
		body   string
	}{
		{"default bound", 0, 431, errorBody(errorsjson.MsgHeaderTooLarge)},
		{"bound above", 2 * DefaultMaxHeaderBytes, 200, `{"status":"ok"}` + "\n"},
		{"no bound", -1, 200, `{"status":"ok"}` + "\n"},
	} {
		h := mustNew(t, Config{
			Auth:           auth.Config{Store: auth.NewMemoryStore()},
			Products:       auth.ProductConfig{Catalog: auth.NewMemoryCatalog()},
			Product:        http.NotFoundHandler(),
			MaxHeaderBytes: tt.bound,
			Logger:         slog.New(slog.DiscardHandler),
		})
		r := httptest.NewRequest("GET", "/health", nil)
		r.Header.Set("X-Request-ID", requestID)
		r.Header.Set("X-Big", strings.Repeat("a", DefaultMaxHeaderBytes))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != tt.status || rec.Body.String() != tt.body || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %q (Content-Type %q), want %d %q", tt.name, rec.Code, rec.Body, rec.Header().Get("Content-Type"), tt.status, tt.body)
		}
	}
}

// TestRequestLog proves the one log line per request: id, key id (never the
// key), product, status.
func TestRequestLog(t *testing.T) {
	h, keys, _, logs := newTestStack(t)
	post(h, "/api/quote", keys.valid, "application/json", `{"inputs":{"Premium":1,"Age":2}}`)
	var line struct {
		Msg, RequestID, KeyID, Product string
		Status                         int
	}
	var raw map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(logs.Bytes()), &raw); err != nil {
		t.Fatalf("log %q: %v", logs, err)
	}
	line.Msg, _ = raw["msg"].(string)
	line.RequestID, _ = raw["request_id"].(string)
	line.KeyID, _ = raw["key_id"].(string)
	line.Product, _ = raw["product"].(string)
	status, _ := raw["status"].(float64)
	line.Status = int(status)
	if line.Msg != "request" || line.RequestID != requestID || !strings.HasPrefix(line.KeyID, "key_") ||
		line.Product != "quote" || line.Status != 200 {
		t.Errorf("log line = %+v, want request/%s/key_…/quote/200", line, requestID)
	}
	if strings.Contains(logs.String(), keys.valid) {
		t.Errorf("the log holds the key")
	}
}

func TestUpstreamsDispatch(t *testing.T) {
	var u Upstreams
	h := auth.Products(auth.ProductConfig{Catalog: auth.NewMemoryCatalog(
		auth.Product{Slug: "a", Active: true}, auth.Product{Slug: "b", Active: true})})(&u)
	serve := func(slug string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/api/"+slug, nil)
		r.SetPathValue("productSlug", slug)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	if rec := serve("a"); rec.Code != 503 || !strings.Contains(rec.Body.String(), errorsjson.MsgUpstreamUnavailable) {
		t.Errorf("no handlers: %d %q, want 503", rec.Code, rec.Body)
	}
	u.Set(map[string]http.Handler{
		"a": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("A")) }),
	})
	if rec := serve("a"); rec.Code != 200 || rec.Body.String() != "A" {
		t.Errorf("a: %d %q, want 200 A", rec.Code, rec.Body)
	}
	if rec := serve("b"); rec.Code != 503 {
		t.Errorf("b without a handler: %d, want 503", rec.Code)
	}
}

// TestFailedKeyThrottle: with the throttle on, an address that spent its failed
// attempts gets the contract's 429 (Retry-After, no usage headers) for further
// guesses, while a valid key from it still gets through with its usage.
func TestFailedKeyThrottle(t *testing.T) {
	clk := testclock.New(t0)
	plain, rec := auth.NewKey()
	rec.Products = []string{"quote"}
	h := mustNew(t, Config{
		Auth: auth.Config{
			Store:    auth.NewMemoryStore(rec),
			Throttle: auth.NewThrottle(auth.ThrottleConfig{Attempts: 2, Per: time.Minute, Now: clk.Now}),
		},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true})},
		Product:  http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") }),
		Logger:   slog.New(slog.DiscardHandler),
		Now:      clk.Now,
	})
	const body = `{"inputs":{}}`
	if rec := post(h, "/api/quote", plain, "application/json", body); rec.Code != 200 {
		t.Fatalf("valid key: %d %s", rec.Code, rec.Body)
	}
	for range 2 {
		unknown, _ := auth.NewKey()
		rec := post(h, "/api/quote", unknown, "application/json", body)
		if rec.Code != 401 || rec.Body.String() != errorBody(errorsjson.MsgInvalidKey) {
			t.Fatalf("guess: %d %q", rec.Code, rec.Body)
		}
	}
	unknown, _ := auth.NewKey()
	limited := post(h, "/api/quote", unknown, "application/json", body)
	if limited.Code != 429 || limited.Body.String() != errorBody(errorsjson.MsgRateLimited) {
		t.Fatalf("throttled guess: %d %q", limited.Code, limited.Body)
	}
	// No usage headers: the request has no valid key to count against.
	assertHeaders(t, limited.Header(), map[string]string{"Retry-After": "30", "Content-Type": "application/json"})
	if v := limited.Header().Values("WWW-Authenticate"); v != nil {
		t.Errorf("429 carries WWW-Authenticate %q", v)
	}
	ok := post(h, "/api/quote", plain, "application/json", body)
	if ok.Code != 200 {
		t.Fatalf("valid key from the throttled address: %d %s", ok.Code, ok.Body)
	}
	assertHeaders(t, ok.Header(), map[string]string{"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "58",
		"X-RateLimit-Daily-Limit": "10000", "X-RateLimit-Daily-Remaining": "9998"})
}

// TestRequestLogLevel: with info lines off, there is no request line, the
// request is answered as usual, and a line turned on at run time appears.
func TestRequestLogLevel(t *testing.T) {
	var logs bytes.Buffer
	level := new(slog.LevelVar)
	level.Set(slog.LevelWarn)
	plain, rec := auth.NewKey()
	rec.Products = []string{"quote"}
	h := mustNew(t, Config{
		Auth:     auth.Config{Store: auth.NewMemoryStore(rec)},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true})},
		Product:  http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) }),
		Logger:   slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: level})),
	})
	if got := post(h, "/api/quote", plain, "application/json", `{"inputs":{}}`); got.Code != 200 || got.Body.String() != `{"ok":true}` {
		t.Fatalf("answer: %d %q", got.Code, got.Body)
	}
	if logs.Len() != 0 {
		t.Errorf("at warn level the log holds %q", logs.String())
	}
	level.Set(slog.LevelInfo)
	post(h, "/api/quote", plain, "application/json", `{"inputs":{}}`)
	if !strings.Contains(logs.String(), `"msg":"request"`) || !strings.Contains(logs.String(), `"status":200`) {
		t.Errorf("at info level the log holds %q", logs.String())
	}
}

// TestMiddlewareRequestIDFromErrorsjson: as Middleware's doc says, the request
// id of its answers comes from errorsjson.RequestID around it, and without it
// there is none.
func TestMiddlewareRequestIDFromErrorsjson(t *testing.T) {
	mw, err := Middleware(Config{
		Auth:     auth.Config{Store: auth.NewMemoryStore()},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog()},
	})
	if err != nil {
		t.Fatal(err)
	}
	checked := mw(http.NotFoundHandler())
	mux := http.NewServeMux()
	mux.Handle("POST /api/{productSlug}", checked)
	tests := []struct {
		name       string
		h          http.Handler
		wantBody   string
		wantHeader string
	}{
		{"Middleware alone", mux, `{"error":"No API key provided"}` + "\n", ""},
		{"wrapped in errorsjson.RequestID", errorsjson.RequestID(mux), `{"error":"No API key provided","request_id":"req-1"}` + "\n", "req-1"},
	}
	for _, tt := range tests {
		req := httptest.NewRequest("POST", "/api/quote", strings.NewReader(`{"inputs":{}}`))
		req.Header.Set("X-Request-ID", "req-1")
		rec := httptest.NewRecorder()
		tt.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized || rec.Body.String() != tt.wantBody {
			t.Errorf("%s: %d %q, want 401 %q", tt.name, rec.Code, rec.Body.String(), tt.wantBody)
		}
		if got := rec.Header().Get("X-Request-ID"); got != tt.wantHeader {
			t.Errorf("%s: X-Request-ID = %q, want %q", tt.name, got, tt.wantHeader)
		}
	}
}

// TestRotatedKeysShareOneAllowance: two keys with the same Allowance (a key and
// the one that replaced it in a rotation) spend one rate limit, not two.
func TestRotatedKeysShareOneAllowance(t *testing.T) {
	oldPlain, old := auth.NewKey()
	newPlain, rotated := auth.NewKey()
	for _, k := range []*auth.Key{&old, &rotated} {
		k.Products = []string{"quote"}
		k.PerMinute, k.PerDay = 3, 100
		k.Allowance = old.ID
	}
	h := mustNew(t, Config{
		Auth:     auth.Config{Store: auth.NewMemoryStore(old, rotated)},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true})},
		Product:  http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:      func() time.Time { return t0 },
	})
	var got []int
	for _, key := range []string{oldPlain, newPlain, oldPlain, newPlain} {
		got = append(got, post(h, "/api/quote", key, "application/json", `{"inputs":{}}`).Code)
	}
	if want := []int{200, 200, 200, 429}; !slices.Equal(got, want) {
		t.Errorf("statuses %v, want %v: the two keys must spend one allowance of 3", got, want)
	}
}

// TestRequestLogAroundMiddleware: RequestLog, inside errorsjson.RequestID and
// around Middleware in a router of one's own, writes New's line: the
// request's id, the key's id (never the key), the product and the status; a
// request the key check refused has no key id nor product.
func TestRequestLogAroundMiddleware(t *testing.T) {
	plain, rec := auth.NewKey()
	rec.Products = []string{"quote"}
	checks, err := Middleware(Config{
		Auth:     auth.Config{Store: auth.NewMemoryStore(rec)},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true})},
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /v2/{productSlug}", checks(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok":true}`)
	})))
	var logs bytes.Buffer
	h := errorsjson.RequestID(RequestLog(slog.New(slog.NewJSONHandler(&logs, nil)))(mux))
	for _, key := range []string{plain, ""} {
		r := httptest.NewRequest("POST", "/v2/quote", strings.NewReader(`{"inputs":{}}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set(errorsjson.HeaderRequestID, "req-log")
		if key != "" {
			r.Header.Set("X-API-Key", key)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2: %q", len(lines), logs.String())
	}
	want := []map[string]any{
		{"msg": "request", "request_id": "req-log", "method": "POST", "path": "/v2/quote", "key_id": rec.ID, "product": "quote", "status": 200.0, "bytes": 11.0},
		{"msg": "request", "request_id": "req-log", "method": "POST", "path": "/v2/quote", "key_id": "", "product": "", "status": 401.0, "bytes": 55.0},
	}
	for i, line := range lines {
		var got map[string]any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if _, ok := got["duration"].(float64); !ok {
			t.Errorf("line %d has no duration: %q", i, line)
		}
		for k, v := range want[i] {
			if got[k] != v {
				t.Errorf("line %d: %s = %v, want %v", i, k, got[k], v)
			}
		}
		if _, ok := got["source"]; ok || got["level"] != "INFO" {
			t.Errorf("line %d: level %v, source %v: want INFO and none", i, got["level"], got["source"])
		}
	}
	if strings.Contains(logs.String(), plain) {
		t.Error("the log holds the key")
	}
}
