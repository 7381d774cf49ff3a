package gatehouse

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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

// nopWriter is a ResponseWriter that keeps the status and the body in a buffer
// reused from one request to the next, so that a million requests measure the
// stack, not a recorder's allocations.
type nopWriter struct {
	h      http.Header
	status int
	body   []byte
}

func (w *nopWriter) Header() http.Header { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) {
	w.body = append(w.body, b...)
	return len(b), nil
}
func (w *nopWriter) WriteHeader(s int) { w.status = s }

// sprayMessage is the 401 message the contract gives for a key header value:
// a value that is empty once the spaces and tabs around it (and, in
// Authorization, the Bearer scheme) are taken away is no key at all; any
// other is an invalid key.
func sprayMessage(header, value string) string {
	v := strings.Trim(value, " \t")
	if header == "Authorization" && len(v) >= len("Bearer ") && strings.EqualFold(v[:len("Bearer")], "Bearer") {
		v = strings.Trim(v[len("Bearer"):], " \t")
	}
	if v == "" {
		return errorsjson.MsgNoKey
	}
	return errorsjson.MsgInvalidKey
}

// TestKeySpray sends 1,000,000 invented keys and garbage headers through the
// whole stack: every one gets the contract's 401 with its exact body
// ("Invalid or inactive API key", or "No API key provided" for the garbage
// values made only of spaces and tabs, about 1 in 30,000), none that fails the
// format or checksum reaches the store, and the heap after a GC stays where it
// was.
func TestKeySpray(t *testing.T) {
	n := 1_000_000 // about 3 s, 20 s under -race
	if testing.Short() {
		n = 100_000
	}
	plain, rec := auth.NewKey()
	rec.Products = []string{"quote"}
	store := &countingStore{Store: auth.NewMemoryStore(rec)}
	h := mustNew(t, Config{
		Auth:     auth.Config{Store: store},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true})},
		Product:  http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		Logger:   discardLogger(),
	})
	invent := inventor(plain)

	// Warm up, then measure the heap.
	req := httptest.NewRequest("POST", "/api/quote", nil)
	w := &nopWriter{h: make(http.Header)}
	bodies := map[string]string{}
	for _, m := range []string{errorsjson.MsgNoKey, errorsjson.MsgInvalidKey} {
		bodies[m] = `{"error":"` + m + `","request_id":"spray"}` + "\n"
	}
	var noKey int
	serve := func(i int) {
		name, value := invent(i)
		r := req.Clone(req.Context())
		r.Header = http.Header{name: {value}, "X-Request-Id": {"spray"}}
		clear(w.h)
		w.status = 0
		w.body = w.body[:0]
		h.ServeHTTP(w, r)
		want := sprayMessage(name, value)
		if w.status != http.StatusUnauthorized || string(w.body) != bodies[want] {
			t.Fatalf("request %d (%s: %q): %d %q, want 401 %q", i, name, value, w.status, w.body, bodies[want])
		}
		if want == errorsjson.MsgNoKey {
			noKey++
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
	t.Logf("%d invented keys: heap %d → %d bytes after GC, %d store lookups, %d values only spaces and tabs (No API key provided)", n, before, after, store.lookups.Load(), noKey)
	if noKey == 0 || noKey > n/1000 {
		t.Errorf("%d of %d values were only spaces and tabs: the generator no longer makes the case, or makes too many", noKey, n)
	}

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

// inventor returns the spray's generator of key headers: the i-th request's
// header name and value, from a fixed seed, around the real key plain.
func inventor(plain string) func(i int) (header, value string) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	return func(i int) (header, value string) {
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

}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestKeySpraySocket sends invented key headers over a real socket, as a
// caller can: what reaches the handler is what the spray checks, except that
// net/http itself refuses a header value with a control character (other than
// tab) with a plain-text "400 Bad Request" before any handler runs, so such a
// caller never sees the contract's JSON. A value split by a line feed may
// instead leave a valid header before it, which gets its 401.
func TestKeySpraySocket(t *testing.T) {
	plain, rec := auth.NewKey()
	rec.Products = []string{"quote"}
	srv := httptest.NewServer(mustNew(t, Config{
		Auth:     auth.Config{Store: auth.NewMemoryStore(rec)},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true})},
		Product:  http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		Logger:   discardLogger(),
	}))
	defer srv.Close()
	invent := inventor(plain)
	n := 4000
	if testing.Short() {
		n = 400
	}
	counts := map[string]int{}
	for i := range n {
		name, value := invent(i)
		if i%4 != 1 && i < n-4 { // the garbage rows are the ones worth a socket
			continue
		}
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, "POST /api/quote HTTP/1.1\r\nHost: x\r\n"+name+": "+value+"\r\nX-Request-ID: spray\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			conn.Close()
			t.Fatalf("request %d (%s: %q): %v", i, name, value, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		conn.Close()
		got := fmt.Sprintf("%d %s", resp.StatusCode, b)
		ctl := strings.IndexFunc(value, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) >= 0
		want401 := fmt.Sprintf(`401 {"error":"%s","request_id":"spray"}`+"\n", sprayMessage(name, value))
		switch {
		case !ctl && got == want401:
			counts["401 "+sprayMessage(name, value)]++
		case ctl && got == "400 400 Bad Request" && resp.Header.Get("Content-Type") == "text/plain; charset=utf-8":
			counts["400 from net/http (control character)"]++
		case ctl && strings.Contains(value, "\n") && resp.StatusCode == 401 && strings.HasPrefix(string(b), `{"error":"`):
			counts["401 (value cut at a line feed)"]++
		default:
			t.Errorf("request %d (%s: %q): %q, want %q", i, name, value, got, want401)
		}
	}
	t.Logf("over a socket: %v", counts)
	if counts["400 from net/http (control character)"] == 0 || counts["401 "+errorsjson.MsgInvalidKey] == 0 {
		t.Errorf("the generator no longer makes both cases: %v", counts)
	}
}
