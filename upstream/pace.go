package upstream

import (
	"crypto/sha256"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxPaced bounds the pacing state of one [Transport]: at most this many
// (host, credential) pairs are remembered as spent at once. A pair beyond it,
// once the expired ones are dropped, is not paced (its 429 is still retried).
const maxPaced = 1024

// paceKey names the allowance a request spends: its host and a SHA-256 of its
// Authorization and X-API-Key values, so that the key itself is never kept.
type paceKey struct {
	host string
	cred [sha256.Size]byte
}

// allowance is one spent allowance: a [rate.Limiter] of one token per every,
// burst 1, whose token the answer that taught it had spent (learnt again, it
// is set afresh in place). every is kept as well, as an integer, to turn the
// Limiter's tokens into an exact wait; last is the latest time the Limiter
// was given.
type allowance struct {
	lim   rate.Limiter
	every time.Duration
	last  time.Time
}

// wait is how long from now until the allowance has a token again, 0 if it
// has one. It is the Limiter's tokens owed, (1 - tokens) × every, rounded to
// the nanosecond rather than the Limiter's own delay: that delay is its
// float64 arithmetic truncated, so it can come out a nanosecond short of the
// interval, and a request a nanosecond early is a 429 from an upstream that
// counts exactly, as gatehouse does. The exact wait is a whole number of
// nanoseconds (the intervals and the clock are), and the float64 error is far
// below half a nanosecond for waits of days (TestPacerWaitIsExact).
//
// A Limiter reads a time before the last one it was given as that last one;
// a now that concurrent requests read in the other order is counted from the
// last one instead, plus how far it is behind (TestPacerLaterClaimsStand).
func (a *allowance) wait(now time.Time) time.Duration {
	at, behind := now, time.Duration(0)
	if now.Before(a.last) {
		at, behind = a.last, a.last.Sub(now)
	}
	owed := 1 - a.lim.TokensAt(at)
	if owed <= 0 {
		return 0
	}
	return time.Duration(math.Round(owed*float64(a.every))) + behind
}

// reserve takes the allowance's next token, at now or at the last time the
// Limiter was given if that is later.
func (a *allowance) reserve(now time.Time) {
	if now.After(a.last) {
		a.last = now
	}
	a.lim.ReserveN(a.last, 1)
}

// pacer is the Transport's memory of the spent allowances it has read.
type pacer struct {
	mu      sync.Mutex
	entries map[paceKey]*allowance
}

func paceKeyOf(req *http.Request) paceKey {
	h := sha256.New()
	h.Write([]byte(req.Header.Get("Authorization")))
	h.Write([]byte{0})
	h.Write([]byte(req.Header.Get("X-API-Key")))
	k := paceKey{host: req.URL.Host}
	h.Sum(k.cred[:0])
	return k
}

// tokenEvery is the wait until one token is back when resp says an allowance
// is spent, from its X-RateLimit headers: 60 s / X-RateLimit-Limit when
// X-RateLimit-Remaining is 0, 86,400 s / X-RateLimit-Daily-Limit when
// X-RateLimit-Daily-Remaining is 0, the longer if both. ok is false when resp
// carries no X-RateLimit-Remaining (nothing learnt); every is 0 when nothing
// is spent.
func tokenEvery(h http.Header) (every time.Duration, ok bool) {
	window := func(remaining, limit string, period time.Duration) (time.Duration, bool) {
		r, err := strconv.Atoi(h.Get(remaining))
		if err != nil {
			return 0, false
		}
		if r > 0 {
			return 0, true
		}
		l, err := strconv.Atoi(h.Get(limit))
		if err != nil || l <= 0 {
			return 0, true // spent, but for how long is unknown: leave it to the 429
		}
		// Rounded up, without adding before dividing: a limit near the
		// largest int would overflow period + l - 1 (FuzzTokenEvery).
		every := period / time.Duration(l)
		if period%time.Duration(l) != 0 {
			every++
		}
		return every, true
	}
	minute, ok := window("X-RateLimit-Remaining", "X-RateLimit-Limit", time.Minute)
	if !ok {
		return 0, false
	}
	day, _ := window("X-RateLimit-Daily-Remaining", "X-RateLimit-Daily-Limit", 24*time.Hour)
	return max(minute, day), true
}

// learn records what resp, read at now, says of k's allowance: spent, it
// starts afresh with its one token taken at now, unless requests have claimed
// tokens later than that (concurrent requests on it): their claims stand, at
// the interval they were made with, until an answer finds none outstanding.
func (p *pacer) learn(k paceKey, resp *http.Response, now time.Time) {
	if resp == nil {
		return
	}
	every, ok := tokenEvery(resp.Header)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if every == 0 {
		delete(p.entries, k)
		return
	}
	a, had := p.entries[k]
	if had && a.wait(now) > every {
		return // a later claim by a concurrent request stands
	}
	if !had {
		if len(p.entries) >= maxPaced {
			for k, a := range p.entries {
				if a.wait(now) == 0 {
					delete(p.entries, k)
				}
			}
			if len(p.entries) >= maxPaced {
				return
			}
		}
		if p.entries == nil {
			p.entries = make(map[paceKey]*allowance)
		}
		a = new(allowance)
		p.entries[k] = a
	}
	// A zero Limiter has no token: from now on it gains one per every and
	// holds one at most, so its next token is back every after now.
	*a = allowance{every: every, last: now}
	a.lim.SetLimitAt(now, rate.Every(every))
	a.lim.SetBurstAt(now, 1)
}

// claim returns how long a request on k must wait for a token, 0 if none, and
// reserves that token: the next request waits one interval more, so that
// concurrent callers of one allowance go one at a time. A wait over limit is
// returned but not reserved (the request is sent at once).
func (p *pacer) claim(k paceKey, now time.Time, limit time.Duration) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.entries[k]
	if !ok {
		return 0
	}
	wait := a.wait(now)
	if wait == 0 {
		delete(p.entries, k)
		return 0
	}
	if wait <= limit {
		a.reserve(now)
	}
	return wait
}

// len is how many allowances are remembered as spent.
func (p *pacer) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries)
}
