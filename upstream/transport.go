package upstream

import (
	"context"

	"math/rand/v2"
	"net/http"
	"time"
)

// Transport is an http.RoundTripper that retries as docs/contract.md tells a
// caller to ([DefaultCheckRetry], [DefaultBackoff]): a 429 after its
// Retry-After, a 503 with exponential backoff and full jitter, a 500 once, no
// answer only for an idempotent request (a POST that got none may have been
// done); never 400, 401, 403, 404 or 502. MaxAttempts bounds the tries and
// MaxRetryAfter every wait: a longer one is not made, and the caller gets the
// answer at once. Unless NoPacing is set, it also paces itself on the
// X-RateLimit-* headers it reads, so that a caller that sends one request
// after another never gets a 429. docs/upstream.md has every rule: bodies
// replayed with GetBody, the pacing's allowances and bounds.
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
