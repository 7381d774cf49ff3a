package gatehouse

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/errorsjson"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// Config configures the stack. Keys, Products and Product are required; every
// other zero value is a sane default.
type Config struct {
	// Keys looks API keys up by their SHA-256 hash.
	Keys auth.Store
	// KeyFormat is the keys' format; the zero value is the ila_ prefix.
	KeyFormat auth.Format
	// Products holds the products callers can reach by slug.
	Products auth.Catalog
	// FailedKeyThrottle, if set, limits failed key attempts per client
	// address (429 with Retry-After once spent) without slowing valid keys;
	// see auth.Throttle. Nil, the default, throttles nothing.
	FailedKeyThrottle *auth.Throttle

	// Limits are the limits of a key whose record sets none
	// (zero: 60 per minute, 10,000 per day).
	Limits ratelimit.Limits
	// RateLimitStore keeps the keys' buckets; nil keeps them in this process's
	// memory. Give every replica the same shared store (ratelimit/redisstore) to
	// hold a key's limits across replicas.
	RateLimitStore ratelimit.Store
	// RateLimitStoreError decides what happens when RateLimitStore fails; see
	// ratelimit.Config.OnStoreError. Nil keeps the ratelimit package's default.
	RateLimitStoreError func(w http.ResponseWriter, r *http.Request, err error) bool
	// DraftRateLimitHeaders adds the IETF draft RateLimit-Policy and RateLimit
	// headers to the X-RateLimit-* ones.
	DraftRateLimitHeaders bool

	// MaxBodyBytes bounds a request body (zero: 1 MiB); a larger body gets 413.
	MaxBodyBytes int64

	// Product answers a request that passed every check: the product's backend,
	// typically an [Upstreams]. auth.KeyFrom, auth.ProductFrom and
	// auth.InputsFrom give it what the checks found; the body is still readable.
	Product http.Handler
	// Health answers GET /health, without a key (nil: 200 {"status":"ok"}).
	Health http.Handler

	// Logger receives one line per request and the errors of every layer
	// (nil: slog.Default()). Lines carry the key's id, never the key.
	Logger *slog.Logger
	// Now is the clock of the key expiry and rate-limit checks (nil: time.Now).
	Now func() time.Time
}

func (c Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// Middleware returns the per-request checks of the contract, in its order, as
// one middleware for a product route of any router:
//
//	key (401) → rate limit (429) → product (404, 403) → inputs (400, 413) → next
//
// The product slug is the route's {productSlug} path value, r.PathValue("productSlug"):
// net/http's ServeMux patterns fill it, and so does chi 5.1 and later for its URL
// parameters; with another router, set it with r.SetPathValue in a middleware
// in front.
//
// Middleware sets no X-Request-ID: the X-Request-ID header and the request_id
// of its error bodies come from [errorsjson.RequestID], so wrap the router in
// it (errorsjson.RequestID(router)), as [New] does; without it, error bodies
// carry no request_id. Use [New] for a whole
// server with /health, request ids, logging and panic recovery around it.
func Middleware(cfg Config) func(http.Handler) http.Handler {
	checkKey := auth.Middleware(auth.Config{
		Store:    cfg.Keys,
		Format:   cfg.KeyFormat,
		Now:      cfg.Now,
		Logger:   cfg.Logger,
		Throttle: cfg.FailedKeyThrottle,
	})
	limit := ratelimit.Middleware(ratelimit.Config{
		Limits:       cfg.Limits,
		Key:          keyLimits,
		Store:        cfg.RateLimitStore,
		Now:          cfg.Now,
		DraftHeaders: cfg.DraftRateLimitHeaders,
		OnStoreError: cfg.RateLimitStoreError,
		Logger:       cfg.Logger,
	})
	checkProduct := auth.Products(auth.ProductConfig{Catalog: cfg.Products})
	checkInputs := auth.Inputs(auth.InputConfig{MaxBytes: cfg.MaxBodyBytes})
	return func(next http.Handler) http.Handler {
		return checkKey(noteKey(limit(checkProduct(noteProduct(checkInputs(next))))))
	}
}

// keyLimits is the rate limiter's key function: the authenticated key's LimitID and
// the limits of its record.
func keyLimits(r *http.Request) (string, ratelimit.Limits, bool) {
	k, ok := auth.KeyFrom(r.Context())
	if !ok {
		return "", ratelimit.Limits{}, false
	}
	return k.LimitID(), ratelimit.Limits{PerMinute: k.PerMinute, PerDay: k.PerDay}, true
}

// New returns a whole gateway handler:
//
//	GET  /health               cfg.Health, no key needed
//	POST /api/{productSlug}    Middleware(cfg) in front of cfg.Product
//
// wrapped, outermost first, in a request id (X-Request-ID), one structured log
// line per request, panic recovery (500) and the rewrite of any plain-text error
// into JSON, so that an unknown route (404) or a wrong method (405, with Allow)
// gets the same JSON shape as every other error.
func New(cfg Config) http.Handler {
	health := cfg.Health
	if health == nil {
		health = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"status":"ok"}` + "\n"))
		})
	}
	mux := http.NewServeMux()
	mux.Handle("GET /health", health)
	mux.Handle("POST /api/{productSlug}", Middleware(cfg)(cfg.Product))

	logger := cfg.logger()
	return errorsjson.RequestID(
		logRequests(logger,
			errorsjson.Recover(logger)(
				errorsjson.Rewrite(mux))))
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

func noteKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l, ok := r.Context().Value(requestLogKey{}).(*requestLog); ok {
			if k, ok := auth.KeyFrom(r.Context()); ok {
				l.keyID = k.ID
			}
		}
		next.ServeHTTP(w, r)
	})
}

func noteProduct(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l, ok := r.Context().Value(requestLogKey{}).(*requestLog); ok {
			if p, ok := auth.ProductFrom(r.Context()); ok {
				l.product = p.Slug
			}
		}
		next.ServeHTTP(w, r)
	})
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

// Unwrap lets http.ResponseController reach the connection (Flush for streams).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush keeps streaming working for code that type-asserts http.Flusher.
func (s *statusWriter) Flush() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	http.NewResponseController(s.ResponseWriter).Flush()
}

// logRequests writes one info line per request: request id, method, path, key
// id, product, status, bytes and duration. A request whose handler aborted
// (http.ErrAbortHandler) is logged with status 0 before the panic goes on.
// While the logger does not take info lines, a request costs it nothing more
// than asking.
func logRequests(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !logger.Enabled(r.Context(), slog.LevelInfo) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rl := &requestLog{}
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("request_id", errorsjson.RequestIDFrom(r.Context())),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("key_id", rl.keyID),
				slog.String("product", rl.product),
				slog.Int("status", sw.status),
				slog.Int64("bytes", sw.bytes),
				slog.Duration("duration", time.Since(start)),
			)
		}()
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), requestLogKey{}, rl)))
	})
}
