package ratelimit

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"
	"unsafe"

	"github.com/gatehouse-go/gatehouse/clientaddr"
	"github.com/gatehouse-go/gatehouse/errorsjson"
	"github.com/gatehouse-go/gatehouse/internal/nilhandler"
	"github.com/gatehouse-go/gatehouse/internal/seconds"
)

// The limits of a key that sets none, and of a [Config] that sets none.
const (
	DefaultPerMinute = 60
	DefaultPerDay    = 10000
)

// ErrInvalidLimits is returned by a [Store] given a limit below 1 or above
// [MaxLimit], a period or a cost out of range (see [Charge.Validate]).
var ErrInvalidLimits = errors.New("ratelimit: invalid limits")

// Rate is one window: Limit tokens per Period, refilled continuously (a
// generic cell rate algorithm, in integers). Period is a whole number of
// seconds from 1 s to [MaxPeriod]; [Rate.Validate] refuses others.
type Rate struct {
	Limit  int
	Period time.Duration
}

// Limits are a key's allowance: PerMinute tokens a minute and PerDay a day
// (a zero field means the default of the [Config] that uses it, and the
// X-RateLimit-* headers tell these two), and More, further windows of the
// same bucket, of any periods but a minute's or a day's and each its own (nil
// means the Config's More; an empty, non-nil More means none).
type Limits struct {
	PerMinute, PerDay int
	More              []Rate
}

// orDefault returns l with its zero (or negative) fields, and a nil More,
// taken from def.
func (l Limits) orDefault(def Limits) Limits {
	if l.PerMinute <= 0 {
		l.PerMinute = def.PerMinute
	}
	if l.PerDay <= 0 {
		l.PerDay = def.PerDay
	}
	if l.More == nil {
		l.More = def.More
	}
	return l
}

// Charge is what one request asks of a [Store]: Cost tokens from every window
// of Key's Limits and, when Owner is set (and OwnerLimits are not empty), from
// every window of the owner's own bucket, shared by every key of that owner:
// all or nothing, in one atomic decision. A refusal spends nothing anywhere.
// An owner's bucket is apart from every key's, even one of the same name.
type Charge struct {
	Key    string
	Limits Limits
	// Owner names the owner's bucket; "" for none.
	Owner       string
	OwnerLimits []Rate
	// Cost is the tokens the request takes from each window; 0 means 1, and
	// it is at most [MaxCost].
	Cost int
}

// Window is where one window of a bucket stands after a request.
type Window struct {
	// Limit is the window's size: the tokens allowed per Period.
	Limit int
	// Remaining is the whole number of tokens the window would still allow
	// now, after this request: floored, never negative.
	Remaining int
	// Reset is the time until the window is full again.
	Reset time.Duration
	// Period is the window's length.
	Period time.Duration
	// Owner says the window is the owner's bucket's, not the key's.
	Owner bool
}

// Decision is a [Store]'s answer to one request of a key.
type Decision struct {
	// Allowed says the request passed; it then took its cost from each
	// window.
	Allowed bool
	// Minute and Day are the key's two windows after the request.
	Minute, Day Window
	// More are the key's further windows (its Limits.More, in order), then
	// the owner's (OwnerLimits, in order, Owner set); nil when there are none.
	More []Window
	// RetryAfter is set when the request was refused: the time after which
	// the same request (its cost) would pass, the latest over the windows. A
	// request made exactly RetryAfter later, with nothing else taken
	// meanwhile, passes, unless its cost is above a window's limit: such a
	// request never passes, and its RetryAfter is that window's whole period
	// (the time an empty window takes to refill), so that a client that
	// obeys it backs off rather than retrying at once.
	RetryAfter time.Duration
}

// Store keeps the buckets of every key and owner. Take decides one request,
// c, at now: if every window of c's key and of its owner has room for c's
// cost it takes the cost from each and allows the request; otherwise it takes
// nothing from any and refuses it. Limits that differ from the ones a bucket
// had apply from this request on. Take must be safe for concurrent use; an
// error means no decision (see [Config.OnStoreError]); a Charge that fails
// [Charge.Validate] gets one wrapping [ErrInvalidLimits].
type Store interface {
	Take(ctx context.Context, c Charge, now time.Time) (Decision, error)
}

// Config configures [Middleware]. Key is required: what is limited is the
// user's choice, stated at the call site ([ByClientIP] keys on the client IP).
// Every other zero value is a default: 60 requests a minute and 10,000 a day,
// in memory. [Config.Validate] says whether a Config can work; Middleware
// refuses one that cannot.
type Config struct {
	// Limits are the defaults for a key whose limits have a zero field or a
	// nil More (zero: 60 per minute, 10,000 per day, no more windows).
	Limits Limits
	// Key names the bucket of r, its limits, its owner and its cost (see
	// [Charge]). ok=false lets r through
	// untouched: no state is kept and no header is set (use it for requests
	// that failed authentication, so that invented keys cost nothing here).
	// Required: [ByClientIP] keys on the client IP of r.RemoteAddr, with
	// Limits; [ByClient] on the client address behind a proxy.
	Key func(r *http.Request) (c Charge, ok bool)
	// Store keeps the buckets (nil: a new [MemoryStore] of this middleware's
	// own).
	Store Store
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// DraftHeaders adds the IETF draft RateLimit-Policy and RateLimit headers
	// to the X-RateLimit-* ones. A decision with further windows (Limits.More
	// or an owner's) has them anyway, as the X-RateLimit-* headers tell only
	// the minute and the day.
	DraftHeaders bool
	// OnLimited answers a refused request; the rate-limit headers and
	// Retry-After are already set on w. Nil writes 429 {"error":"Rate limit
	// exceeded"} through errorsjson.Write.
	OnLimited func(w http.ResponseWriter, r *http.Request, d Decision)
	// OnStoreError decides a request whose Store.Take failed, and is the policy
	// for a failing store: returning true lets the request through without
	// rate-limit headers (fail open); returning false means it has answered w
	// (fail closed). Nil is [FailClosed]: 503 {"error":"Upstream service
	// temporarily unavailable"} with Retry-After: 1. [FailOpen] fails open.
	// The error is logged either way.
	OnStoreError func(w http.ResponseWriter, r *http.Request, err error) bool
	// Logger receives store errors (nil: slog.Default()).
	Logger *slog.Logger
	// Observe, if set, is told each decision (see [Event]), after it is made
	// and before the request goes on; it must be quick and safe for
	// concurrent use. Nil reports nothing.
	Observe func(Event)
}

// FailClosed is the default [Config.OnStoreError]: it answers 503 with
// errorsjson.MsgUpstreamUnavailable and Retry-After: 1, so that a caller backs
// off, and returns false.
func FailClosed(w http.ResponseWriter, r *http.Request, err error) bool {
	errorsjson.SetRetryAfter(w.Header(), time.Second)
	errorsjson.Write(w, r, http.StatusServiceUnavailable, errorsjson.MsgUpstreamUnavailable)
	return false
}

// FailOpen is a [Config.OnStoreError] that lets every request through while the
// store fails: availability over enforcement.
func FailOpen(http.ResponseWriter, *http.Request, error) bool { return true }

// ByClientIP is a [Config.Key] that limits each client IP with the Config's
// Limits: [ByClient] of the zero clientaddr.Source, the address of the
// connection. Behind a proxy every caller has the proxy's address: use
// ByClient with the proxy's header, or key on something the caller proved.
func ByClientIP(r *http.Request) (Charge, bool) {
	return Charge{Key: clientKey(clientaddr.Source{}, r)}, true
}

// ByClient returns a [Config.Key] that limits each client address, as s
// tells it, with the Config's Limits: the same address auth's failed-key
// throttle counts and upstream forwards, given the same s. The key is the
// address's text (an IPv4-mapped IPv6 address as its IPv4 address); a
// request whose RemoteAddr is not an address (a Unix socket, a request made
// within the process) is keyed on its RemoteAddr as it is, so that such
// requests share a bucket rather than go unlimited.
func ByClient(s clientaddr.Source) func(r *http.Request) (Charge, bool) {
	return func(r *http.Request) (Charge, bool) { return Charge{Key: clientKey(s, r)}, true }
}

// clientKey is the key of r's client as s tells it: see [ByClient].
func clientKey(s clientaddr.Source, r *http.Request) string {
	a := s.Of(r)
	if !a.IsValid() {
		return r.RemoteAddr
	}
	// RemoteAddr usually begins with the address's text ("192.0.2.1:5",
	// "[2001:db8::1]:5"): then the key is that part of it, which spares the
	// limiter's pass path an allocation (TestClientKey).
	var buf [64]byte
	text := a.AppendTo(buf[:0])
	ra, n := r.RemoteAddr, len(text)
	switch {
	case len(ra) > n && ra[n] == ':' && ra[:n] == string(text):
		return ra[:n]
	case len(ra) > n+1 && ra[0] == '[' && ra[n+1] == ']' && ra[1:n+1] == string(text):
		return ra[1 : n+1]
	}
	return string(text)
}

// errNoKey refuses a Config without a key function: keying on RemoteAddr
// by default would silently limit every caller behind a proxy as one.
var errNoKey = errors.New("ratelimit: Config.Key is nil; say what to limit by (ratelimit.ByClientIP for the client IP)")

// Canonical forms, so that the hot path can assign the header map directly.
const (
	hdrLimit          = "X-Ratelimit-Limit"
	hdrRemaining      = "X-Ratelimit-Remaining"
	hdrDailyLimit     = "X-Ratelimit-Daily-Limit"
	hdrDailyRemaining = "X-Ratelimit-Daily-Remaining"
	hdrPolicy         = "Ratelimit-Policy"
	hdrRateLimit      = "Ratelimit"
)

// Validate returns an error if c has no Key, or one wrapping
// [ErrInvalidLimits] if c's default limits, once their zero fields are
// defaulted, are above [MaxLimit].
func (c Config) Validate() error {
	if c.Key == nil {
		return errNoKey
	}
	return c.Limits.orDefault(Limits{PerMinute: DefaultPerMinute, PerDay: DefaultPerDay}).Validate()
}

// Middleware returns a middleware that takes each request's [Charge] (its cost
// from every window of its key, and of its owner) before calling the next
// handler, sets the X-RateLimit-* headers (and with DraftHeaders or further
// windows the draft ones) before next runs, so that they are on every answer,
// and answers a request that a window has no room for with 429 and
// Retry-After instead of calling next. See the package documentation for the
// headers' meaning. It panics with cfg.Validate's error if cfg cannot work,
// when the middleware is built rather than on every request (docs/adopting.md
// says why), and likewise, as http.Handle does, if the handler it is given is
// nil. A key
// whose own limits are invalid gets the store's [ErrInvalidLimits], which
// OnStoreError decides.
func Middleware(cfg Config) func(http.Handler) http.Handler {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	m := &limiter{cfg: cfg}
	m.cfg.Limits = cfg.Limits.orDefault(Limits{PerMinute: DefaultPerMinute, PerDay: DefaultPerDay})
	if m.cfg.Store == nil {
		m.cfg.Store = NewMemoryStore(MemoryConfig{})
	}
	if m.cfg.Now == nil {
		m.cfg.Now = time.Now
	}
	if m.cfg.OnStoreError == nil {
		m.cfg.OnStoreError = FailClosed
	}
	if m.cfg.Logger == nil {
		m.cfg.Logger = slog.Default()
	}
	m.minuteLimit = []string{strconv.Itoa(m.cfg.Limits.PerMinute)}
	m.dayLimit = []string{strconv.Itoa(m.cfg.Limits.PerDay)}
	return func(next http.Handler) http.Handler {
		nilhandler.Refuse("ratelimit: Middleware", next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			m.serve(w, r, next)
		})
	}
}

type limiter struct {
	cfg Config
	// The X-RateLimit-Limit and -Daily-Limit values of the default limits,
	// shared by every response that has them: a header value of capacity 1 is
	// replaced, never written in place, by Set and Add, so sharing it is safe.
	minuteLimit, dayLimit []string
}

func (m *limiter) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if m.decide(w, r) {
		next.ServeHTTP(w, r)
	}
}

// decide charges r, sets the rate-limit headers, answers r itself when it is
// refused (or the store failed and OnStoreError said so) and reports whether
// next is to serve it. It returns before next runs, so that the charge and
// the decision are not on the stack under every handler after it: a deeper
// stack makes each connection's goroutine grow its stack again after every
// garbage collection that shrank it.
func (m *limiter) decide(w http.ResponseWriter, r *http.Request) bool {
	c, ok := m.cfg.Key(r)
	if !ok {
		return true
	}
	c.Limits = c.Limits.orDefault(m.cfg.Limits)
	d, err := m.cfg.Store.Take(r.Context(), c, m.cfg.Now())
	if err != nil {
		if r.Context().Err() != nil {
			return m.abandoned(w, r)
		}
		m.cfg.Logger.LogAttrs(r.Context(), slog.LevelError, "ratelimit: store failed", slog.Any("error", err))
		open := m.cfg.OnStoreError(w, r, err)
		if m.cfg.Observe != nil {
			m.cfg.Observe(Event{Result: storeFailed(open)})
		}
		return open
	}
	h := w.Header()
	switch {
	case m.cfg.DraftHeaders || d.More != nil:
		setDraftHeaders(h, &d)
	case d.Minute.Limit == m.cfg.Limits.PerMinute && d.Day.Limit == m.cfg.Limits.PerDay:
		m.setRemaining(h, &d)
	default:
		setHeaders(h, &d)
	}
	if m.cfg.Observe != nil {
		m.cfg.Observe(decided(&d, c.cost()))
	}
	if !d.Allowed {
		errorsjson.SetRetryAfter(h, d.RetryAfter)
		if m.cfg.OnLimited != nil {
			m.cfg.OnLimited(w, r, d)
			return false
		}
		errorsjson.Write(w, r, http.StatusTooManyRequests, errorsjson.MsgRateLimited)
		return false
	}
	return true
}

// abandoned answers r, whose caller went away while the store was deciding:
// the store's error is the caller's cancellation, not a failure of the store,
// so it is not logged, not given to OnStoreError (whose fail-open would send
// a request nobody waits for on to next) and is reported as Abandoned. The
// 503 it writes is read by nobody.
func (m *limiter) abandoned(w http.ResponseWriter, r *http.Request) bool {
	if m.cfg.Observe != nil {
		m.cfg.Observe(Event{Result: Abandoned})
	}
	errorsjson.Write(w, r, http.StatusServiceUnavailable, errorsjson.MsgUpstreamUnavailable)
	return false
}

// headerValues holds a response's rate-limit header values and the bytes they
// are made of in one allocation: the values are strings over buf (made by
// since, with unsafe.String), which is written once and never again, and the
// header map's []string values are slices of vals. What it buys is in
// docs/performance.md.
type headerValues struct {
	vals [4]string
	buf  [4 * 20]byte
}

// remainingValues is headerValues for the two Remaining headers alone.
type remainingValues struct {
	vals [2]string
	buf  [2 * 20]byte
}

// setRemaining sets the headers of a decision under the default limits.
func (m *limiter) setRemaining(h http.Header, d *Decision) {
	v := new(remainingValues)
	b, s := appendNumber(v.buf[:0], d.Minute.Remaining)
	v.vals[0] = s
	_, v.vals[1] = appendNumber(b, d.Day.Remaining)
	h[hdrLimit] = m.minuteLimit[:1:1]
	h[hdrRemaining] = v.vals[0:1:1]
	h[hdrDailyLimit] = m.dayLimit[:1:1]
	h[hdrDailyRemaining] = v.vals[1:2:2]
}

func setHeaders(h http.Header, d *Decision) {
	v := new(headerValues)
	appendWindows(v.buf[:0], &v.vals, d)
	setWindows(h, &v.vals)
}

// appendWindows appends d's four X-RateLimit numbers to b and sets vals to
// them (limit and remaining of the minute, then of the day), as appendNumber
// does: b's bytes must never be written again.
func appendWindows(b []byte, vals *[4]string, d *Decision) []byte {
	for i, n := range [4]int{d.Minute.Limit, d.Minute.Remaining, d.Day.Limit, d.Day.Remaining} {
		b, vals[i] = appendNumber(b, n)
	}
	return b
}

// setWindows sets the four X-RateLimit headers to vals, as appendWindows
// made them, each value a slice of vals.
func setWindows(h http.Header, vals *[4]string) {
	h[hdrLimit] = vals[0:1:1]
	h[hdrRemaining] = vals[1:2:2]
	h[hdrDailyLimit] = vals[2:3:3]
	h[hdrDailyRemaining] = vals[3:4:4]
}

// draftValues is headerValues with room for the draft headers of the
// minute and the day; further windows grow the buffer.
type draftValues struct {
	vals [6]string
	// Room for the longest values: 20 bytes an int64, the policy's 54 bytes
	// of text and two ints, the RateLimit field's 67 and four ints.
	buf [4*20 + 54 + 2*20 + 67 + 4*20]byte
}

// setDraftHeaders sets the X-RateLimit-* headers of d's minute and day, and
// the draft's RateLimit-Policy and RateLimit fields of every window of d:
// the minute, the day, then d.More, each named by [windowName].
func setDraftHeaders(h http.Header, d *Decision) {
	v := new(draftValues)
	windows := (*[4]string)(v.vals[:4])
	b := appendWindows(v.buf[:0], windows, d)
	start := len(b)
	b = append(b, `"minute";q=`...)
	b = strconv.AppendInt(b, int64(d.Minute.Limit), 10)
	b = append(b, `;w=60, "day";q=`...)
	b = strconv.AppendInt(b, int64(d.Day.Limit), 10)
	b = append(b, `;w=86400`...)
	for _, w := range d.More {
		b = appendPolicy(append(appendWindowName(append(b, `, "`...), w.Period, w.Owner), '"'), w.Limit, int64(w.Period/time.Second))
	}
	v.vals[4] = since(b, start)
	start = len(b)
	b = append(b, `"minute";r=`...)
	b = strconv.AppendInt(b, int64(d.Minute.Remaining), 10)
	b = append(b, `;t=`...)
	b = strconv.AppendInt(b, seconds.Ceil(d.Minute.Reset), 10)
	b = append(b, `, "day";r=`...)
	b = strconv.AppendInt(b, int64(d.Day.Remaining), 10)
	b = append(b, `;t=`...)
	b = strconv.AppendInt(b, seconds.Ceil(d.Day.Reset), 10)
	for _, w := range d.More {
		b = appendState(append(appendWindowName(append(b, `, "`...), w.Period, w.Owner), '"'), w)
	}
	v.vals[5] = since(b, start)
	setWindows(h, windows)
	h[hdrPolicy] = v.vals[4:5:5]
	h[hdrRateLimit] = v.vals[5:6:6]
}

// appendPolicy appends the parameters of one RateLimit-Policy item.
func appendPolicy(b []byte, limit int, seconds int64) []byte {
	b = append(b, `;q=`...)
	b = strconv.AppendInt(b, int64(limit), 10)
	b = append(b, `;w=`...)
	return strconv.AppendInt(b, seconds, 10)
}

// appendState appends the parameters of one RateLimit item.
func appendState(b []byte, w Window) []byte {
	b = append(b, `;r=`...)
	b = strconv.AppendInt(b, int64(w.Remaining), 10)
	b = append(b, `;t=`...)
	return strconv.AppendInt(b, seconds.Ceil(w.Reset), 10)
}

// windowName is the name of a window of period in the draft headers and in
// [Event]: the largest of day, hour, minute and second that divides the
// period, alone when the period is one of it ("day", "hour", "minute",
// "second") and otherwise as a count and its letter ("30d", "2h", "90s");
// an owner's window has the prefix "owner-" ("owner-day").
func windowName(period time.Duration, owner bool) string {
	return string(appendWindowName(nil, period, owner))
}

// appendWindowName appends [windowName] to b.
func appendWindowName(b []byte, period time.Duration, owner bool) []byte {
	if owner {
		b = append(b, "owner-"...)
	}
	s := int64(period / time.Second)
	for _, u := range [...]struct {
		secs         int64
		name, letter string
	}{{86400, "day", "d"}, {3600, "hour", "h"}, {60, "minute", "m"}, {1, "second", "s"}} {
		if s == u.secs {
			return append(b, u.name...)
		}
		if s > 0 && s%u.secs == 0 {
			return append(strconv.AppendInt(b, s/u.secs, 10), u.letter...)
		}
	}
	return strconv.AppendInt(append(b, "ms"...), int64(period/time.Millisecond), 10) // not a valid Rate's
}

// appendNumber appends n in decimal to b and returns b and the appended
// digits as a string that shares b's memory, so that a header value costs no
// allocation of its own: b's bytes must never be written again.
func appendNumber(b []byte, n int) ([]byte, string) {
	start := len(b)
	b = strconv.AppendInt(b, int64(n), 10)
	return b, since(b, start)
}

// since returns b[start:] as a string that shares b's memory; b's bytes must
// never be written again.
func since(b []byte, start int) string {
	return unsafe.String(&b[start], len(b)-start)
}
