package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"

	"github.com/gatehouse-go/gatehouse/clientaddr"
	"github.com/gatehouse-go/gatehouse/errorsjson"
)

// Defaults of a [Target]'s zero fields.
const (
	DefaultDialTimeout           = 5 * time.Second
	DefaultResponseHeaderTimeout = 30 * time.Second
	DefaultTimeout               = 60 * time.Second
	DefaultRetryAfter            = 5 * time.Second
	DefaultMaxResponseBytes      = 64 << 20
)

// Messages of the answers the proxy writes besides errorsjson's (every one is
// in docs/contract.md).
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

// maxResponseHeaderBytes bounds an upstream answer's header on the proxy's own
// transport (net/http's default is 10 MB); a larger one is a failed call: 503.
const maxResponseHeaderBytes = 64 << 10

// Target is one product's upstream service.
type Target struct {
	// Name names the upstream in logs and in /health (typically the product slug).
	Name string
	// URL is where requests are sent, with the caller's method and body. Its
	// own query is kept as it is; of the caller's query only "format" and the
	// parameters of AllowedQuery are added, and never one that URL sets.
	URL string
	// AllowedQuery names the caller's query parameters passed on besides
	// "format" (nil: none).
	AllowedQuery []string
	// ClientAddr gives the caller's address that the upstream receives in
	// X-Forwarded-For (nil: the Of method of the zero clientaddr.Source, the
	// connection's address). Behind a proxy, plug in the Of method of the
	// clientaddr.Source the rest of the gateway uses; a zero Addr sends no
	// X-Forwarded-For.
	ClientAddr func(*http.Request) netip.Addr
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
	// MaxResponseBytes bounds a success's body (0: 64 MiB): a longer announced
	// Content-Length is a 502, and a body that grows past it while streaming
	// is cut off, which the caller sees as a broken response.
	MaxResponseBytes int64
	// Breaker configures the circuit breaker.
	Breaker BreakerConfig

	// Transport makes the calls (nil: a transport of the proxy's own with the
	// timeouts above and a 64 KiB bound on an answer's header). Set it to share
	// connections or to test; the bounds of its own are then yours to set.
	Transport http.RoundTripper
	// Logger receives the upstream's failures (nil: slog.Default()).
	Logger *slog.Logger
	// Now is the breaker's clock (nil: time.Now).
	Now func() time.Time
	// Observe, if set, is told each call (an [Event] of kind Call) and each
	// change of the breaker's state (kind Breaker); it must be quick, safe for
	// concurrent use, and must not call the Proxy. Nil reports nothing.
	Observe func(Event)
}

// Proxy is an http.Handler that forwards requests to one [Target] and
// translates its failures into docs/contract.md's answers: the upstream's
// 401/403 become 502, its unreachability, timeouts, 429 and 502/503/504 a 503
// with Retry-After, its other 5xx a 500, and only a success and the short
// message of its own 400/422 reach the caller, never its error body. What
// crosses, both ways, is an allow-list: the caller's key, cookies and claimed
// addresses stay behind, and so do the upstream's cookies, banners and
// redirects. A success is streamed, and one that breaks off aborts the
// caller's connection, so that it reads as broken, never as a short success.
// docs/upstream.md has every row and the circuit breaker; docs/forwarding.md
// every header.
//
// A caller that goes away cancels the call, which then counts neither as a
// success nor as a failure of the upstream for the breaker.
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
	// buffers holds the 32 KiB buffers (*[]byte) answers are copied through,
	// reused rather than made a call: docs/performance.md has what that buys.
	buffers sync.Pool
}

// NewProxy returns a Proxy for t. An unparsable or non-HTTP URL is an error,
// which does not repeat the URL: it may hold a password.
func NewProxy(t Target) (*Proxy, error) {
	u, err := url.Parse(t.URL)
	if err != nil {
		return nil, fmt.Errorf("upstream: URL not parsable: %s", parseReason(err))
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
	if t.MaxResponseBytes <= 0 {
		t.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if t.ClientAddr == nil {
		t.ClientAddr = clientaddr.Source{}.Of
	}
	p := &Proxy{target: t, url: u, transport: t.Transport, breaker: newBreaker(t.Breaker), logger: t.Logger, now: t.Now}
	if t.Observe != nil {
		p.breaker.changed = func(state string) { t.Observe(Event{Kind: Breaker, Name: t.Name, State: state}) }
	}
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
		Proxy:                  nil, // the upstream is the administrator's: no environment proxy in between
		DialContext:            (&net.Dialer{Timeout: t.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:    t.DialTimeout,
		ResponseHeaderTimeout:  t.ResponseHeaderTimeout,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    100,
		IdleConnTimeout:        90 * time.Second,
		ForceAttemptHTTP2:      true,
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

// ServeHTTP forwards r to the upstream and writes its answer or its translation.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := p.now()
	ok, probe, wait := p.breaker.allow(start)
	if !ok {
		if p.target.Observe != nil {
			p.target.Observe(Event{Kind: Call, Name: p.target.Name, Class: "open"})
		}
		p.unavailable(w, r, wait)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), p.target.Timeout)
	defer cancel()

	resp, err := p.transport.RoundTrip(p.outgoing(ctx, r))
	p.observeCall(r, resp, err, start)
	if err != nil {
		if r.Context().Err() != nil {
			// The caller went away: this says nothing of the upstream. Nobody
			// reads this answer.
			p.breaker.done(probe, abandoned, p.now())
			p.unavailable(w, r, p.target.RetryAfter)
			return
		}
		p.breaker.done(probe, failed, p.now())
		p.logger.LogAttrs(r.Context(), slog.LevelWarn, "upstream unreachable",
			slog.String("upstream", p.target.Name),
			slog.String("request_id", errorsjson.RequestIDFrom(r.Context())),
			slog.String("reason", reason(err)))
		p.unavailable(w, r, p.target.RetryAfter)
		return
	}
	defer resp.Body.Close()

	switch status := resp.StatusCode; {
	case status >= 200 && status < 300:
		if resp.ContentLength > p.target.MaxResponseBytes {
			p.breaker.done(probe, succeeded, p.now()) // it answers: a configuration problem, not an outage
			p.logFailure(r, resp, slog.LevelError, "upstream announced a body over MaxResponseBytes")
			errorsjson.Write(w, r, http.StatusBadGateway, MsgUpstreamUnexpected)
			return
		}
		o := p.stream(w, r, resp)
		p.breaker.done(probe, o, p.now())
		if o != succeeded {
			// The status is sent: abort the connection so that the caller sees
			// a broken transfer, not a short success.
			panic(http.ErrAbortHandler)
		}
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		p.breaker.done(probe, succeeded, p.now()) // it answers: a configuration problem, not an outage
		p.logFailure(r, resp, slog.LevelError, "upstream refused the gateway's credentials")
		drain(resp.Body)
		errorsjson.Write(w, r, http.StatusBadGateway, errorsjson.MsgUpstreamAuth)
	case status == http.StatusTooManyRequests || status == http.StatusBadGateway ||
		status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout:
		p.breaker.done(probe, failed, p.now())
		p.logFailure(r, resp, slog.LevelWarn, "upstream unavailable")
		retry := p.target.RetryAfter
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), p.now()); ok {
			retry = d
		}
		drain(resp.Body)
		p.unavailable(w, r, retry)
	case status >= 500:
		p.breaker.done(probe, failed, p.now())
		p.logFailure(r, resp, slog.LevelError, "upstream failed")
		drain(resp.Body)
		errorsjson.Write(w, r, http.StatusInternalServerError, errorsjson.MsgInternal)
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		p.breaker.done(probe, succeeded, p.now())
		errorsjson.Write(w, r, status, inputMessage(resp.Body))
		drain(resp.Body)
	default:
		// A redirect (never followed: RoundTrip does not follow, and its
		// Location, often an internal address, is neither relayed nor logged),
		// an informational status, or an unexpected 4xx.
		p.breaker.done(probe, succeeded, p.now())
		p.logFailure(r, resp, slog.LevelError, "upstream answered an unexpected status")
		drain(resp.Body)
		errorsjson.Write(w, r, http.StatusBadGateway, MsgUpstreamUnexpected)
	}
}

// outgoing builds the upstream request from the caller's, by the forwarding
// policy of forward.go.
func (p *Proxy) outgoing(ctx context.Context, r *http.Request) *http.Request {
	u := *p.url
	u.RawQuery = outgoingQuery(p.url, r.URL, p.target.AllowedQuery)
	out := &http.Request{
		Method:        r.Method,
		URL:           &u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        make(http.Header, len(passRequest)+len(p.target.Header)+2),
		Body:          r.Body,
		GetBody:       r.GetBody,
		ContentLength: r.ContentLength,
		Host:          u.Host,
	}
	if out.Body == nil || out.ContentLength == 0 && r.Body == http.NoBody {
		out.Body = http.NoBody
	}
	copyEndToEnd(out.Header, r.Header, passRequest, keepRequest)
	for k, vs := range p.target.Header {
		out.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	if a := p.target.ClientAddr(r); a.IsValid() {
		out.Header.Set("X-Forwarded-For", a.String())
	}
	if id := errorsjson.RequestIDFrom(r.Context()); id != "" {
		out.Header.Set(errorsjson.HeaderRequestID, id)
	}
	return out.WithContext(ctx)
}

// stream copies a success to w as it arrives and returns what the call says
// of the upstream: succeeded if the whole body came, failed if it broke off
// or grew past MaxResponseBytes, abandoned if the caller went away.
func (p *Proxy) stream(w http.ResponseWriter, r *http.Request, resp *http.Response) outcome {
	h := w.Header()
	copyEndToEnd(h, resp.Header, passResponse, nil)
	if resp.ContentLength >= 0 && resp.StatusCode != http.StatusNoContent {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
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
	// One byte over the bound tells a body at the bound from a longer one.
	body := io.LimitReader(resp.Body, p.target.MaxResponseBytes+1)
	var written int64
	for {
		n, err := body.Read(buf)
		if written += int64(n); written > p.target.MaxResponseBytes {
			p.logBroken(r, "upstream body over MaxResponseBytes", "")
			return failed
		}
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return abandoned // the caller went away; the deferred cancel stops the upstream
			}
			if flush {
				rc.Flush()
			}
		}
		if err == io.EOF {
			return succeeded
		}
		if err != nil {
			if r.Context().Err() != nil {
				return abandoned
			}
			p.logBroken(r, "upstream body broke off", reason(err))
			return failed
		}
	}
}

func (p *Proxy) logBroken(r *http.Request, msg, why string) {
	attrs := []slog.Attr{
		slog.String("upstream", p.target.Name),
		slog.String("request_id", errorsjson.RequestIDFrom(r.Context())),
	}
	if why != "" {
		attrs = append(attrs, slog.String("reason", why))
	}
	p.logger.LogAttrs(r.Context(), slog.LevelWarn, msg, attrs...)
}

// unavailable answers 503 with a Retry-After of wait.
func (p *Proxy) unavailable(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	errorsjson.SetRetryAfter(w.Header(), wait)
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

// reason says why a call failed, for the log: the kind of failure only, since
// a transport's error text carries the upstream's internal address.
func reason(err error) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed early"
	case errors.As(err, &dnsErr):
		return "host not found"
	case strings.Contains(err.Error(), "server response headers exceeded"):
		// net/http has no sentinel for its MaxResponseHeaderBytes.
		return "answer header too large"
	}
	return "other"
}

// drain reads what is left of a body, up to a bound, so that its connection
// can be reused; a larger body's connection is closed instead.
func drain(body io.Reader) {
	io.CopyN(io.Discard, body, maxErrorBody)
}

// parseReason says why url.Parse refused a URL without quoting the URL, whose
// user info may hold a password, nor a bad escape, which may be in it.
func parseReason(err error) string {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return "invalid URL"
	}
	var esc url.EscapeError
	if errors.As(ue.Err, &esc) {
		return "invalid URL escape"
	}
	return ue.Err.Error()
}
