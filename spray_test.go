package gatehouse

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/errorsjson"
)

// countingStore counts the lookups that reach the store.
type countingStore struct {
	auth.Store
	lookups atomic.Int64
}

func (s *countingStore) Lookup(ctx context.Context, hash [32]byte) (*auth.Key, error) {
	s.lookups.Add(1)
	return s.Store.Lookup(ctx, hash)
}

// nopWriter is a ResponseWriter that keeps only the status, so that a million
// requests measure the stack, not a recorder's buffers.
type nopWriter struct {
	h      http.Header
	status int
}

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(s int)           { w.status = s }

// TestKeySpray sends 1,000,000 invented keys and garbage headers through the
// whole stack: every one gets the contract's 401, none that fails the format or
// checksum reaches the store, and the heap after a GC stays where it was.
func TestKeySpray(t *testing.T) {
	n := 1_000_000 // about 3 s, 20 s under -race
	if testing.Short() {
		n = 100_000
	}
	plain, rec := auth.NewKey()
	rec.Products = []string{"quote"}
	store := &countingStore{Store: auth.NewMemoryStore(rec)}
	h := New(Config{
		Keys:     store,
		Products: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true}),
		Product:  http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		Logger:   discardLogger(),
	})
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	invent := func(i int) (header, value string) {
		b := make([]byte, 0, 64)
		switch i % 4 {
		case 0: // well formed, random: the checksum refuses it
			b = append(b, "ila_"...)
			for range 38 {
				b = append(b, alphabet[rng.IntN(len(alphabet))])
			}
		case 1: // garbage bytes
			for range 1 + rng.IntN(60) {
				b = append(b, byte(rng.IntN(256)))
			}
		case 2: // a real key with one character changed
			b = append(b, plain...)
			j := 4 + rng.IntN(len(plain)-4)
			c := alphabet[rng.IntN(len(alphabet))]
			if c == b[j] {
				c = '!'
			}
			b[j] = c
		case 3: // another prefix
			b = append(b, "sk_live_"...)
			for range 24 {
				b = append(b, alphabet[rng.IntN(len(alphabet))])
			}
		}
		if i%2 == 0 {
			return "Authorization", "Bearer " + string(b)
		}
		return "X-Api-Key", string(b)
	}

	// Warm up, then measure the heap.
	req := httptest.NewRequest("POST", "/api/quote", nil)
	w := &nopWriter{h: make(http.Header)}
	serve := func(i int) {
		name, value := invent(i)
		r := req.Clone(req.Context())
		r.Header = http.Header{name: {value}, "X-Request-Id": {"spray"}}
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, r)
		if w.status != http.StatusUnauthorized {
			t.Fatalf("request %d (%s: %q): status %d, want 401", i, name, value, w.status)
		}
	}
	for i := range 1000 {
		serve(i)
	}
	before := heapAfterGC()
	for i := range n {
		serve(i)
	}
	after := heapAfterGC()

	if got := store.lookups.Load(); got != 0 {
		t.Errorf("%d store lookups for keys that fail the format or checksum, want 0", got)
	}
	const bound = 4 << 20
	if growth := int64(after) - int64(before); growth > bound {
		t.Errorf("heap grew by %d bytes over %d invented keys, bound %d", growth, n, bound)
	}
	t.Logf("%d invented keys: heap %d → %d bytes after GC, %d store lookups", n, before, after, store.lookups.Load())

	// The one message for all of them.
	r := httptest.NewRequest("POST", "/api/quote", nil)
	r.Header.Set("X-API-Key", "ila_x")
	r.Header.Set("X-Request-ID", "spray")
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, r)
	if rr.Body.String() != `{"error":"`+errorsjson.MsgInvalidKey+`","request_id":"spray"}`+"\n" {
		t.Errorf("body %q", rr.Body)
	}
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
