package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/errorsjson"

	"github.com/gatehouse-go/gatehouse/internal/testclock"
)

func TestExtractKey(t *testing.T) {
	const k, other = "ila_key", "ila_other"
	tests := []struct {
		name    string
		header  http.Header
		want    string
		wantErr error
	}{
		{"no headers", http.Header{}, "", nil},
		{"bearer", http.Header{"Authorization": {"Bearer " + k}}, k, nil},
		{"bearer lowercase", http.Header{"Authorization": {"bearer " + k}}, k, nil},
		{"bearer uppercase", http.Header{"Authorization": {"BEARER " + k}}, k, nil},
		{"bearer with tab and spaces", http.Header{"Authorization": {"  Bearer\t  " + k + "  "}}, k, nil},
		{"bearer without key", http.Header{"Authorization": {"Bearer"}}, "", nil},
		{"bearer with blank key", http.Header{"Authorization": {"Bearer   "}}, "", nil},
		{"bearer glued to key", http.Header{"Authorization": {"Bearer" + k}}, "", nil},
		{"basic scheme", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, "", nil},
		{"bare key in Authorization", http.Header{"Authorization": {k}}, "", nil},
		{"empty Authorization", http.Header{"Authorization": {""}}, "", nil},
		{"x-api-key", http.Header{"X-Api-Key": {k}}, k, nil},
		{"x-api-key trimmed", http.Header{"X-Api-Key": {" \t" + k + " "}}, k, nil},
		{"empty x-api-key", http.Header{"X-Api-Key": {"  "}}, "", nil},
		{"both, same", http.Header{"Authorization": {"Bearer " + k}, "X-Api-Key": {k}}, k, nil},
		{"both, different", http.Header{"Authorization": {"Bearer " + k}, "X-Api-Key": {other}}, "", errAmbiguousKey},
		{"basic and x-api-key", http.Header{"Authorization": {"Basic abc"}, "X-Api-Key": {k}}, k, nil},
		{"empty bearer and x-api-key", http.Header{"Authorization": {"Bearer "}, "X-Api-Key": {k}}, k, nil},
		{"repeated x-api-key", http.Header{"X-Api-Key": {k, k}}, "", errRepeatedHeader},
		{"repeated Authorization", http.Header{"Authorization": {"Bearer " + k, "Bearer " + other}}, "", errRepeatedHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := extractKey(tt.header)
			if got != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("extractKey = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// failingStore fails every lookup with err.
type failingStore struct{ err error }

func (s failingStore) Lookup(context.Context, [32]byte) (*Key, error) { return nil, s.err }

func TestMiddleware(t *testing.T) {
	valid, k := NewKey()
	k.Products = []string{"quote"}
	disabledPlain, disabled := NewKey()
	disabled.Disabled = true
	expiredPlain, expired := NewKey()
	expired.ExpiresAt = t0
	laterPlain, later := NewKey()
	later.ExpiresAt = t0.Add(time.Second)
	unknown, _ := NewKey()
	store := NewMemoryStore(k, disabled, expired, later)

	mistyped := valid[:10] + string(valid[10]^1) + valid[11:]
	tests := []struct {
		name    string
		store   Store
		header  http.Header
		status  int
		msg     string // "" for success
		wantKey string // the ID KeyFrom gives next
	}{
		{"bearer", store, http.Header{"Authorization": {"Bearer " + valid}}, 200, "", k.ID},
		{"x-api-key", store, http.Header{"X-Api-Key": {valid}}, 200, "", k.ID},
		{"not yet expired", store, http.Header{"X-Api-Key": {laterPlain}}, 200, "", later.ID},
		{"no key", store, http.Header{}, 401, errorsjson.MsgNoKey, ""},
		{"basic scheme only", store, http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, 401, errorsjson.MsgNoKey, ""},
		{"empty x-api-key", store, http.Header{"X-Api-Key": {""}}, 401, errorsjson.MsgNoKey, ""},
		{"malformed", store, http.Header{"X-Api-Key": {"hello"}}, 401, errorsjson.MsgInvalidKey, ""},
		{"wrong prefix", store, http.Header{"X-Api-Key": {"sk_" + valid[3:]}}, 401, errorsjson.MsgInvalidKey, ""},
		{"bad checksum", store, http.Header{"X-Api-Key": {mistyped}}, 401, errorsjson.MsgInvalidKey, ""},
		{"unknown", store, http.Header{"X-Api-Key": {unknown}}, 401, errorsjson.MsgInvalidKey, ""},
		{"disabled", store, http.Header{"X-Api-Key": {disabledPlain}}, 401, errorsjson.MsgInvalidKey, ""},
		{"expired", store, http.Header{"X-Api-Key": {expiredPlain}}, 401, errorsjson.MsgInvalidKey, ""},
		{"ambiguous", store, http.Header{"Authorization": {"Bearer " + valid}, "X-Api-Key": {laterPlain}}, 401, errorsjson.MsgInvalidKey, ""},
		{"repeated", store, http.Header{"X-Api-Key": {valid, valid}}, 401, errorsjson.MsgInvalidKey, ""},
		{"store error", failingStore{errors.New("db down")}, http.Header{"X-Api-Key": {valid}}, 503, errorsjson.MsgUpstreamUnavailable, ""},
		{"wrapped not found", failingStore{fmt.Errorf("sql: %w", ErrKeyNotFound)}, http.Header{"X-Api-Key": {valid}}, 401, errorsjson.MsgInvalidKey, ""},
		{"store returns nothing", failingStore{nil}, http.Header{"X-Api-Key": {valid}}, 503, errorsjson.MsgUpstreamUnavailable, ""},
		{"store unavailable", failingStore{fmt.Errorf("sqlstore: %w", ErrStoreUnavailable)}, http.Header{"X-Api-Key": {valid}}, 503, errorsjson.MsgUpstreamUnavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			var gotKey string
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				kk, ok := KeyFrom(r.Context())
				if !ok {
					t.Error("next ran without a key in the context")
					return
				}
				gotKey = kk.ID
				w.WriteHeader(http.StatusOK)
			})
			h := Middleware(Config{
				Store:  tt.store,
				Now:    fixedNow,
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})(next)
			req := httptest.NewRequest("POST", "/api/quote", nil)
			req.Header = tt.header
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if tt.msg == "" {
				if rec.Code != 200 || gotKey != tt.wantKey {
					t.Errorf("status %d, key %q; want 200, %q", rec.Code, gotKey, tt.wantKey)
				}
			} else {
				assertError(t, rec, tt.status, tt.msg)
				if got, want := rec.Header().Get("WWW-Authenticate"), map[bool]string{true: "Bearer"}[tt.status == 401]; got != want {
					t.Errorf("WWW-Authenticate = %q, want %q", got, want)
				}
				if gotKey != "" {
					t.Error("next ran for a refused request")
				}
			}
			for _, plain := range []string{valid, disabledPlain, expiredPlain, unknown, laterPlain} {
				if strings.Contains(logs.String(), plain) || strings.Contains(logs.String(), plain[4:]) {
					t.Errorf("a key appears in the log: %s", logs.String())
				}
			}
			if tt.status == 503 && !strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("a store failure was not logged: %q", logs.String())
			}
			if got, want := rec.Header().Get("Retry-After"), map[bool]string{true: "1"}[tt.status == 503]; got != want {
				t.Errorf("Retry-After = %q, want %q", got, want)
			}
		})
	}
}

// TestMiddlewareRefusalsIdentical checks that unknown, disabled, expired and
// malformed keys cannot be told apart by their answers.
func TestMiddlewareRefusalsIdentical(t *testing.T) {
	_, known := NewKey()
	disabledPlain, disabled := NewKey()
	disabled.Disabled = true
	expiredPlain, expired := NewKey()
	expired.ExpiresAt = t0.Add(-time.Hour)
	unknown, _ := NewKey()
	h := Middleware(Config{Store: NewMemoryStore(known, disabled, expired), Now: fixedNow, Logger: discard})(&okHandler{})

	answer := func(key string) (int, http.Header, string) {
		req := httptest.NewRequest("POST", "/", nil)
		req.Header.Set("X-API-Key", key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Header(), rec.Body.String()
	}
	wantCode, wantHeader, wantBody := answer(unknown)
	for name, key := range map[string]string{"disabled": disabledPlain, "expired": expiredPlain, "malformed": "ila_nope"} {
		code, header, body := answer(key)
		if code != wantCode || body != wantBody || fmt.Sprint(header) != fmt.Sprint(wantHeader) {
			t.Errorf("%s key: %d %v %q; unknown key: %d %v %q", name, code, header, body, wantCode, wantHeader, wantBody)
		}
	}
}

func TestMiddlewareMalformedKeyAsksNoStore(t *testing.T) {
	store := &countingStore{mem: NewMemoryStore()}
	h := Middleware(Config{Store: store, Logger: discard})(&okHandler{})
	for _, key := range []string{"ila_short", "ila_" + strings.Repeat("A", 38), "Bearer"} {
		req := httptest.NewRequest("POST", "/", nil)
		req.Header.Set("X-API-Key", key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assertError(t, rec, 401, errorsjson.MsgInvalidKey)
	}
	if n := store.calls.Load(); n != 0 {
		t.Errorf("malformed keys made %d store calls, want 0", n)
	}
}

func TestMiddlewareRuntimeDisable(t *testing.T) {
	plain, k := NewKey()
	store := NewMemoryStore(k)
	next := &okHandler{}
	h := Middleware(Config{Store: store, Logger: discard})(next)
	do := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/", nil)
		req.Header.Set("Authorization", "Bearer "+plain)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := do(); rec.Code != 200 {
		t.Fatalf("before disable: status %d", rec.Code)
	}
	store.Disable(k.ID)
	assertError(t, do(), 401, errorsjson.MsgInvalidKey)
	store.Put(k) // re-enabled
	if rec := do(); rec.Code != 200 {
		t.Fatalf("after re-enable: status %d", rec.Code)
	}
	store.Delete(k.ID)
	assertError(t, do(), 401, errorsjson.MsgInvalidKey)
}

func TestMiddlewareExpiryThroughCache(t *testing.T) {
	// The cache delays a disable by up to TTL, but never an expiry.
	plain, k := NewKey()
	k.ExpiresAt = t0.Add(time.Minute)
	clk := testclock.New(t0)
	cache := NewCache(NewMemoryStore(k), CacheConfig{TTL: time.Hour, Now: clk.Now})
	h := Middleware(Config{Store: cache, Now: clk.Now, Logger: discard})(&okHandler{})
	do := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/", nil)
		req.Header.Set("X-API-Key", plain)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := do(); rec.Code != 200 {
		t.Fatalf("before expiry: status %d", rec.Code)
	}
	clk.Advance(time.Minute)
	assertError(t, do(), 401, errorsjson.MsgInvalidKey)
}

func TestMiddlewareRequestID(t *testing.T) {
	h := errorsjson.RequestID(Middleware(Config{Store: NewMemoryStore(), Logger: discard})(&okHandler{}))
	req := httptest.NewRequest("POST", "/", nil)
	req.Header.Set("X-Request-ID", "req-1")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if want := `{"error":"No API key provided","request_id":"req-1"}` + "\n"; rec.Body.String() != want {
		t.Errorf("body = %q, want %q", rec.Body.String(), want)
	}
}

func TestKeyFromEmptyContext(t *testing.T) {
	if k, ok := KeyFrom(context.Background()); ok || k != nil {
		t.Errorf("KeyFrom(empty) = %v, %v", k, ok)
	}
	if p, ok := ProductFrom(context.Background()); ok || p != nil {
		t.Errorf("ProductFrom(empty) = %v, %v", p, ok)
	}
}

func BenchmarkMiddleware(b *testing.B) { benchmarkValidKey(b, nil) }

// benchmarkValidKey measures the key middleware passing one valid key, with
// throttle th (nil: none).
func benchmarkValidKey(b *testing.B, th *Throttle) {
	plain, k := NewKey()
	h := Middleware(Config{Store: NewMemoryStore(k), Logger: discard, Throttle: th})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest("POST", "/api/quote", nil)
	req.Header.Set("Authorization", "Bearer "+plain)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
	if w.Code != 200 {
		b.Fatalf("status %d", w.Code)
	}
}

// BenchmarkMiddlewareManyKeys is BenchmarkMiddleware with 100,000 keys in
// the store, each sent in turn: a store larger than the processor's caches, as
// a gateway's with many callers is.
func BenchmarkMiddlewareManyKeys(b *testing.B) {
	const n = 100_000
	keys := make([]Key, n)
	reqs := make([]*http.Request, n)
	for i := range n {
		var plain string
		plain, keys[i] = NewKey()
		reqs[i] = httptest.NewRequest("POST", "/api/quote", nil)
		reqs[i].Header.Set("Authorization", "Bearer "+plain)
	}
	h := Middleware(Config{Store: NewMemoryStore(keys...), Logger: discard})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.ServeHTTP(w, reqs[i%n])
	}
	if w.Code != 200 {
		b.Fatalf("status %d", w.Code)
	}
}

// BenchmarkCheck checks 1,024 different keys in turn, as a gateway sees
// them: one key checked again and again would let the branch predictor learn
// its characters.
func BenchmarkCheck(b *testing.B) {
	plains := make([]string, 1024)
	for i := range plains {
		plains[i], _ = NewKey()
	}
	var f Format
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if f.Check(plains[i%len(plains)]) != nil {
			b.Fatal("valid key refused")
		}
		i++
	}
}

func BenchmarkExtractKey(b *testing.B) {
	plain, _ := NewKey()
	h := http.Header{"Authorization": {"Bearer " + plain}}
	b.ReportAllocs()
	for b.Loop() {
		if k, _ := extractKey(h); k != plain {
			b.Fatal("key not found")
		}
	}
}

// BenchmarkMiddlewareWithThrottle is BenchmarkMiddleware with a Throttle: the
// cost a valid key pays for it (one read of the known-keys set).
func BenchmarkMiddlewareWithThrottle(b *testing.B) {
	benchmarkValidKey(b, NewThrottle(ThrottleConfig{}))
}

// TestMiddlewareStoreUnavailable: a store that cannot answer gets 503 with
// Retry-After, never a 401 telling a paying caller their key is wrong.
func TestMiddlewareStoreUnavailable(t *testing.T) {
	valid, _ := NewKey()
	h := Middleware(Config{
		Store:  failingStore{fmt.Errorf("sqlstore: %w", ErrStoreUnavailable)},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})(http.NotFoundHandler())
	req := httptest.NewRequest("POST", "/api/quote", nil)
	req.Header.Set("X-API-Key", valid)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assertError(t, rec, 503, errorsjson.MsgUpstreamUnavailable)
	if got := rec.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
}
