package gatehouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/errorsjson"
	"github.com/gatehouse-go/gatehouse/inputs"
	"github.com/gatehouse-go/gatehouse/internal/nilhandler"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// Config configures the stack: one field per layer, each the layer's own
// config type, and the few settings that belong to the whole.
//
// Required: Auth.Store, Products.Catalog and, for New, Product. [New] and
// [Middleware] refuse a Config that cannot work with an error when the
// handler is built, never by answering requests: every reason at once, each
// a layer's own Validate error (the one its constructor panics with) after
// the field that holds it, as "gatehouse: Config.Auth: auth: Config.Store is
// nil: no key could ever pass" (docs/adopting.md has the rule). Logger and
// Now are defaulted once, then given to every layer whose own Logger or Now
// is unset. Every other zero value is the layer's own default.
type Config struct {
	// Auth configures the key check (401); see auth.Config. Auth.Store is
	// required.
	Auth auth.Config
	// RateLimit configures the per-key limits (429); see ratelimit.Config.
	// A nil RateLimit.Key is, here and only here, the authenticated key's own
	// allowance: the bucket of its record's LimitID, with its record's limits
	// (RateLimit.Limits for a record that sets none) and Windows, its Owner's
	// allowance (see Owners), and the cost of the request's product (see
	// auth.Product.QueryCost; 1 for a product the catalog does not serve,
	// which the product check then answers 404). A request without an
	// authenticated key never reaches the limiter.
	RateLimit ratelimit.Config
	// Owners returns the allowance that all the keys of owner (auth.Key.Owner)
	// share, spent by each request on top of the key's own limits, in one
	// decision: 100,000 requests a day for all of acme's keys together, say.
	// Nil or empty means owner has none, and its keys have only their own
	// limits; so does a nil Owners. It is called on every request of a key
	// with an owner: return a slice kept for the purpose (it must not be
	// changed afterwards), not a new one; ctx is the request's. Used only by
	// the default RateLimit.Key.
	Owners func(ctx context.Context, owner string) []ratelimit.Rate
	// Products configures the product check (404, 403); see
	// auth.ProductConfig. Products.Catalog is required.
	Products auth.ProductConfig
	// Inputs configures the inputs check (400, 413, 415); see inputs.Config.
	Inputs inputs.Config
	// Usage, if set, is told every request the rate limit charged, with its
	// key, product, status and cost, after the answer; see [UsageRecorder].
	Usage UsageRecorder

	// Product answers a request that passed every check: the product's backend,
	// typically an [Upstreams]. auth.KeyFrom, auth.ProductFrom and
	// inputs.From give it what the checks found; the body is still
	// readable. Required by [New]; [Middleware] wraps the handler it is given
	// instead.
	Product http.Handler
	// Health answers GET /health of [New], without a key (nil: 200
	// {"status":"ok"}).
	Health http.Handler
	// MaxHeaderBytes bounds, for [New], a request's request line and header
	// fields: past it, 431 {"error":"Request header fields too large"}
	// (zero: [DefaultMaxHeaderBytes]; negative: no bound). Serve New with an
	// http.Server whose own MaxHeaderBytes is larger (net/http's default,
	// 1 MiB, is): past the server's, net/http answers 431 itself in
	// text/plain before any handler runs. See errorsjson.MaxHeaderBytes.
	MaxHeaderBytes int

	// Logger receives one line per request (from [New]) and the errors of every
	// layer whose own Logger is unset (nil: slog.Default()). Lines carry the
	// key's id, never the key.
	Logger *slog.Logger
	// Now is the clock of every layer whose own Now is unset: the key expiry
	// and the rate limits (nil: time.Now).
	Now func() time.Time
	// Observe is told each request [New] answers (its product, status and
	// duration), from the same writer wrapper as the log line; nil reports
	// nothing. It is the root's own, as every layer has its own Observe in
	// its config (Auth.Observe, RateLimit.Observe; upstream.Target,
	// Transport and HealthConfig for the upstreams): each is set where it is
	// used, and none fills another. A stack built with [Middleware] reports
	// its requests with [ObserveRequests].
	Observe func(RequestEvent)
}

// DefaultMaxHeaderBytes is [Config.MaxHeaderBytes]'s default: 64 KiB of
// request line and headers is plenty for a key, a request id and a trace
// context, and bounds what one request makes every layer read.
const DefaultMaxHeaderBytes = 64 << 10

// withDefaults returns c with its shared defaults filled in and passed down:
// the one place where a layer's unset Logger or Now becomes the root's, and a
// nil rate-limit key the authenticated key's allowance.
func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Auth.Logger == nil {
		c.Auth.Logger = c.Logger
	}
	if c.Auth.Now == nil {
		c.Auth.Now = c.Now
	}
	if c.RateLimit.Logger == nil {
		c.RateLimit.Logger = c.Logger
	}
	if c.RateLimit.Now == nil {
		c.RateLimit.Now = c.Now
	}
	if c.RateLimit.Key == nil {
		c.RateLimit.Key = c.keyCharge
	}
	if c.Products.Logger == nil {
		c.Products.Logger = c.Logger
	}
	if c.Health == nil {
		c.Health = http.HandlerFunc(okHealth)
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return c
}

// errNoProduct refuses, for New, a Config without a Product handler.
var errNoProduct = errors.New("gatehouse: Config.Product is nil: nothing would answer a request that passed")

// validate returns every reason c, with its defaults, cannot work as the
// checks of [Middleware] (and as [New] if whole), joined; nil if it can. A
// layer's reason is the error of its config's own Validate, the one its
// constructor would panic with, after the field that holds that config.
func (c Config) validate(whole bool) error {
	var errs []error
	for _, l := range []struct {
		field string
		err   error
	}{
		{"Auth", c.Auth.Validate()},
		{"RateLimit", c.RateLimit.Validate()},
		{"Products", c.Products.Validate()},
	} {
		if l.err != nil {
			errs = append(errs, fmt.Errorf("gatehouse: Config.%s: %w", l.field, l.err))
		}
	}
	if whole && c.Product == nil {
		errs = append(errs, errNoProduct)
	}
	return errors.Join(errs...)
}

// okHealth is the default health handler: 200 {"status":"ok"}.
func okHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// Middleware returns the per-request checks of docs/contract.md, in the order
// of docs/checks.md, as one middleware for a product route of any router, in
// front of the handler it is given:
//
//	key (401) → rate limit (429) → product (404, 403) → inputs (400, 413) → next
//
// It returns an error, and no middleware, if cfg cannot work (see [Config]);
// cfg.Product, cfg.Health and cfg.MaxHeaderBytes are [New]'s and not used
// here. Like http.Handle, the middleware panics if the handler it is given
// is nil.
//
// The product slug is the route's {productSlug} path value, r.PathValue("productSlug"),
// unless cfg.Products.Slug says otherwise: net/http's ServeMux patterns fill
// it, and so does chi (5.0.12 and later) once a route has matched, which is
// after the middleware of a r.Route group has run; for such a group, or
// gorilla/mux (mux.Vars), set cfg.Products.Slug (docs/adopting.md shows
// both). A request that reaches the product check with no slug gets 500 and
// a log line naming the fix: the routing is the operator's, not the caller's.
//
// Middleware sets no X-Request-ID: the X-Request-ID header and the request_id
// of its error bodies come from [errorsjson.RequestID], so wrap the router in
// it (errorsjson.RequestID(router)), as [New] does; without it, error bodies
// carry no request_id. Use [New] for a whole server with /health, request
// ids, logging and panic recovery around it.
func Middleware(cfg Config) (func(http.Handler) http.Handler, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(false); err != nil {
		return nil, err
	}
	return cfg.middleware(), nil
}

// middleware builds the checks of a validated Config with its defaults.
func (c Config) middleware() func(http.Handler) http.Handler {
	checkKey := auth.Middleware(c.Auth)
	limit := ratelimit.Middleware(c.RateLimit)
	checkProduct := auth.Products(c.Products)
	checkInputs := inputs.Middleware(c.Inputs)
	return func(next http.Handler) http.Handler {
		nilhandler.Refuse("gatehouse: Middleware", next)
		return checkKey(note(keyID, limit(c.recordUsage(checkProduct(note(productSlug, checkInputs(next)))))))
	}
}

// keyCharge is the root's default rate-limit key (see Config.RateLimit): the
// authenticated key's LimitID, the limits and windows of its record, its
// owner's allowance, and the cost of the request's product. It runs before the
// product check, so it asks the catalog itself. For a key with no windows and
// no owner's allowance and a product of cost 1 it does not allocate (with a
// catalog that does not).
func (c Config) keyCharge(r *http.Request) (ratelimit.Charge, bool) {
	k, ok := auth.KeyFrom(r.Context())
	if !ok {
		return ratelimit.Charge{}, false
	}
	more := k.Windows
	if len(more) == 0 {
		more = nil // none of the key's own: RateLimit.Limits.More, as for PerMinute 0
	}
	ch := ratelimit.Charge{
		Key:    k.LimitID(),
		Limits: ratelimit.Limits{PerMinute: k.PerMinute, PerDay: k.PerDay, More: more},
		Cost:   c.cost(r),
	}
	if k.Owner != "" && c.Owners != nil {
		if own := c.Owners(r.Context(), k.Owner); len(own) > 0 {
			ch.Owner, ch.OwnerLimits = k.Owner, own
		}
	}
	return ch, true
}

// cost returns what r costs: its product's QueryCost, or 1 when the catalog
// does not serve the product (the product check answers it next) or fails.
func (c Config) cost(r *http.Request) int {
	slug := c.Products.SlugOf(r)
	if slug == "" || c.Products.Catalog == nil {
		return 1
	}
	p, err := c.Products.Catalog.Product(r.Context(), slug)
	if err != nil || p == nil || !p.Active {
		return 1
	}
	return p.QueryCost(r.URL.RawQuery)
}

// New returns a whole gateway handler:
//
//	GET  /health               cfg.Health, no key needed
//	POST /api/{productSlug}    Middleware(cfg) in front of cfg.Product
//
// wrapped, outermost first, in a request id (X-Request-ID), one structured log
// line per request (which also tells cfg.Observe), panic recovery (500), the
// header bound (431, see [Config].MaxHeaderBytes), 404 for a path
// not in its canonical form (/api/./quote, which ServeMux would redirect with
// an empty body: errorsjson.CanonicalPath) and the rewrite of any plain-text
// error into JSON, so that an unknown route (404) or a wrong method (405, with
// Allow) gets the same JSON shape as every other error. Every error New
// writes is JSON with an X-Request-ID; what net/http's server answers before
// any handler runs (a request it cannot parse, headers past its own
// MaxHeaderBytes) is not New's. It returns an error, and no handler, if cfg
// cannot work (see [Config]).
func New(cfg Config) (http.Handler, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(true); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /health", cfg.Health)
	mux.Handle("POST /api/{productSlug}", cfg.middleware()(cfg.Product))

	return errorsjson.RequestID(
		logRequests(cfg.Logger, cfg.Observe,
			errorsjson.Recover(cfg.Logger)(
				errorsjson.MaxHeaderBytes(cfg.MaxHeaderBytes)(
					errorsjson.CanonicalPath(
						errorsjson.Rewrite(mux)))))), nil
}

// Upstreams is the product handler that sends each request to its product's
// own handler (an upstream.Proxy, typically), chosen by the slug of the product
// that the checks put in the context. The set can be replaced at run time with
// Set, as a configuration reload does; requests in flight finish on the handler
// they started with.
//
// A product with no handler gets 503 "Upstream service temporarily unavailable"
// with Retry-After: 5:
// the caller did nothing wrong, the gateway is not configured for it yet. The zero
// value has no handlers. Upstreams is safe for concurrent use.
type Upstreams struct {
	handlers atomic.Pointer[map[string]http.Handler]
}

// noHandlerRetryAfter is the Retry-After, in seconds, of the 503 for a
// product with no handler: upstream.DefaultRetryAfter's 5 s.
const noHandlerRetryAfter = "5"

// Set replaces the handlers, keyed by product slug. The map must not be changed
// after the call.
func (u *Upstreams) Set(handlers map[string]http.Handler) {
	u.handlers.Store(&handlers)
}

// ServeHTTP implements http.Handler.
func (u *Upstreams) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var h http.Handler
	if p, ok := auth.ProductFrom(r.Context()); ok {
		if m := u.handlers.Load(); m != nil {
			h = (*m)[p.Slug]
		}
	}
	if h == nil {
		// Like every other 503 of the stack, it says when to try again: a
		// product configured without a handler waits for the next reload.
		w.Header().Set("Retry-After", noHandlerRetryAfter)
		errorsjson.Write(w, r, http.StatusServiceUnavailable, errorsjson.MsgUpstreamUnavailable)
		return
	}
	h.ServeHTTP(w, r)
}

// requestLog gathers what the layers below learn about a request, for the one
// log line written when it ends.
type requestLog struct {
	keyID   string
	product string
}

type requestLogKey struct{}

// note records in the request's log line, if there is one, what record
// finds in the context once the check in front of it has passed.
func note(record func(context.Context, *requestLog), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l, ok := r.Context().Value(requestLogKey{}).(*requestLog); ok {
			record(r.Context(), l)
		}
		next.ServeHTTP(w, r)
	})
}

// keyID notes the authenticated key's id.
func keyID(ctx context.Context, l *requestLog) {
	if k, ok := auth.KeyFrom(ctx); ok {
		l.keyID = k.ID
	}
}

// productSlug notes the product's slug.
func productSlug(ctx context.Context, l *requestLog) {
	if p, ok := auth.ProductFrom(ctx); ok {
		l.product = p.Slug
	}
}

// statusWriter records the status and size of a response for the log line.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusWriter) WriteHeader(status int) {
	if s.status == 0 && status >= 200 {
		s.status = status
	}
	s.ResponseWriter.WriteHeader(status)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(p)
	s.bytes += int64(n)
	return n, err
}

// answered returns the status of the answer once the handler is done:
// the one written, 200 for a handler that returned having written nothing
// (net/http then answers 200), or 0 for one that did not return (it
// panicked or aborted) before writing any.
func (s *statusWriter) answered(returned bool) int {
	if s.status == 0 && returned {
		return http.StatusOK
	}
	return s.status
}

// Unwrap lets http.ResponseController reach the connection (Flush for streams).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush keeps streaming working for code that type-asserts http.Flusher.
func (s *statusWriter) Flush() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	http.NewResponseController(s.ResponseWriter).Flush()
}

// RequestLog returns middleware that writes one info line a request to logger
// (nil: slog.Default()): the line [New] writes, for a stack built with
// [Middleware] in a router of your own, or for any handler. The fields are
// request_id, method, path, key_id, product, status, bytes and duration, and
// trace_id for a request with a valid W3C traceparent. Put it inside
// errorsjson.RequestID, so that the line carries the request's id, and
// around Middleware, so that it carries the key's id (never the key) and the
// product; a request the checks refused has the fields they did not reach
// empty. The line is a record handed to logger's handler, with no source
// position. While logger does not take info lines, a request costs it
// nothing more than asking.
func RequestLog(logger *slog.Logger) func(http.Handler) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	return func(next http.Handler) http.Handler {
		nilhandler.Refuse("gatehouse: RequestLog", next)
		return logRequests(logger, nil, next)
	}
}

// logRequests writes one info line per request (request id, method, path,
// key id, product, status, bytes, duration, and the trace id of a valid W3C
// traceparent) and tells report, if not nil, each request's [RequestEvent]:
// one writer wrapper and one clock reading serve both. A nil logger logs
// nothing. A request whose handler aborted (http.ErrAbortHandler) is logged
// and reported with status 0 before the panic goes on. While the logger does
// not take info lines and report is nil, a request costs it nothing more than
// asking.
func logRequests(logger *slog.Logger, report func(RequestEvent), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logging := logger != nil && logger.Enabled(r.Context(), slog.LevelInfo)
		if !logging && report == nil {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		var rl *requestLog
		if logging {
			rl = &requestLog{}
			r = r.WithContext(context.WithValue(r.Context(), requestLogKey{}, rl))
		}
		returned := false
		defer func() {
			end := time.Now()
			took := end.Sub(start)
			sw.status = sw.answered(returned)
			if report != nil {
				report(RequestEvent{Product: routeProduct(r), Status: sw.status, Duration: took})
			}
			if !logging {
				return
			}
			// The record is handed to the handler directly: Logger.LogAttrs
			// would also walk the stack for a source position, which would
			// name this function, never the caller's code.
			line := slog.NewRecord(end, slog.LevelInfo, "request", 0)
			line.AddAttrs(
				slog.String("request_id", errorsjson.RequestIDFrom(r.Context())),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("key_id", rl.keyID),
				slog.String("product", rl.product),
				slog.Int("status", sw.status),
				slog.Int64("bytes", sw.bytes),
				slog.Duration("duration", took),
			)
			if id, ok := TraceID(r.Header.Get("Traceparent")); ok {
				line.AddAttrs(slog.String("trace_id", id))
			}
			logger.Handler().Handle(r.Context(), line)
		}()
		next.ServeHTTP(sw, r)
		returned = true
	})
}
