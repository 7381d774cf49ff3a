package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/gatehouse-go/gatehouse/errorsjson"
)

// Defaults of a [Target]'s zero fields.
const (
	DefaultDialTimeout           = 5 * time.Second
	DefaultResponseHeaderTimeout = 30 * time.Second
	DefaultTimeout               = 60 * time.Second
	DefaultRetryAfter            = 5 * time.Second
)

// Messages of the answers the proxy writes besides the contract's own.
const (
	// MsgInvalidInput is the 400 for an upstream's input-validation answer
	// whose message is not a short plain string.
	MsgInvalidInput = "Invalid input"
	// MsgUpstreamUnexpected is the 502 for an upstream 4xx that is neither
	// input validation (400, 422), authentication (401, 403) nor 429: the
	// gateway's configuration points at the wrong thing, which is not the
	// caller's fault.
	MsgUpstreamUnexpected = "Upstream service returned an unexpected answer"
)

// maxErrorBody bounds what the proxy reads of an upstream's 400 to find its
// message, and what it drains of a discarded body so the connection is reused.
const maxErrorBody = 64 << 10

// maxMessageLen is the longest upstream 400 message passed on to a caller.
const maxMessageLen = 200

// Target is one product's upstream service.
type Target struct {
	// Name names the upstream in logs and in /health (typically the product slug).
	Name string
	// URL is where requests are sent, with the caller's method, body and query
	// (?format=pdf and the like are passed on).
	URL string
	// HealthURL is what [Health] probes with GET ("": URL).
	HealthURL string
	// Header is added to every call: the upstream's own credentials, such as
	// Authorization: Bearer <secret>. It is never logged nor shown to a caller.
	Header http.Header

	// DialTimeout bounds connecting (0: 5 s), ResponseHeaderTimeout the wait
	// for the answer's headers once the request is sent (0: 30 s), and Timeout
	// the whole call, body included (0: 60 s).
	DialTimeout, ResponseHeaderTimeout, Timeout time.Duration
	// RetryAfter is the Retry-After of a 503 when the upstream gave none (0: 5 s).
	RetryAfter time.Duration
	// Breaker configures the circuit breaker.
	Breaker BreakerConfig

	// Transport makes the calls (nil: a transport of the proxy's own with the
	// timeouts above). Set it to share connections or to test.
	Transport http.RoundTripper
	// Logger receives the upstream's failures (nil: slog.Default()).
	Logger *slog.Logger
	// Now is the breaker's clock (nil: time.Now).
	Now func() time.Time
}

// Proxy is an http.Handler that forwards requests to one [Target] and
// translates its failures into the contract's answers:
//
//	upstream 2xx, 3xx                  streamed through as they are
//	upstream 400, 422                  the same status, {"error": its message if short and plain, else "Invalid input"}
//	upstream 401, 403                  502 Upstream service authentication failed (logged with its status)
//	upstream 429, 502, 503, 504        503 Upstream service temporarily unavailable, with Retry-After
//	no answer: refused, DNS, timeout   503 likewise
//	upstream 500 (and other 5xx)       500 Internal server error
//	another upstream 4xx (404, 405…)   502 Upstream service returned an unexpected answer
//
// Retry-After on a 503 is the upstream's own when it sent one, otherwise the
// target's RetryAfter. An upstream's error body never reaches the caller, beyond
// the one short message of a 400.
//
// The request goes out with the caller's method, body and query, without the
// caller's Authorization, X-API-Key, Cookie and hop-by-hop headers (the caller's
// key never reaches the upstream), with the target's Header, and with
// X-Request-ID set to the request's id. A success's body is streamed, never
// buffered whole, and flushed piece by piece when its length is unknown; its X-RateLimit-*, RateLimit*,
// Retry-After and X-Request-ID headers are dropped, since those the gateway
// sets are about the caller's key. A caller that goes away cancels the call.
//
// Proxy calls the upstream with an http.RoundTripper directly rather than
// through httputil.ReverseProxy: every answer but a success is rewritten, and
// the breaker needs the outcome of each call, which is simpler to see in one
// straight function than across ReverseProxy's Rewrite, ModifyResponse and
// ErrorHandler hooks.
//
// Proxy is safe for concurrent use. Close releases its idle connections.
type Proxy struct {
	target    Target
	url       *url.URL
	transport http.RoundTripper
	own       *http.Transport // the transport Proxy made, closed by Close
	breaker   *breaker
	logger    *slog.Logger
	now       func() time.Time
	buffers   sync.Pool // of *[]byte, for copying answers
}

// NewProxy returns a Proxy for t. An unparsable or non-HTTP URL is an error.
func NewProxy(t Target) (*Proxy, error) {
	u, err := url.Parse(t.URL)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("upstream: URL must be an absolute http or https URL")
	}
	if t.DialTimeout <= 0 {
		t.DialTimeout = DefaultDialTimeout
	}
	if t.ResponseHeaderTimeout <= 0 {
		t.ResponseHeaderTimeout = DefaultResponseHeaderTimeout
	}
	if t.Timeout <= 0 {
		t.Timeout = DefaultTimeout
	}
	if t.RetryAfter <= 0 {
		t.RetryAfter = DefaultRetryAfter
	}
	p := &Proxy{target: t, url: u, transport: t.Transport, breaker: newBreaker(t.Breaker), logger: t.Logger, now: t.Now}
	if p.transport == nil {
		p.own = newTransport(t)
		p.transport = p.own
	}
	if p.logger == nil {
		p.logger = slog.Default()
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p, nil
}

func newTransport(t Target) *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // the upstream is the administrator's: no environment proxy in between
		DialContext:           (&net.Dialer{Timeout: t.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   t.DialTimeout,
		ResponseHeaderTimeout: t.ResponseHeaderTimeout,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   100,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
}

// Close closes the proxy's idle connections. Requests in flight finish.
func (p *Proxy) Close() {
	if p.own != nil {
		p.own.CloseIdleConnections()
	}
}

// Open reports whether the proxy's breaker is refusing requests now.
func (p *Proxy) Open() bool { return p.breaker.open(p.now()) }

// dropOutgoing are the caller's headers the upstream never sees: hop-by-hop
// headers (RFC 9110, 7.6.1), the caller's credentials, and the caller's own
// X-Request-ID (the request's id, possibly a new one, is set instead).
var dropOutgoing = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Authorization", "X-Api-Key", "Cookie", "X-Request-Id",
}

// dropIncoming are the upstream's headers the caller never sees: hop-by-hop
// headers, and those the gateway sets about the caller's key and request.
var dropIncoming = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", "X-Ratelimit-Daily-Limit",
	"X-Ratelimit-Daily-Remaining", "Ratelimit", "Ratelimit-Policy", "Retry-After", "X-Request-Id",
}

// ServeHTTP forwards r to the upstream and writes its answer or its translation.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ok, probe, wait := p.breaker.allow(p.now())
	if !ok {
		p.unavailable(w, r, wait)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), p.target.Timeout)
	defer cancel()

	resp, err := p.transport.RoundTrip(p.outgoing(ctx, r))
	if err != nil {
		if r.Context().Err() != nil {
			// The caller went away: not the upstream's failure. Nobody reads this answer.
			p.breaker.done(probe, true, p.now())
			p.unavailable(w, r, p.target.RetryAfter)
			return
		}
		p.breaker.done(probe, false, p.now())
		p.logger.LogAttrs(r.Context(), slog.LevelWarn, "upstream unreachable",
			slog.String("upstream", p.target.Name),
			slog.String("request_id", errorsjson.RequestIDFrom(r.Context())),
			slog.String("error", err.Error()))
		p.unavailable(w, r, p.target.RetryAfter)
		return
	}
	defer resp.Body.Close()

	switch status := resp.StatusCode; {
	case status < 400:
		p.breaker.done(probe, true, p.now())
		p.stream(w, r, resp)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		p.breaker.done(probe, true, p.now()) // it answers: a configuration problem, not an outage
		p.logFailure(r, resp, slog.LevelError, "upstream refused the gateway's credentials")
		drain(resp.Body)
		errorsjson.Write(w, r, http.StatusBadGateway, errorsjson.MsgUpstreamAuth)
	case status == http.StatusTooManyRequests || status == http.StatusBadGateway ||
		status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout:
		p.breaker.done(probe, false, p.now())
		p.logFailure(r, resp, slog.LevelWarn, "upstream unavailable")
		retry := p.target.RetryAfter
		if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			retry = d
		}
		drain(resp.Body)
		p.unavailable(w, r, retry)
	case status >= 500:
		p.breaker.done(probe, false, p.now())
		p.logFailure(r, resp, slog.LevelError, "upstream failed")
		drain(resp.Body)
		errorsjson.Write(w, r, http.StatusInternalServerError, errorsjson.MsgInternal)
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		p.breaker.done(probe, true, p.now())
		errorsjson.Write(w, r, status, inputMessage(resp.Body))
		drain(resp.Body)
	default:
		p.breaker.done(probe, true, p.now())
		p.logFailure(r, resp, slog.LevelError, "upstream answered an unexpected status")
		drain(resp.Body)
		errorsjson.Write(w, r, http.StatusBadGateway, MsgUpstreamUnexpected)
	}
}

// outgoing builds the upstream request from the caller's.
func (p *Proxy) outgoing(ctx context.Context, r *http.Request) *http.Request {
	u := *p.url
	if r.URL.RawQuery != "" {
		if u.RawQuery != "" {
			u.RawQuery += "&" + r.URL.RawQuery
		} else {
			u.RawQuery = r.URL.RawQuery
		}
	}
	out := &http.Request{
		Method:        r.Method,
		URL:           &u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        r.Header.Clone(),
		Body:          r.Body,
		GetBody:       r.GetBody,
		ContentLength: r.ContentLength,
		Host:          u.Host,
	}
	if out.Body == nil || out.ContentLength == 0 && r.Body == http.NoBody {
		out.Body = http.NoBody
	}
	if out.Header == nil {
		out.Header = make(http.Header)
	}
	// Headers named by Connection are hop-by-hop too.
	for _, v := range out.Header["Connection"] {
		for _, name := range strings.Split(v, ",") {
			out.Header.Del(strings.TrimSpace(name))
		}
	}
	for _, h := range dropOutgoing {
		delete(out.Header, h)
	}
	for k, vs := range p.target.Header {
		out.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	if id := errorsjson.RequestIDFrom(r.Context()); id != "" {
		out.Header["X-Request-Id"] = []string{id}
	}
	return out.WithContext(ctx)
}

// stream copies a success to w as it arrives.
func (p *Proxy) stream(w http.ResponseWriter, r *http.Request, resp *http.Response) {
	h := w.Header()
	for _, v := range resp.Header["Connection"] {
		for _, name := range strings.Split(v, ",") {
			resp.Header.Del(strings.TrimSpace(name))
		}
	}
	for _, name := range dropIncoming {
		delete(resp.Header, name)
	}
	for k, vs := range resp.Header {
		h[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	// An answer of unknown length is a stream: pass each piece on as it comes.
	// One of known length is written through the server's buffer, which sends
	// a small JSON answer in one write.
	flush := resp.ContentLength < 0
	bp, _ := p.buffers.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 32<<10)
		bp = &b
	}
	defer p.buffers.Put(bp)
	buf := *bp
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return // the caller went away; the deferred cancel stops the upstream
			}
			if flush {
				rc.Flush()
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			// The status is sent; abort the connection so that the caller sees a
			// broken transfer, not a short success.
			p.logger.LogAttrs(r.Context(), slog.LevelWarn, "upstream body broke off",
				slog.String("upstream", p.target.Name),
				slog.String("request_id", errorsjson.RequestIDFrom(r.Context())),
				slog.String("error", err.Error()))
			panic(http.ErrAbortHandler)
		}
	}
}

// unavailable answers 503 with a Retry-After of wait.
func (p *Proxy) unavailable(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	w.Header()["Retry-After"] = []string{seconds(wait)}
	errorsjson.Write(w, r, http.StatusServiceUnavailable, errorsjson.MsgUpstreamUnavailable)
}

func (p *Proxy) logFailure(r *http.Request, resp *http.Response, level slog.Level, msg string) {
	p.logger.LogAttrs(r.Context(), level, msg,
		slog.String("upstream", p.target.Name),
		slog.Int("upstream_status", resp.StatusCode),
		slog.String("request_id", errorsjson.RequestIDFrom(r.Context())))
}

// inputMessage returns the message of an upstream's input-validation answer:
// its JSON "error" or "message" string if that is short and plain (at most 200
// printable characters, no line breaks), otherwise [MsgInvalidInput]. Nothing
// else of the body is ever used.
func inputMessage(body io.Reader) string {
	var v struct {
		Error   any `json:"error"`
		Message any `json:"message"`
	}
	if err := json.NewDecoder(io.LimitReader(body, maxErrorBody)).Decode(&v); err != nil {
		return MsgInvalidInput
	}
	for _, m := range []any{v.Error, v.Message} {
		if s, ok := m.(string); ok && plain(s) {
			return s
		}
	}
	return MsgInvalidInput
}

func plain(s string) bool {
	if s == "" || len(s) > maxMessageLen {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// drain reads what is left of a body, up to a bound, so that its connection
// can be reused; a larger body's connection is closed instead.
func drain(body io.Reader) {
	io.CopyN(io.Discard, body, maxErrorBody)
}
