// This file holds the failed-key throttle: a GCRA per client address (IPv6 by
// its /64) that slows a client guessing keys, the set of keys seen to pass
// that it never slows, and the attempt it hands the key middleware for each
// request. Where the client address comes from is package clientaddr.

package auth

import (
	"context"
	"hash/maphash"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/gatehouse-go/gatehouse/clientaddr"
)

// ThrottleConfig configures a [Throttle]. Its zero value allows 10 failed
// attempts per client address at once, then one every 6 seconds.
type ThrottleConfig struct {
	// Attempts is how many failed attempts an address may make at once before
	// it is throttled (zero: 10).
	Attempts int
	// Per is the time in which all Attempts come back: one returns every
	// Per/Attempts (zero: one minute).
	Per time.Duration
	// Client says where a request's client address comes from (zero: the
	// connection, which is the only address a client cannot forge).
	Client clientaddr.Source
	// MaxClients bounds the addresses the throttle tracks at once, and so its
	// memory: about 60 bytes an address (zero: 65,536). See [Throttle] for what
	// happens when it is reached.
	MaxClients int
	// MaxKnownKeys bounds the keys it remembers as valid (zero: 65,536); when
	// the set is full it starts again empty.
	MaxKnownKeys int
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Throttle slows a client that guesses keys, without slowing valid keys. Give
// it to [Config].Throttle; the key middleware is then the only user.
//
// Each failed key attempt from a client address spends one of its Attempts,
// which come back one every Per/Attempts; an address with none left gets 429
// "Rate limit exceeded" with Retry-After before the key store is asked, so a
// guesser's lookups stop. A key the throttle has seen pass is still looked up
// from a throttled address (a guesser behind the same NAT as a customer). An
// attempt is spent before the lookup and given back if the key passes or the
// store fails, so requests in flight at once cannot overshoot the limit.
// Memory is bounded by MaxClients addresses and MaxKnownKeys keys, whatever
// the requests. docs/throttle.md has every rule: what counts as an attempt,
// IPv6 prefixes, addresses behind a proxy, a full table.
//
// A Throttle is safe for concurrent use. It starts no goroutine.
type Throttle struct {
	per      time.Duration // Per/Attempts: the time one attempt takes to come back
	burst    time.Duration // (Attempts-1) × per: how far ahead an address may run
	client   clientaddr.Source
	now      func() time.Time
	seed     maphash.Seed
	clients  [throttleShards]clientShard
	known    [throttleShards]knownShard
	maxShard int // addresses per shard
	maxKnown int // keys per shard
}

const throttleShards = 16

type clientShard struct {
	mu sync.Mutex
	// due is each address's theoretical arrival time (GCRA), in Unix
	// nanoseconds: when all its attempts will be back.
	due       map[netip.Addr]int64
	nextSweep int64
}

type knownShard struct {
	mu   sync.RWMutex
	keys map[[32]byte]struct{}
}

// NewThrottle returns a Throttle with cfg.
func NewThrottle(cfg ThrottleConfig) *Throttle {
	attempts := cfg.Attempts
	if attempts <= 0 {
		attempts = 10
	}
	per := cfg.Per
	if per <= 0 {
		per = time.Minute
	}
	maxClients := cfg.MaxClients
	if maxClients <= 0 {
		maxClients = 1 << 16
	}
	maxKnown := cfg.MaxKnownKeys
	if maxKnown <= 0 {
		maxKnown = 1 << 16
	}
	t := &Throttle{
		per:      max(per/time.Duration(attempts), 1),
		client:   cfg.Client,
		now:      cfg.Now,
		seed:     maphash.MakeSeed(),
		maxShard: max(maxClients/throttleShards, 1),
		maxKnown: max(maxKnown/throttleShards, 1),
	}
	t.burst = time.Duration(attempts-1) * t.per
	if t.now == nil {
		t.now = time.Now
	}
	for i := range t.clients {
		t.clients[i].due = make(map[netip.Addr]int64)
		t.known[i].keys = make(map[[32]byte]struct{})
	}
	return t
}

// group is the address a client is throttled under: IPv4 as is, IPv6 by /64.
func group(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

func (t *Throttle) shard(a netip.Addr) *clientShard {
	return &t.clients[maphash.Comparable(t.seed, a)%throttleShards]
}

// An attempt is one request's key check as the [Throttle] counts it. The
// key middleware gets it from [Throttle.begin] before the key is looked up,
// and ends it with exactly one of passed, failed or storeFailed. The zero
// attempt, of a nil Throttle, counts nothing.
type attempt struct {
	t       *Throttle
	client  netip.Addr // the address the client is throttled under (group)
	hash    [32]byte   // the key's hash, remembered if the key passes
	known   bool       // the key was seen to pass: looked up without a charge
	charged bool       // one of the client's attempts was spent before the lookup
}

// begin starts the attempt of r, whose key hashes to hash (formatOK false: the
// key is not of the format, or is ambiguous, and hash means nothing). A key
// not known to pass spends one of the client's attempts now, before it is
// looked up, so that requests in flight at once cannot overshoot the limit. If
// the client has none left, begin spends nothing and returns how long until
// one is back: answer 429 with that wait, and end nothing. t may be nil.
func (t *Throttle) begin(r *http.Request, hash [32]byte, formatOK bool) (a attempt, wait time.Duration) {
	if t == nil {
		return attempt{}, 0
	}
	a = attempt{t: t, client: group(t.client.Of(r)), hash: hash}
	if a.known = formatOK && t.knows(hash); a.known {
		return a, 0
	}
	wait, a.charged = t.take(a.client)
	return a, wait
}

// passed ends an attempt whose key passed: it gives back what begin charged
// and remembers the key, so that it is never slowed again.
func (a attempt) passed() {
	if a.t == nil {
		return
	}
	if a.charged {
		a.t.refund(a.client)
	}
	a.t.remember(a.hash)
}

// failed ends an attempt whose key failed: the charge is kept, and a key known
// to pass, which was looked up without one, is charged now.
func (a attempt) failed() {
	if a.known {
		a.t.fail(a.client)
	}
}

// storeFailed ends an attempt whose key the store could not look up: not the
// key's fault, so the charge is given back, unless ctx (the request's) has
// ended. A caller that went away keeps its attempt spent: its lookup was made
// all the same, and the throttle bounds the lookups an address makes.
func (a attempt) storeFailed(ctx context.Context) {
	if a.charged && ctx.Err() == nil {
		a.t.refund(a.client)
	}
}

// take spends one attempt of the client at a before its key is looked up;
// [Throttle.refund] gives it back. If the client has none left, take spends
// nothing and returns how long until one is back. charged says whether an
// attempt was spent (not for an invalid address, nor for an untracked one).
func (t *Throttle) take(a netip.Addr) (wait time.Duration, charged bool) {
	return t.spend(a, false)
}

// fail spends one attempt of the client at a after the fact: for a key that
// was known to pass, and so was looked up without [Throttle.take], and failed.
func (t *Throttle) fail(a netip.Addr) { t.spend(a, true) }

// spend is take, or with always set, fail: it spends one attempt of the client
// at a even if it has none left.
func (t *Throttle) spend(a netip.Addr, always bool) (wait time.Duration, charged bool) {
	if !a.IsValid() {
		return 0, false
	}
	now := t.now().UnixNano()
	s := t.shard(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	due, ok := s.due[a]
	if ok {
		if wait := time.Duration(due-now) - t.burst; wait > 0 && !always {
			return wait, false
		}
	} else if !s.room(now, t.per, t.maxShard) {
		return 0, false
	}
	s.due[a] = max(due, now) + int64(t.per)
	return 0, true
}

// refund gives back the attempt [Throttle.take] charged to a.
func (t *Throttle) refund(a netip.Addr) {
	s := t.shard(a)
	s.mu.Lock()
	if due, ok := s.due[a]; ok {
		s.due[a] = due - int64(t.per)
	}
	s.mu.Unlock()
}

// room reports whether the shard can track one more address, forgetting the
// addresses whose attempts are all back if it is full: at most once per
// attempt's return time, so that a table full of throttled addresses does not
// cost a scan per request. s.mu must be held.
func (s *clientShard) room(now int64, per time.Duration, limit int) bool {
	if len(s.due) < limit {
		return true
	}
	if now < s.nextSweep {
		return false
	}
	for addr, d := range s.due {
		if d <= now {
			delete(s.due, addr)
		}
	}
	s.nextSweep = now + int64(per)
	return len(s.due) < limit
}

// knownShard returns the shard of the known-keys set that holds hash.
func (t *Throttle) knownShard(hash [32]byte) *knownShard {
	return &t.known[hash[0]%throttleShards]
}

// remember remembers hash as the hash of a key that passed.
func (t *Throttle) remember(hash [32]byte) {
	s := t.knownShard(hash)
	s.mu.RLock()
	_, ok := s.keys[hash]
	s.mu.RUnlock()
	if ok {
		return
	}
	s.mu.Lock()
	if len(s.keys) >= t.maxKnown {
		clear(s.keys)
	}
	s.keys[hash] = struct{}{}
	s.mu.Unlock()
}

// knows reports whether hash is the hash of a key that passed.
func (t *Throttle) knows(hash [32]byte) bool {
	s := t.knownShard(hash)
	s.mu.RLock()
	_, ok := s.keys[hash]
	s.mu.RUnlock()
	return ok
}
