package upstream

import (
	"context"
	"math"
	"math/big"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock whose sleep records the wait and moves the clock on.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	waits []time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	c.t = c.t.Add(d)
	return ctx.Err()
}

// rlHeaders are the four X-RateLimit values of one answer ("" leaves one out).
type rlHeaders struct{ limit, remaining, dailyLimit, dailyRemaining string }

// headerScript answers 200 with its headers in order (the last forever).
type headerScript struct {
	mu       sync.Mutex
	answers  []rlHeaders
	requests int
}

func (s *headerScript) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	a := s.answers[min(s.requests, len(s.answers)-1)]
	s.requests++
	s.mu.Unlock()
	for name, v := range map[string]string{"X-RateLimit-Limit": a.limit, "X-RateLimit-Remaining": a.remaining,
		"X-RateLimit-Daily-Limit": a.dailyLimit, "X-RateLimit-Daily-Remaining": a.dailyRemaining} {
		if v != "" {
			w.Header().Set(name, v)
		}
	}
}

func TestTransportPacing(t *testing.T) {
	spent := rlHeaders{"2", "0", "10000", "9000"}
	left := rlHeaders{"2", "1", "10000", "9000"}
	tests := []struct {
		name      string
		answers   []rlHeaders
		requests  int
		noPacing  bool
		wantWaits []time.Duration
	}{
		{"a token left: no wait", []rlHeaders{left}, 3, false, nil},
		{"minute spent: 60 s / limit before each next request", []rlHeaders{left, spent}, 4, false,
			[]time.Duration{30 * time.Second, 30 * time.Second}},
		{"an answer with a token left forgets the spent one", []rlHeaders{spent, left}, 4, false,
			[]time.Duration{30 * time.Second}},
		{"limit rounded up to the nanosecond", []rlHeaders{{"7", "0", "", ""}}, 2, false,
			[]time.Duration{8571428572}},
		{"day spent: 86,400 s / daily limit", []rlHeaders{{"60", "5", "10000", "0"}}, 2, false,
			[]time.Duration{8640 * time.Millisecond}},
		{"both spent: the longer", []rlHeaders{{"60", "0", "10000", "0"}}, 2, false,
			[]time.Duration{8640 * time.Millisecond}},
		{"a wait over MaxRetryAfter is not made", []rlHeaders{{"60", "5", "100", "0"}}, 3, false, nil},
		{"no headers: no pacing", []rlHeaders{{}}, 3, false, nil},
		{"spent without a limit: no pacing", []rlHeaders{{"", "0", "", ""}}, 3, false, nil},
		{"NoPacing", []rlHeaders{spent}, 3, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &headerScript{answers: tt.answers}
			srv := httptest.NewServer(s)
			defer srv.Close()
			clock := &fakeClock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
			tr := &Transport{Now: clock.now, Sleep: clock.sleep, NoPacing: tt.noPacing}
			for i := range tt.requests {
				req, _ := http.NewRequest("GET", srv.URL, nil)
				req.Header.Set("X-API-Key", "k1")
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("request %d: %d", i, resp.StatusCode)
				}
			}
			if s.requests != tt.requests {
				t.Errorf("server saw %d requests, want %d", s.requests, tt.requests)
			}
			if !slices.Equal(clock.waits, tt.wantWaits) {
				t.Errorf("waits %v, want %v", clock.waits, tt.wantWaits)
			}
		})
	}
}

// TestTransportPacingPerAllowance: a spent allowance paces only requests with
// the same host and credential.
func TestTransportPacingPerAllowance(t *testing.T) {
	s := &headerScript{answers: []rlHeaders{{"2", "0", "", ""}}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	srv2 := httptest.NewServer(s)
	defer srv2.Close()
	clock := &fakeClock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	tr := &Transport{Now: clock.now, Sleep: clock.sleep}
	send := func(url, header, value string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set(header, value)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	send(srv.URL, "X-API-Key", "k1")     // spends k1 on srv
	send(srv.URL, "X-API-Key", "k2")     // another key: no wait
	send(srv2.URL, "X-API-Key", "k1")    // another host: no wait
	send(srv.URL, "Authorization", "k1") // another header, same value: another credential
	if len(clock.waits) != 0 {
		t.Fatalf("waits %v before the spent allowance is used again", clock.waits)
	}
	send(srv.URL, "X-API-Key", "k1")
	if !slices.Equal(clock.waits, []time.Duration{30 * time.Second}) {
		t.Errorf("waits %v, want [30s]", clock.waits)
	}
}

// TestPacerClaim: concurrent requests on one spent allowance each claim the
// next token, one interval apart; a wait over the limit claims nothing.
func TestPacerClaim(t *testing.T) {
	var p pacer
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	k := paceKey{host: "h"}
	p.learn(k, &http.Response{Header: http.Header{"X-Ratelimit-Limit": {"6"}, "X-Ratelimit-Remaining": {"0"}}}, now)
	for i, want := range []time.Duration{10 * time.Second, 20 * time.Second, 30 * time.Second} {
		if got := p.claim(k, now, time.Minute); got != want {
			t.Errorf("claim %d: %v, want %v", i, got, want)
		}
	}
	if got := p.claim(k, now, 35*time.Second); got != 40*time.Second {
		t.Errorf("claim over the limit: %v, want 40s", got)
	}
	if got := p.claim(k, now, time.Minute); got != 40*time.Second {
		t.Errorf("claim after one over the limit: %v, want 40s (nothing claimed)", got)
	}
	if got := p.claim(k, now.Add(time.Hour), time.Minute); got != 0 || p.len() != 0 {
		t.Errorf("claim once expired: %v with %d remembered, want 0 and 0", got, p.len())
	}
}

// TestPacerLaterClaimsStand: an answer that says the allowance is spent does
// not undo the tokens concurrent requests claimed after it, and a request
// whose clock read is behind the last one the allowance saw waits that much
// longer, as if the allowance kept the time its token is back.
func TestPacerLaterClaimsStand(t *testing.T) {
	var p pacer
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	k := paceKey{host: "h"}
	spent := &http.Response{Header: http.Header{"X-Ratelimit-Limit": {"6"}, "X-Ratelimit-Remaining": {"0"}}}
	p.learn(k, spent, now)
	p.claim(k, now, time.Minute) // its token is back at now+10s
	p.claim(k, now, time.Minute) // now+20s
	p.learn(k, spent, now.Add(10*time.Second))
	if got := p.claim(k, now.Add(10*time.Second), time.Minute); got != 20*time.Second {
		t.Errorf("claim after the first answer: %v, want 20s (the next token, at now+30s)", got)
	}
	if got := p.claim(k, now.Add(5*time.Second), time.Minute); got != 35*time.Second {
		t.Errorf("claim with a clock read 5 s behind: %v, want 35s (the next token, at now+40s)", got)
	}
	if got := p.claim(k, now.Add(10*time.Second), time.Minute); got != 40*time.Second {
		t.Errorf("claim after it: %v, want 40s (the next token, at now+50s)", got)
	}
}

// TestPacerWaitIsExact: whatever the interval (a minute's or a day's limit up
// to 100,000) and however the clock moves between claims, each claim waits
// exactly until its token is back, to the nanosecond: the answer's time plus
// one interval per claim so far, less the time since the answer.
func TestPacerWaitIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(22, 4))
	start := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	k := paceKey{host: "h"}
	for i := range 20000 {
		h := rlHeaders{"1000000", "0", "", ""}
		if i%2 == 1 {
			h = rlHeaders{"1000000", "5", "", "0"}
		}
		limit := strconv.Itoa(rng.IntN(100000) + 1)
		if h.dailyRemaining == "" {
			h.limit = limit
		} else {
			h.dailyLimit = limit
		}
		resp := &http.Response{Header: http.Header{}}
		for name, v := range map[string]string{"X-RateLimit-Limit": h.limit, "X-RateLimit-Remaining": h.remaining,
			"X-RateLimit-Daily-Limit": h.dailyLimit, "X-RateLimit-Daily-Remaining": h.dailyRemaining} {
			resp.Header.Set(name, v)
		}
		every, _ := tokenEvery(resp.Header)
		var p pacer
		p.learn(k, resp, start)
		now := start
		for claims := range rng.IntN(4) + 1 {
			now = now.Add(time.Duration(rng.Int64N(int64(every)))) // before the token is back
			want := time.Duration(claims+1)*every - now.Sub(start)
			if got := p.claim(k, now, 100*24*time.Hour); got != want {
				t.Fatalf("%+v, claim %d at start+%v: waits %v, want %v", h, claims, now.Sub(start), got, want)
			}
		}
	}
}

// TestPacerBound: at most maxPaced spent allowances are remembered; expired
// ones make room.
func TestPacerBound(t *testing.T) {
	var p pacer
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	spent := &http.Response{Header: http.Header{"X-Ratelimit-Limit": {"60"}, "X-Ratelimit-Remaining": {"0"}}}
	for i := range maxPaced + 10 {
		p.learn(paceKey{host: "h" + strconv.Itoa(i)}, spent, now)
	}
	if p.len() != maxPaced {
		t.Fatalf("%d remembered, want %d", p.len(), maxPaced)
	}
	if got := p.claim(paceKey{host: "h" + strconv.Itoa(maxPaced)}, now, time.Minute); got != 0 {
		t.Errorf("an allowance beyond the bound waits %v, want 0", got)
	}
	later := now.Add(time.Second) // every remembered one has expired
	p.learn(paceKey{host: "new"}, spent, later)
	if p.len() != 1 {
		t.Errorf("%d remembered after expiry, want 1", p.len())
	}
	if got := p.claim(paceKey{host: "new"}, later, time.Minute); got != time.Second {
		t.Errorf("the new allowance waits %v, want 1s", got)
	}
}

// tokenEveryReference is tokenEvery in exact integers: for each window whose
// remaining is an integer at most 0, the period divided by its limit, rounded
// up (nothing when the limit is not a positive integer); the longer of the
// two; ok when X-RateLimit-Remaining is an integer.
func tokenEveryReference(h http.Header) (time.Duration, bool) {
	window := func(remaining, limit string, period time.Duration) (*big.Int, bool) {
		r, ok := new(big.Int).SetString(h.Get(remaining), 10)
		if !ok || !fitsInt(r) {
			return new(big.Int), false
		}
		l, ok := new(big.Int).SetString(h.Get(limit), 10)
		if r.Sign() > 0 || !ok || !fitsInt(l) || l.Sign() <= 0 {
			return new(big.Int), true
		}
		q, m := new(big.Int).QuoRem(big.NewInt(int64(period)), l, new(big.Int))
		if m.Sign() != 0 {
			q.Add(q, big.NewInt(1))
		}
		return q, true
	}
	minute, ok := window("X-RateLimit-Remaining", "X-RateLimit-Limit", time.Minute)
	if !ok {
		return 0, false
	}
	day, _ := window("X-RateLimit-Daily-Remaining", "X-RateLimit-Daily-Limit", 24*time.Hour)
	if day.Cmp(minute) > 0 {
		minute = day
	}
	return time.Duration(minute.Int64()), true
}

// fitsInt reports whether strconv.Atoi takes n: Atoi's range is int's.
func fitsInt(n *big.Int) bool {
	return n.IsInt64() && n.Int64() >= math.MinInt && n.Int64() <= math.MaxInt
}

// FuzzTokenEvery: whatever X-RateLimit values an upstream sends, the pacing
// wait read from them is the exact rounded-up interval of a token of each
// spent window (the longer of the two), between 0 and a day, and nothing is
// learnt without an integer X-RateLimit-Remaining.
func FuzzTokenEvery(f *testing.F) {
	for _, v := range []rlHeaders{
		{"2", "0", "10000", "9000"}, {"60", "0", "10000", "0"}, {"7", "0", "", ""}, {"0", "0", "0", "0"},
		{"-1", "0", "-5", "-3"}, {"9223372036854775807", "0", "9223372036854775807", "0"},
		{"99999999999999999999", "0", "1", "0"}, {"3", "+0", "1", "0x0"}, {"3", " 0", "", ""}, {"", "", "", ""},
	} {
		f.Add(v.limit, v.remaining, v.dailyLimit, v.dailyRemaining)
	}
	f.Fuzz(func(t *testing.T, limit, remaining, dailyLimit, dailyRemaining string) {
		h := http.Header{}
		for name, v := range map[string]string{"X-RateLimit-Limit": limit, "X-RateLimit-Remaining": remaining,
			"X-RateLimit-Daily-Limit": dailyLimit, "X-RateLimit-Daily-Remaining": dailyRemaining} {
			h.Set(name, v)
		}
		every, ok := tokenEvery(h)
		want, wantOK := tokenEveryReference(h)
		if every != want || ok != wantOK {
			t.Fatalf("tokenEvery(%q) = %v, %v; want %v, %v", h, every, ok, want, wantOK)
		}
		if every < 0 || every > 24*time.Hour {
			t.Fatalf("tokenEvery(%q) = %v, outside [0, 24h]", h, every)
		}
	})
}

// BenchmarkPacing is the pacing's cost per request of a Transport, without
// the request: the allowance's key from its headers, the claim before it is
// sent and what is learnt from its answer. "token left" is an allowance the
// answers never say is spent; "spent" one that each answer says is, so every
// request waits one interval (on a clock moved by hand).
func BenchmarkPacing(b *testing.B) {
	req, _ := http.NewRequest("GET", "http://upstream.test/api/quote", nil)
	req.Header.Set("X-API-Key", "ila_benchmark")
	for _, bm := range []struct {
		name      string
		remaining string
	}{{"token left", "1"}, {"spent", "0"}} {
		b.Run(bm.name, func(b *testing.B) {
			resp := &http.Response{Header: http.Header{"X-Ratelimit-Limit": {"60"}, "X-Ratelimit-Remaining": {bm.remaining}}}
			var p pacer
			now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
			b.ReportAllocs()
			for b.Loop() {
				k := paceKeyOf(req)
				now = now.Add(p.claim(k, now, time.Minute))
				p.learn(k, resp, now)
			}
		})
	}
}
