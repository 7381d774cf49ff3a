// This file holds the key middleware: where a request's key is read from
// (extractKey), its check against the Format, the Throttle and the Store, and
// the 401, 429 and 503 it answers.

package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-go/gatehouse/errorsjson"
	"github.com/gatehouse-go/gatehouse/internal/found"
	"github.com/gatehouse-go/gatehouse/internal/nilhandler"
)

// Errors of extractKey. The key middleware answers both with 401
// "Invalid or inactive API key".
var (
	// errAmbiguousKey reports a request carrying two different keys, one in
	// Authorization and one in X-API-Key.
	errAmbiguousKey = errors.New("auth: different API keys in Authorization and X-API-Key")
	// errRepeatedHeader reports an Authorization or X-API-Key header sent more
	// than once.
	errRepeatedHeader = errors.New("auth: API key header repeated")
)

// extractKey returns the API key a request carries in h, or "" if it carries
// none. The two places are equivalent:
//
//	Authorization: Bearer ila_…   (the scheme is case-insensitive)
//	X-API-Key: ila_…
//
// Values are trimmed of surrounding spaces and tabs; an empty value is no key.
// An Authorization header of another scheme (Basic, say) is no key, so that a
// request with only "Authorization: Basic …" gets 401 "No API key provided".
// The same key in both headers is fine; two different ones are refused with
// errAmbiguousKey rather than one chosen silently. Either header sent twice is
// refused with errRepeatedHeader, even with equal values. extractKey does not
// check the key's format (see [Format.Check]) and does not allocate.
func extractKey(h http.Header) (string, error) {
	authz := h["Authorization"]
	apiKey := h["X-Api-Key"] // the canonical form of X-API-Key
	if len(authz) > 1 || len(apiKey) > 1 {
		return "", errRepeatedHeader
	}
	var fromAuthz, fromAPIKey string
	if len(authz) == 1 {
		fromAuthz = bearer(authz[0])
	}
	if len(apiKey) == 1 {
		fromAPIKey = strings.Trim(apiKey[0], " \t")
	}
	switch {
	case fromAuthz == "":
		return fromAPIKey, nil
	case fromAPIKey == "" || fromAPIKey == fromAuthz:
		return fromAuthz, nil
	}
	return "", errAmbiguousKey
}

// bearer returns the credentials of a Bearer authorization value, or "".
func bearer(v string) string {
	v = strings.Trim(v, " \t")
	const scheme = "bearer"
	if len(v) <= len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) || (v[len(scheme)] != ' ' && v[len(scheme)] != '\t') {
		return ""
	}
	return strings.Trim(v[len(scheme):], " \t")
}

// Config configures [Middleware]. Store is required; every other zero value
// is a default. [Config.Validate] says whether a Config can work; Middleware
// refuses one that cannot.
type Config struct {
	// Store holds the keys. Required: without one no key could ever pass.
	Store Store
	// Format is the keys' format; the zero value is the ila_ prefix.
	Format Format
	// Now is the clock of the expiry check (nil: time.Now).
	Now func() time.Time
	// Logger receives store failures (error) and refused known keys (debug,
	// with the key's ID) (nil: slog.Default()). No line carries a key.
	Logger *slog.Logger
	// Throttle, if set, limits failed key attempts per client address: see
	// [Throttle]. Nil (the default) throttles nothing.
	Throttle *Throttle
	// Observe, if set, is told the outcome of each request's key check (see
	// [Event]); it must be quick and safe for concurrent use. Nil reports
	// nothing.
	Observe func(Event)
}

// Middleware returns middleware that lets a request through only with a valid
// API key, and stores the key's record in the request's context for
// [KeyFrom]. The key is read from either of
//
//	Authorization: Bearer ila_…   (the scheme is case-insensitive)
//	X-API-Key: ila_…
//
// trimmed of spaces and tabs; an Authorization of another scheme (Basic, say)
// is no key. The same key in both headers is fine; two different keys, or
// either header sent twice, are refused as an invalid key rather than one
// chosen silently. It answers, through errorsjson.Write (every 401 with
// WWW-Authenticate: Bearer):
//
//   - 401 "No API key provided" when the request carries no key;
//   - 401 "Invalid or inactive API key" when it carries a key that is
//     ambiguous or repeated, not of cfg.Format or with a wrong checksum (no store
//     is asked), unknown to cfg.Store, disabled or expired: the same answer for
//     each, so that it does not tell a guesser which keys exist;
//   - 429 "Rate limit exceeded", with Retry-After, when cfg.Throttle is set
//     and the client's address has spent its failed attempts (see [Throttle]);
//   - 503 "Upstream service temporarily unavailable", with Retry-After, when
//     cfg.Store cannot answer: it fails with an error other than
//     ErrKeyNotFound (ErrStoreUnavailable when its database is down or slow),
//     or returns neither key nor error. The key may be valid, so it is not
//     told otherwise; the error is logged at error level and reported as
//     KeyStoreUnavailable or KeyStoreError.
//
// A request whose own context ends while its key is looked up (its caller went
// away) gets the same 503, which nobody reads; it is neither logged nor
// reported as a store failure (KeyAbandoned), since the store is not to blame,
// as the upstream proxy treats a caller that goes away.
//
// It panics with cfg.Validate's error if cfg cannot work, when the middleware
// is built rather than on every request (docs/adopting.md says why), and
// likewise, as http.Handle does, if the handler it is given is nil.
func Middleware(cfg Config) func(http.Handler) http.Handler {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	c := &keyCheck{cfg: cfg, now: cfg.Now, logger: cfg.Logger}
	if c.now == nil {
		c.now = time.Now
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return func(next http.Handler) http.Handler {
		nilhandler.Refuse("auth: Middleware", next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if k := c.check(w, r); k != nil {
				next.ServeHTTP(w, requestWithKey(r, k))
			}
		})
	}
}

// errNoStore refuses a Config without a Store.
var errNoStore = errors.New("auth: Config.Store is nil: no key could ever pass")

// Validate returns an error if c cannot work: it has no Store.
func (c Config) Validate() error {
	if c.Store == nil {
		return errNoStore
	}
	return nil
}

// keyCheck is [Middleware]'s check, with its defaults filled in.
type keyCheck struct {
	cfg    Config
	now    func() time.Time
	logger *slog.Logger
}

// check returns the record of r's key if it is valid, and otherwise answers r
// itself and returns nil. It returns before the next handler runs, so that
// its locals are not on the stack under every handler after it: a deeper
// stack makes each connection's goroutine grow its stack again after every
// garbage collection that shrank it.
func (c *keyCheck) check(w http.ResponseWriter, r *http.Request) *Key {
	plaintext, err := extractKey(r.Header)
	if err == nil && plaintext == "" {
		observe(c.cfg.Observe, KeyMissing)
		unauthorized(w, r, errorsjson.MsgNoKey)
		return nil
	}
	formatOK := err == nil && c.cfg.Format.Check(plaintext) == nil
	var hash [32]byte
	if formatOK {
		hash = HashKey(plaintext)
	}
	at, wait := c.cfg.Throttle.begin(r, hash, formatOK)
	if wait > 0 {
		observe(c.cfg.Observe, KeyThrottled)
		errorsjson.SetRetryAfter(w.Header(), wait)
		errorsjson.Write(w, r, http.StatusTooManyRequests, errorsjson.MsgRateLimited)
		return nil
	}
	if !formatOK {
		c.refuse(w, r, at)
		return nil
	}
	k, err := c.cfg.Store.Lookup(r.Context(), hash)
	if err == nil && k == nil {
		err = errNoKeyNoError
	}
	switch {
	case errors.Is(err, ErrKeyNotFound):
		c.refuse(w, r, at)
		return nil
	case err != nil:
		at.storeFailed(r.Context())
		c.storeFailed(w, r, err)
		return nil
	}
	var now time.Time // the clock is read only for a key that can expire
	if !k.ExpiresAt.IsZero() {
		now = c.now()
	}
	if err := k.Err(now); err != nil {
		c.logger.LogAttrs(r.Context(), slog.LevelDebug, "auth: key refused",
			slog.String("key_id", k.ID), slog.String("reason", err.Error()))
		c.refuse(w, r, at)
		return nil
	}
	at.passed()
	observe(c.cfg.Observe, KeyValid)
	return k
}

// refuse answers r 401 "Invalid or inactive API key", its key having failed,
// and ends its throttle attempt as failed.
func (c *keyCheck) refuse(w http.ResponseWriter, r *http.Request, at attempt) {
	at.failed()
	observe(c.cfg.Observe, KeyInvalid)
	unauthorized(w, r, errorsjson.MsgInvalidKey)
}

// errNoKeyNoError stands for the answer of a broken store, which returned
// neither key nor error: it cannot answer, as a store that fails.
var errNoKeyNoError = errors.New("auth: store returned no key and no error")

// storeFailed answers r, whose key cfg.Store could not look up (err), 503 with
// Retry-After: the key may be valid. It logs and reports the failure, unless
// r's caller went away first: then err is the caller's, not the store's, and
// the answer, which nobody reads, is all there is.
func (c *keyCheck) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	result, msg := KeyStoreError, "auth: key lookup failed"
	switch {
	case r.Context().Err() != nil:
		result, msg = KeyAbandoned, ""
	case errors.Is(err, ErrStoreUnavailable):
		result, msg = KeyStoreUnavailable, "auth: key store unavailable"
	}
	observe(c.cfg.Observe, result)
	if msg != "" {
		c.logger.LogAttrs(r.Context(), slog.LevelError, msg,
			slog.String("error", err.Error()),
			slog.String("request_id", errorsjson.RequestIDFrom(r.Context())))
	}
	errorsjson.SetRetryAfter(w.Header(), storeRetryAfter)
	errorsjson.Write(w, r, http.StatusServiceUnavailable, errorsjson.MsgUpstreamUnavailable)
}

// storeRetryAfter is the Retry-After of a 503 for a store that cannot answer:
// the first step of the back-off docs/contract.md asks of callers on 503.
const storeRetryAfter = time.Second

// unauthorized answers 401 with msg, and the WWW-Authenticate challenge that
// RFC 9110 requires of a 401.
func unauthorized(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Set("WWW-Authenticate", "Bearer")
	errorsjson.Write(w, r, http.StatusUnauthorized, msg)
}

// KeyFrom returns the key record [Middleware] stored in ctx. The record is
// shared: do not modify it.
func KeyFrom(ctx context.Context) (*Key, bool) {
	k, ok := found.Key(ctx).(*Key)
	return k, ok && k != nil
}
