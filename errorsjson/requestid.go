package errorsjson

import (
	"context"
	"net/http"

	"github.com/gatehouse-go/gatehouse/internal/nilhandler"
	"github.com/google/uuid"
)

// HeaderRequestID is the header that carries a request's id, in and out.
const HeaderRequestID = "X-Request-ID"

// canonicalRequestID is HeaderRequestID in net/http's canonical form, the
// key of the header's maps: looked up as it is, it costs no allocation,
// where HeaderRequestID is canonicalized into a new string each time.
const canonicalRequestID = "X-Request-Id"

// maxRequestIDLen bounds an incoming id: anything longer is replaced, so a caller
// cannot make every log line carry kilobytes of its choosing.
const maxRequestIDLen = 128

type requestIDKey struct{}

// RequestID is middleware that gives every request an id: a well-formed incoming
// X-Request-ID (1 to 128 characters of letters, digits and -_.:) is kept,
// anything else is replaced by a new random UUID. The id is set as X-Request-ID on
// the response before next runs, and is available to every layer below through
// [RequestIDFrom], to [Write] (as request_id) and to log lines.
func RequestID(next http.Handler) http.Handler {
	nilhandler.Refuse("errorsjson: RequestID", next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(canonicalRequestID)
		if !validRequestID(id) {
			id = uuid.NewString()
		}
		w.Header().Set(canonicalRequestID, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// RequestIDFrom returns the request id that [RequestID] stored in ctx, or "" if
// there is none.
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// validRequestID reports whether id is acceptable as an incoming request id:
// 1 to 128 characters, each a letter, a digit or one of - _ . :
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}
