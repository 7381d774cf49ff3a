package errorsjson

import (
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/gatehouse-go/gatehouse/internal/nilhandler"
)

// guard is the ResponseWriter that Recover and Rewrite put in front of the
// handler below them. One guard serves both when they are stacked, so the pair
// costs one allocation per request.
type guard struct {
	http.ResponseWriter
	r *http.Request

	wroteHeader bool
	rewrite     bool // set by Rewrite: plain-text errors become JSON
	swallow     bool // a rewritten error's original body is being dropped
}

// wrap returns w's guard, reusing the one an outer Recover or Rewrite made.
func wrap(w http.ResponseWriter, r *http.Request) (g *guard, created bool) {
	if g, ok := w.(*guard); ok {
		return g, false
	}
	return &guard{ResponseWriter: w, r: r}, true
}

func (g *guard) WriteHeader(status int) {
	if g.wroteHeader {
		// As net/http would, ignore a superfluous call; it must not undo a rewrite.
		return
	}
	if status >= 100 && status < 200 {
		g.ResponseWriter.WriteHeader(status)
		return
	}
	g.wroteHeader = true
	if g.rewrite && status >= 400 && !isJSON(g.Header().Get("Content-Type")) {
		g.swallow = true
		// Write calls our own WriteHeader through g.ResponseWriter, not g.
		Write(g.ResponseWriter, g.r, status, Message(status))
		return
	}
	g.ResponseWriter.WriteHeader(status)
}

func (g *guard) Write(p []byte) (int, error) {
	if !g.wroteHeader {
		g.WriteHeader(http.StatusOK)
	}
	if g.swallow {
		// Report the bytes as written: the handler's plain text was replaced, not lost
		// to an error it should act on.
		return len(p), nil
	}
	return g.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the real writer (Flush, Hijack,
// deadlines), as streaming proxies need.
func (g *guard) Unwrap() http.ResponseWriter { return g.ResponseWriter }

// Flush forwards to the underlying writer when it can flush, so code that
// type-asserts http.Flusher still streams.
func (g *guard) Flush() {
	if !g.wroteHeader {
		g.WriteHeader(http.StatusOK)
	}
	if g.swallow {
		return
	}
	http.NewResponseController(g.ResponseWriter).Flush()
}

func isJSON(contentType string) bool {
	mediaType, _, _ := strings.Cut(contentType, ";")
	mediaType = strings.ToLower(strings.TrimSpace(mediaType))
	return mediaType == "application/json" || strings.HasSuffix(mediaType, "+json")
}

// Rewrite is middleware that turns every plain-text or HTML error that next
// writes into the JSON shape: a response with status 400 or above whose
// Content-Type is not JSON (http.Error, http.NotFound, ServeMux's own 404 and 405,
// http.MaxBytesHandler) is answered by [Write] with the same status, the message
// [Message] gives for it, and the headers already set (Allow stays on a 405).
//
// The handler's own message is replaced, not kept: http.Error(w, "no such user",
// http.StatusNotFound) answers {"error":"Not found"}. Text written for a log or
// an operator (an upstream's detail, a stack) thus never reaches a caller; a
// handler that wants the caller to read its message writes it with [Write].
// JSON errors and every status below 400 pass through untouched.
func Rewrite(next http.Handler) http.Handler {
	nilhandler.Refuse("errorsjson: Rewrite", next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g, created := wrap(w, r)
		g.rewrite = true
		if created {
			w = g
		}
		next.ServeHTTP(w, r)
	})
}

// Recover is middleware that turns a panic in next into a 500
// {"error":"Internal server error"} and logs it at error level to logger (with
// the request id, method, path and stack), so that one bad request cannot take
// the server down or leak a stack trace to a caller. A nil logger means
// slog.Default().
//
// A panic with http.ErrAbortHandler is passed on, as net/http expects, and so is
// any panic that happens after the response's header was sent: the status can no
// longer change, so the connection is aborted instead of letting a truncated body
// look like a success.
func Recover(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		nilhandler.Refuse("errorsjson: Recover", next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			g, created := wrap(w, r)
			if created {
				w = g
			}
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler {
					panic(v)
				}
				l := logger
				if l == nil {
					l = slog.Default()
				}
				l.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
					slog.String("request_id", RequestIDFrom(r.Context())),
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.Any("panic", v),
					slog.String("stack", string(debug.Stack())),
				)
				if g.wroteHeader {
					panic(http.ErrAbortHandler)
				}
				g.wroteHeader = true
				Write(g.ResponseWriter, r, http.StatusInternalServerError, MsgInternal)
			}()
			next.ServeHTTP(w, r)
		})
	}
}
