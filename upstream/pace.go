package upstream

import (
	"crypto/sha256"
	"net/http"
	"strconv"
	"sync"
	"time"
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

// paceEntry says the allowance is spent until until, and that one token comes
// back every every.
type paceEntry struct {
	until time.Time
	every time.Duration
}

// pacer is the Transport's memory of the spent allowances it has read.
type pacer struct {
	mu      sync.Mutex
	entries map[paceKey]paceEntry
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

// learn records what resp, read at now, says of k's allowance.
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
	e, had := p.entries[k]
	until := now.Add(every)
	if had && e.until.After(until) {
		until = e.until // a later claim by a concurrent request stands
	}
	if !had && len(p.entries) >= maxPaced {
		for k, e := range p.entries {
			if !e.until.After(now) {
				delete(p.entries, k)
			}
		}
		if len(p.entries) >= maxPaced {
			return
		}
	}
	if p.entries == nil {
		p.entries = make(map[paceKey]paceEntry)
	}
	p.entries[k] = paceEntry{until: until, every: every}
}

// claim returns how long a request on k must wait for a token, 0 if none, and
// takes that token: the next request waits one interval more, so that
// concurrent callers of one allowance go one at a time. A wait over limit is
// returned but not claimed (the request is sent at once).
func (p *pacer) claim(k paceKey, now time.Time, limit time.Duration) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.entries[k]
	if !ok {
		return 0
	}
	if !e.until.After(now) {
		delete(p.entries, k)
		return 0
	}
	wait := e.until.Sub(now)
	if wait <= limit {
		e.until = e.until.Add(e.every)
		p.entries[k] = e
	}
	return wait
}

// len is how many allowances are remembered as spent.
func (p *pacer) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries)
}
