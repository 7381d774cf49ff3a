package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/clientaddr"
	"github.com/gatehouse-go/gatehouse/errorsjson"

	"github.com/gatehouse-go/gatehouse/internal/testclock"
)

// throttled is a key middleware with a throttle of 3 attempts per 30 s (one
// back every 10 s) on a fake clock, over a counting store holding one valid
// and one disabled key.
type throttled struct {
	h              http.Handler
	th             *Throttle
	store          *countingStore
	clk            *testclock.Clock
	valid, stopped string // plaintext keys
	next           *okHandler
}

func newThrottled(t *testing.T, cfg ThrottleConfig) *throttled {
	t.Helper()
	valid, k := NewKey()
	stopped, d := NewKey()
	d.Disabled = true
	clk := testclock.New(t0)
	if cfg.Attempts == 0 {
		cfg.Attempts, cfg.Per = 3, 30*time.Second
	}
	cfg.Now = clk.Now
	th := NewThrottle(cfg)
	store := &countingStore{mem: NewMemoryStore(k, d)}
	next := &okHandler{}
	h := Middleware(Config{Store: store, Now: clk.Now, Logger: discard, Throttle: th})(next)
	return &throttled{h: h, th: th, store: store, clk: clk, valid: valid, stopped: stopped, next: next}
}

// do sends a request with key ("" for none) from addr.
func (s *throttled) do(key, addr string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/api/quote", nil)
	req.RemoteAddr = addr
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	return rec
}

// unknownKey is a well-formed key that no store holds.
func unknownKey() string {
	plain, _ := NewKey()
	return plain
}

func assertThrottled(t *testing.T, rec *httptest.ResponseRecorder, retryAfter string) {
	t.Helper()
	assertError(t, rec, http.StatusTooManyRequests, errorsjson.MsgRateLimited)
	if got := rec.Header().Get("Retry-After"); got != retryAfter {
		t.Errorf("Retry-After = %q, want %q", got, retryAfter)
	}
	if got := rec.Header().Get("WWW-Authenticate"); got != "" {
		t.Errorf("a 429 carries WWW-Authenticate %q", got)
	}
}

func TestThrottleSlowsAGuesser(t *testing.T) {
	s := newThrottled(t, ThrottleConfig{})
	const guesser = "192.0.2.1:4000"
	for i := range 3 {
		rec := s.do(unknownKey(), guesser)
		assertError(t, rec, 401, errorsjson.MsgInvalidKey)
		if rec.Header().Get("Retry-After") != "" {
			t.Errorf("attempt %d: a 401 carries Retry-After", i+1)
		}
	}
	lookups := s.store.calls.Load()
	assertThrottled(t, s.do(unknownKey(), guesser), "10")
	assertThrottled(t, s.do("ila_malformed", guesser), "10")
	assertThrottled(t, s.do(unknownKey(), "192.0.2.1:5000"), "10") // another port, same client
	if n := s.store.calls.Load() - lookups; n != 0 {
		t.Errorf("a throttled client made %d store lookups, want 0", n)
	}

	// The 429s spent nothing: one attempt is back 10 s after the first.
	s.clk.Advance(9500 * time.Millisecond)
	assertThrottled(t, s.do(unknownKey(), guesser), "1") // 0.5 s, rounded up
	s.clk.Advance(500 * time.Millisecond)
	assertError(t, s.do(unknownKey(), guesser), 401, errorsjson.MsgInvalidKey)
	assertThrottled(t, s.do(unknownKey(), guesser), "10")

	// All three are back 30 s after the last attempt.
	s.clk.Advance(30 * time.Second)
	for range 3 {
		assertError(t, s.do(unknownKey(), guesser), 401, errorsjson.MsgInvalidKey)
	}
	assertThrottled(t, s.do(unknownKey(), guesser), "10")
}

func TestThrottleEveryKindOfFailureCounts(t *testing.T) {
	for name, key := range map[string]func(s *throttled) string{
		"malformed": func(*throttled) string { return "ila_nope" },
		"bad checksum": func(*throttled) string {
			k := unknownKey()
			return k[:len(k)-1] + string("0123456789"[(strings.IndexByte("0123456789", k[len(k)-1])+1)%10])
		},
		"unknown":  func(*throttled) string { return unknownKey() },
		"disabled": func(s *throttled) string { return s.stopped },
	} {
		t.Run(name, func(t *testing.T) {
			s := newThrottled(t, ThrottleConfig{})
			for range 3 {
				assertError(t, s.do(key(s), "192.0.2.7:1"), 401, errorsjson.MsgInvalidKey)
			}
			assertThrottled(t, s.do(unknownKey(), "192.0.2.7:1"), "10")
		})
	}

	t.Run("two different keys", func(t *testing.T) {
		s := newThrottled(t, ThrottleConfig{})
		for range 3 {
			req := httptest.NewRequest("POST", "/", nil)
			req.RemoteAddr = "192.0.2.8:1"
			req.Header.Set("Authorization", "Bearer "+s.valid)
			req.Header.Set("X-API-Key", unknownKey())
			rec := httptest.NewRecorder()
			s.h.ServeHTTP(rec, req)
			assertError(t, rec, 401, errorsjson.MsgInvalidKey)
		}
		assertThrottled(t, s.do(unknownKey(), "192.0.2.8:1"), "10")
	})
}

func TestThrottleIgnoresRequestsWithoutAKey(t *testing.T) {
	s := newThrottled(t, ThrottleConfig{})
	for range 100 {
		assertError(t, s.do("", "192.0.2.1:1"), 401, errorsjson.MsgNoKey)
	}
	assertError(t, s.do(unknownKey(), "192.0.2.1:1"), 401, errorsjson.MsgInvalidKey)
	// Nor does a throttled client get 429 for no key: it learns nothing.
	for range 2 {
		s.do(unknownKey(), "192.0.2.1:1")
	}
	assertError(t, s.do("", "192.0.2.1:1"), 401, errorsjson.MsgNoKey)
}

func TestThrottleLetsValidKeysThrough(t *testing.T) {
	s := newThrottled(t, ThrottleConfig{})
	const nat = "198.51.100.9:1234"
	// The key's owner uses it (from anywhere), then a guesser behind the same
	// address spends the address's attempts.
	if rec := s.do(s.valid, "203.0.113.5:1"); rec.Code != 200 {
		t.Fatalf("valid key: %d %s", rec.Code, rec.Body)
	}
	for range 3 {
		s.do(unknownKey(), nat)
	}
	assertThrottled(t, s.do(unknownKey(), nat), "10")
	for range 5 {
		if rec := s.do(s.valid, nat); rec.Code != 200 {
			t.Fatalf("valid key from a throttled address: %d %s", rec.Code, rec.Body)
		}
	}
	if s.next.calls != 6 {
		t.Errorf("next ran %d times, want 6", s.next.calls)
	}
	// Valid keys spent nothing, and did not refill the address either.
	assertThrottled(t, s.do(unknownKey(), nat), "10")
}

func TestThrottleNewValidKeyWaitsOutTheThrottle(t *testing.T) {
	s := newThrottled(t, ThrottleConfig{})
	const nat = "198.51.100.9:1234"
	for range 3 {
		s.do(unknownKey(), nat)
	}
	// Never seen to pass: refused like any other key while the address is
	// throttled, and let through once an attempt is back.
	assertThrottled(t, s.do(s.valid, nat), "10")
	s.clk.Advance(10 * time.Second)
	if rec := s.do(s.valid, nat); rec.Code != 200 {
		t.Fatalf("valid key after Retry-After: %d %s", rec.Code, rec.Body)
	}
	// Its passing gave the attempt back: the guesser is still throttled...
	assertError(t, s.do(unknownKey(), nat), 401, errorsjson.MsgInvalidKey)
	assertThrottled(t, s.do(unknownKey(), nat), "10")
	// ...and the key is now known.
	if rec := s.do(s.valid, nat); rec.Code != 200 {
		t.Fatalf("known valid key: %d", rec.Code)
	}
}

func TestThrottleKnownKeyThatFailsCounts(t *testing.T) {
	s := newThrottled(t, ThrottleConfig{})
	store := s.store.mem
	if rec := s.do(s.valid, "192.0.2.1:1"); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	k, _ := store.Lookup(t.Context(), HashKey(s.valid))
	store.Disable(k.ID)
	for range 3 {
		assertError(t, s.do(s.valid, "192.0.2.1:1"), 401, errorsjson.MsgInvalidKey)
	}
	assertThrottled(t, s.do(unknownKey(), "192.0.2.1:1"), "10")
}

// TestThrottleStoreOutageSpendsNoAttempt: while the store fails, a client's
// requests (with its valid key, never seen to pass, or with keys nobody
// knows) get 503 and spend none of its attempts, whatever the store's error:
// once the store is back, its valid key gets 200, not 429, and it still has
// all its attempts for keys the store does not know.
func TestThrottleStoreOutageSpendsNoAttempt(t *testing.T) {
	for _, storeErr := range []error{fmt.Errorf("db: %w", ErrStoreUnavailable), errors.New("db broken")} {
		t.Run(storeErr.Error(), func(t *testing.T) {
			s := newThrottled(t, ThrottleConfig{})
			const client = "192.0.2.1:1"
			s.store.err = storeErr
			for i := range 10 {
				key := s.valid
				if i%2 == 1 {
					key = unknownKey()
				}
				rec := s.do(key, client)
				assertError(t, rec, 503, errorsjson.MsgUpstreamUnavailable)
				if got := rec.Header().Get("Retry-After"); got != "1" {
					t.Errorf("Retry-After = %q, want 1", got)
				}
			}
			s.store.err = nil
			if rec := s.do(s.valid, client); rec.Code != 200 || rec.Body.String() != "ok" {
				t.Fatalf("valid key after the outage: %d %q, want 200 ok", rec.Code, rec.Body.String())
			}
			for range 3 {
				assertError(t, s.do(unknownKey(), client), 401, errorsjson.MsgInvalidKey)
			}
			assertThrottled(t, s.do(unknownKey(), client), "10")
		})
	}
}

// TestThrottleCallerGoneKeepsAttempt: a request whose caller goes away before
// the store answers keeps its attempt spent, since its lookup was made: a
// guesser cannot make lookups for free by hanging up.
func TestThrottleCallerGoneKeepsAttempt(t *testing.T) {
	s := newThrottled(t, ThrottleConfig{})
	s.store.release = make(chan struct{}) // the store answers nobody before its context ends
	const client = "192.0.2.1:1"
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 3 {
		req := httptest.NewRequestWithContext(ctx, "POST", "/api/quote", nil)
		req.RemoteAddr = client
		req.Header.Set("X-API-Key", unknownKey())
		rec := httptest.NewRecorder()
		s.h.ServeHTTP(rec, req)
		assertError(t, rec, 503, errorsjson.MsgUpstreamUnavailable)
	}
	close(s.store.release)
	assertThrottled(t, s.do(unknownKey(), client), "10")
	if n := s.store.calls.Load(); n != 3 {
		t.Errorf("store calls %d, want 3", n)
	}
}

func TestThrottleAddressesAreSeparate(t *testing.T) {
	s := newThrottled(t, ThrottleConfig{})
	for range 3 {
		s.do(unknownKey(), "192.0.2.1:1")
		s.do(unknownKey(), "[2001:db8:1:2::1]:1")
	}
	assertThrottled(t, s.do(unknownKey(), "192.0.2.1:1"), "10")
	assertError(t, s.do(unknownKey(), "192.0.2.2:1"), 401, errorsjson.MsgInvalidKey)
	// IPv6 by /64: the same subscriber's other addresses share its attempts...
	assertThrottled(t, s.do(unknownKey(), "[2001:db8:1:2:ffff::9]:1"), "10")
	assertThrottled(t, s.do(unknownKey(), "[2001:db8:1:2::1%eth0]:1"), "10")
	// ...the next /64 does not.
	assertError(t, s.do(unknownKey(), "[2001:db8:1:3::1]:1"), 401, errorsjson.MsgInvalidKey)
	// An IPv4-mapped address is its IPv4 address.
	assertThrottled(t, s.do(unknownKey(), "[::ffff:192.0.2.1]:1"), "10")
	// A request without an address is not throttled (nor counted).
	for range 5 {
		assertError(t, s.do(unknownKey(), "pipe"), 401, errorsjson.MsgInvalidKey)
	}
}

// TestThrottleConcurrentAttempts: 200 guesses at once from one address, each
// held in the store until all have started, get exactly Attempts lookups.
func TestThrottleConcurrentAttempts(t *testing.T) {
	s := newThrottled(t, ThrottleConfig{Attempts: 5, Per: time.Minute})
	s.store.release = make(chan struct{})
	var wg sync.WaitGroup
	var unauthorized, limited atomic.Int64
	const n = 200
	var started sync.WaitGroup
	started.Add(n)
	for range n {
		wg.Go(func() {
			started.Done()
			switch s.do(unknownKey(), "192.0.2.1:1").Code {
			case 401:
				unauthorized.Add(1)
			case 429:
				limited.Add(1)
			}
		})
	}
	started.Wait()
	// Every request either waits in the store or has been answered 429.
	for s.store.calls.Load()+limited.Load() < n {
		runtime.Gosched()
	}
	close(s.store.release)
	wg.Wait()
	if unauthorized.Load() != 5 || limited.Load() != n-5 || s.store.calls.Load() != 5 {
		t.Errorf("401s %d, 429s %d, lookups %d; want 5, %d, 5", unauthorized.Load(), limited.Load(), s.store.calls.Load(), n-5)
	}
}

// TestThrottleMemoryBound: 200,000 addresses failing once each leave the
// throttle tracking at most MaxClients; once their attempts are back, their
// entries make room for new addresses.
func TestThrottleMemoryBound(t *testing.T) {
	const maxClients = 4096
	s := newThrottled(t, ThrottleConfig{MaxClients: maxClients})
	key := "ila_malformed" // no store work, the same accounting
	for i := range 200_000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		s.do(key, netip.AddrPortFrom(a, 1).String())
		if i%65536 == 0 {
			if l := s.th.tracked(); l > maxClients {
				t.Fatalf("after %d addresses the throttle tracks %d, bound %d", i+1, l, maxClients)
			}
		}
	}
	if l := s.th.tracked(); l > maxClients || l < maxClients/2 {
		t.Fatalf("throttle tracks %d addresses, want ≤ %d (and the table used)", l, maxClients)
	}
	// A tracked address is still throttled as before (3 attempts).
	for range 2 {
		s.do(key, "10.0.0.0:1")
	}
	assertThrottled(t, s.do(key, "10.0.0.0:1"), "10")

	// Their attempts all back, the old addresses give way to new ones.
	s.clk.Advance(time.Minute)
	for range 3 {
		assertError(t, s.do(key, "192.0.2.200:1"), 401, errorsjson.MsgInvalidKey)
	}
	assertThrottled(t, s.do(key, "192.0.2.200:1"), "10")
	if l := s.th.tracked(); l > maxClients {
		t.Fatalf("throttle tracks %d addresses, bound %d", l, maxClients)
	}
}

func TestThrottleKnownKeysBound(t *testing.T) {
	th := NewThrottle(ThrottleConfig{MaxKnownKeys: 64})
	var keys []Key
	var plain []string
	for range 1000 {
		p, k := NewKey()
		keys, plain = append(keys, k), append(plain, p)
	}
	h := Middleware(Config{Store: NewMemoryStore(keys...), Logger: discard, Throttle: th})(&okHandler{})
	for _, p := range plain {
		req := httptest.NewRequest("POST", "/", nil)
		req.Header.Set("X-API-Key", p)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("valid key: %d", rec.Code)
		}
	}
	n := 0
	for i := range th.known {
		n += len(th.known[i].keys)
	}
	if n > 64 || n == 0 {
		t.Errorf("throttle remembers %d keys, want 1..64", n)
	}
}

// TestThrottleBehindProxy: with the proxy's header named, clients behind one
// proxy are throttled apart, and a client cannot escape by writing the header.
func TestThrottleBehindProxy(t *testing.T) {
	s := newThrottled(t, ThrottleConfig{Client: clientaddr.Source{
		Header:         "X-Real-IP",
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")},
	}})
	do := func(remote, realIP string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/", nil)
		req.RemoteAddr = remote
		req.Header.Set("X-Real-IP", realIP)
		req.Header.Set("X-API-Key", unknownKey())
		rec := httptest.NewRecorder()
		s.h.ServeHTTP(rec, req)
		return rec
	}
	for range 3 {
		do("10.0.0.1:1", "203.0.113.1")
	}
	assertThrottled(t, do("10.0.0.1:1", "203.0.113.1"), "10")
	assertError(t, do("10.0.0.1:1", "203.0.113.2"), 401, errorsjson.MsgInvalidKey)
	// Direct, with a forged header: throttled by its own address.
	for i := range 3 {
		do("192.0.2.66:1", fmt.Sprintf("203.0.113.%d", 100+i))
	}
	assertThrottled(t, do("192.0.2.66:1", "203.0.113.200"), "10")
}

// tracked returns the number of client addresses tracked, for the tests of
// the table's bound.
func (t *Throttle) tracked() int {
	n := 0
	for i := range t.clients {
		s := &t.clients[i]
		s.mu.Lock()
		n += len(s.due)
		s.mu.Unlock()
	}
	return n
}

// TestAttemptEndings pins each ending of a throttle attempt on its own: what
// begin charges and what each ending gives back, keeps or charges, read as the
// wait the client's next unknown key gets. With one attempt per 10 s, a
// client with its attempt spent waits 10 s; one with it back waits 0.
func TestAttemptEndings(t *testing.T) {
	known, _ := NewKey()
	unknown, _ := NewKey()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name     string
		key      string // "" for a key not of the format
		end      func(a attempt)
		wait     time.Duration // the next unknown key's wait
		remember bool          // the key is known afterwards
	}{
		{"unknown key passed: given back, remembered", unknown, func(a attempt) { a.passed() }, 0, true},
		{"unknown key failed: kept", unknown, func(a attempt) { a.failed() }, 10 * time.Second, false},
		{"unknown key, store failed: given back", unknown, func(a attempt) { a.storeFailed(context.Background()) }, 0, false},
		{"unknown key, store failed, caller gone: kept", unknown, func(a attempt) { a.storeFailed(gone) }, 10 * time.Second, false},
		{"malformed key failed: kept", "", func(a attempt) { a.failed() }, 10 * time.Second, false},
		{"known key passed: nothing charged", known, func(a attempt) { a.passed() }, 0, true},
		{"known key failed: charged now", known, func(a attempt) { a.failed() }, 10 * time.Second, true},
		{"known key, store failed: nothing charged", known, func(a attempt) { a.storeFailed(context.Background()) }, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := testclock.New(t0)
			th := NewThrottle(ThrottleConfig{Attempts: 1, Per: 10 * time.Second, Now: clk.Now})
			th.remember(HashKey(known))
			r := httptest.NewRequest("POST", "/", nil)
			r.RemoteAddr = "192.0.2.1:1"
			var a attempt
			var wait time.Duration
			if tt.key == "" {
				a, wait = th.begin(r, [32]byte{}, false)
			} else {
				a, wait = th.begin(r, HashKey(tt.key), true)
			}
			if wait != 0 || a.known != (tt.key == known) || a.charged != (tt.key != known) {
				t.Fatalf("begin: wait %v, known %v, charged %v", wait, a.known, a.charged)
			}
			tt.end(a)
			if _, wait := th.begin(r, HashKey(unknownKey()), true); wait != tt.wait {
				t.Errorf("the next unknown key waits %v, want %v", wait, tt.wait)
			}
			if tt.key != "" && th.knows(HashKey(tt.key)) != tt.remember {
				t.Errorf("key known afterwards: %v, want %v", th.knows(HashKey(tt.key)), tt.remember)
			}
		})
	}
}

// TestAttemptWithoutThrottle: a nil Throttle begins an attempt that never
// waits and whose endings count nothing.
func TestAttemptWithoutThrottle(t *testing.T) {
	var th *Throttle
	a, wait := th.begin(httptest.NewRequest("POST", "/", nil), HashKey(unknownKey()), true)
	if wait != 0 || a != (attempt{}) {
		t.Fatalf("begin of a nil Throttle: %+v, wait %v; want the zero attempt and no wait", a, wait)
	}
	a.passed()
	a.failed()
	a.storeFailed(context.Background())
}

// TestAttemptThrottled: a client with no attempt left gets the wait until one
// is back from begin, and nothing is charged: the wait is the same again.
func TestAttemptThrottled(t *testing.T) {
	clk := testclock.New(t0)
	th := NewThrottle(ThrottleConfig{Attempts: 1, Per: 10 * time.Second, Now: clk.Now})
	r := httptest.NewRequest("POST", "/", nil)
	r.RemoteAddr = "192.0.2.1:1"
	a, _ := th.begin(r, HashKey(unknownKey()), true)
	a.failed()
	clk.Advance(4 * time.Second)
	for range 2 {
		if a, wait := th.begin(r, HashKey(unknownKey()), true); wait != 6*time.Second || a.charged {
			t.Errorf("throttled begin: wait %v, charged %v; want 6s, false", wait, a.charged)
		}
	}
}
