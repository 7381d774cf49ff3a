package upstream

import (
	"context"

	"math/rand/v2"
	"net/http"
	"time"
)

// Transport is an http.RoundTripper that retries as the contract tells a
// caller to (see [DefaultCheckRetry] and [DefaultBackoff]):
//
//	429                wait Retry-After (seconds or an HTTP-date; 60 s if absent), then retry
//	503                back off exponentially, 1 s, 2 s, 4 s … with full jitter, then retry
//	500                retry once, after 1 s
//	400 401 403 404 502 and every other status: return it, never retried
//	no answer          retried like a 503 for an idempotent request (GET, HEAD,
//	                   OPTIONS, TRACE, PUT, DELETE, or one with an Idempotency-Key
//	                   header); returned as the error otherwise, since a POST that
//	                   got no answer may have been done
//
// A request is tried at most MaxAttempts times. MaxRetryAfter bounds every
// wait: a retry that would need a longer one (a 429's or a 503's Retry-After,
// or what a custom Backoff returns) is not made, and the last answer, or
// error, is returned at once: the caller learns the wait and can decide. A request with a body is retried only
// if it has GetBody (http.NewRequest sets it for the usual body types), which
// replays the body; otherwise it is tried once. A response that is retried has
// its body drained (up to 64 KiB) and closed so that its connection is reused.
// A request's context cancelled while waiting ends the wait at once with the
// context's error.
//
// Unless NoPacing is set, the transport also paces itself on the rate-limit
// headers it reads, so that a caller that sends one request after another
// never gets a 429. When an answer says an allowance is spent
// (X-RateLimit-Remaining: 0, or X-RateLimit-Daily-Remaining: 0), the next
// request on that allowance first waits until one token is back: 60 s /
// X-RateLimit-Limit after that answer was read (86,400 s /
// X-RateLimit-Daily-Limit for the day, the longer if both are spent), which
// is when a token bucket of that size has refilled one token at the latest.
// An allowance is the request's host and credential (its Authorization and
// X-API-Key values, kept only as a SHA-256); an answer with a token left
// forgets it. Concurrent requests on one allowance each claim the next token,
// so they go one interval apart. A wait over MaxRetryAfter is not made: the
// request is sent at once and its 429 handled as above. At most 1,024 spent
// allowances are remembered (expired ones are dropped first); one beyond that
// is not paced. Only the first attempt of a request is paced: a retry already
// waits its Retry-After.
//
// It works against any HTTP API, not only gatehouse. The zero value is ready to
// use, over http.DefaultTransport. Transport is safe for concurrent use.
type Transport struct {
	// Base makes the attempts (nil: http.DefaultTransport).
	Base http.RoundTripper
	// MaxAttempts is the most tries of one request, the first included (0: 4).
	MaxAttempts int
	// MaxRetryAfter is the longest the transport waits before a retry, for
	// every status and for no answer (0: 60 s).
	MaxRetryAfter time.Duration
	// CheckRetry decides whether attempt (1 for the first) is retried
	// (nil: [DefaultCheckRetry]).
	CheckRetry func(req *http.Request, resp *http.Response, err error, attempt int) bool
	// Backoff gives the wait before the retry of attempt; jitter is a random
	// number in [0, 1) (nil: [DefaultBackoff]).
	Backoff func(resp *http.Response, err error, attempt int, jitter float64) time.Duration
	// Sleep waits d or until ctx is done, returning ctx.Err() then (nil: a timer).
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a random number in [0, 1) (nil: math/rand/v2's Float64).
	Jitter func() float64
	// Now is the clock of Retry-After dates and of pacing (nil: time.Now).
	Now func() time.Time
	// Name names the upstream in the events given to Observe.
	Name string
	// Observe, if set, is told each attempt that is retried (an [Event] of
	// kind Retry: its status or why it got none, and the wait), before the
	// wait; it must be quick and safe for concurrent use. Nil reports nothing.
	Observe func(Event)
	// NoPacing turns pacing off: the transport then sends every request at
	// once and only retries the 429s it gets.
	NoPacing bool

	pace pacer
}

// DefaultCheckRetry is the retry rule of docs/contract.md's client side: 429
// and 503 are retried, 500 once (attempt 1 only), every other status never;
// an error (no answer) is retried only for an idempotent request, and never
// once the request's context is done.
func DefaultCheckRetry(req *http.Request, resp *http.Response, err error, attempt int) bool {
	if err != nil {
		return req.Context().Err() == nil && idempotent(req)
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return true
	case http.StatusInternalServerError:
		return attempt == 1
	}
	return false
}

func idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return req.Header.Get("Idempotency-Key") != ""
}

// DefaultBackoff is docs/contract.md's wait before the retry of attempt (1 for
// the first attempt): for a 429 its Retry-After (60 s if absent or unreadable:
// a minute's window is whole again by then); for a 500, 1 s; for a 503 or no
// answer, full jitter over an exponential step, jitter × 2^(attempt-1) s,
// capped at 30 s, and never less than a 503's own Retry-After.
func DefaultBackoff(resp *http.Response, err error, attempt int, jitter float64) time.Duration {
	return defaultBackoff(resp, attempt, jitter, time.Now())
}

func defaultBackoff(resp *http.Response, attempt int, jitter float64, now time.Time) time.Duration {
	if resp != nil {
		switch resp.StatusCode {
		case http.StatusTooManyRequests:
			if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), now); ok {
				return d
			}
			return 60 * time.Second
		case http.StatusInternalServerError:
			return time.Second
		}
	}
	step := 30 * time.Second
	if attempt < 6 {
		step = time.Second << (attempt - 1)
	}
	d := time.Duration(jitter * float64(step))
	if resp != nil {
		if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"), now); ok && ra > d {
			d = ra
		}
	}
	return d
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	maxAttempts := t.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = 4
	}
	var key paceKey
	if !t.NoPacing {
		key = paceKeyOf(req)
		if wait := t.pace.claim(key, t.now(), t.maxRetryAfter()); wait > 0 && wait <= t.maxRetryAfter() {
			if err := t.sleep(req.Context(), wait); err != nil {
				return nil, err
			}
		}
	}
	hasBody := req.Body != nil && req.Body != http.NoBody
	if hasBody && req.GetBody == nil {
		maxAttempts = 1 // the body cannot be replayed
	}
	for attempt := 1; ; attempt++ {
		try := req
		if attempt > 1 && hasBody {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			try = req.Clone(req.Context())
			try.Body = body
		}
		resp, err := base.RoundTrip(try)
		if !t.NoPacing {
			t.pace.learn(key, resp, t.now())
		}
		if attempt >= maxAttempts || !t.checkRetry(req, resp, err, attempt) {
			return resp, err
		}
		wait := t.backoff(resp, err, attempt)
		if wait > t.maxRetryAfter() {
			// Not worth waiting here: the caller gets the answer (and its
			// Retry-After) or the error now, and can decide.
			return resp, err
		}
		if t.Observe != nil {
			t.observeRetry(resp, err, wait)
		}
		if resp != nil {
			drain(resp.Body)
			resp.Body.Close()
		}
		if err := t.sleep(req.Context(), wait); err != nil {
			return nil, err
		}
	}
}

// observeRetry reports to Observe an attempt that got resp or err and is
// retried after wait.
func (t *Transport) observeRetry(resp *http.Response, err error, wait time.Duration) {
	e := Event{Kind: Retry, Name: t.Name, Class: classOf(resp, err), Duration: wait}
	switch {
	case err != nil:
		e.Reason = reason(err)
	case resp != nil:
		e.Status = resp.StatusCode
	}
	t.Observe(e)
}

func (t *Transport) checkRetry(req *http.Request, resp *http.Response, err error, attempt int) bool {
	if t.CheckRetry != nil {
		return t.CheckRetry(req, resp, err, attempt)
	}
	return DefaultCheckRetry(req, resp, err, attempt)
}

func (t *Transport) backoff(resp *http.Response, err error, attempt int) time.Duration {
	jitter := rand.Float64
	if t.Jitter != nil {
		jitter = t.Jitter
	}
	if t.Backoff != nil {
		return t.Backoff(resp, err, attempt, jitter())
	}
	return defaultBackoff(resp, attempt, jitter(), t.now())
}

func (t *Transport) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Transport) maxRetryAfter() time.Duration {
	if t.MaxRetryAfter > 0 {
		return t.MaxRetryAfter
	}
	return 60 * time.Second
}

func (t *Transport) sleep(ctx context.Context, d time.Duration) error {
	if t.Sleep != nil {
		return t.Sleep(ctx, d)
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
