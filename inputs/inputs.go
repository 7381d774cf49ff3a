// This file holds the middleware: the body read within a bound, checked as a
// JSON object with an "inputs" object carrying the required fields, and handed
// on unchanged. The scanner that finds the members is scanner.go.

package inputs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/errorsjson"
	"github.com/gatehouse-go/gatehouse/internal/found"
	"github.com/gatehouse-go/gatehouse/internal/nilhandler"
)

// The messages [Middleware] answers with. They are part of the API that callers
// see, like the errorsjson Msg constants; none echoes the body.
const (
	MsgUnsupportedMediaType = "Content-Type must be application/json" // 415
	MsgBodyEmpty            = "Request body is empty"                 // 400
	MsgBodyNotJSON          = "Request body is not valid JSON"        // 400, trailing data included
	MsgBodyNotObject        = "Request body must be a JSON object"    // 400
	MsgNoInputs             = "Missing inputs object"                 // 400
	MsgInputsNotObject      = "inputs must be a JSON object"          // 400
	MsgMissingInputPrefix   = "Missing required input field: "        // 400, followed by the field's name
	MsgBodyUnreadable       = "Request body could not be read"        // 400

	// Names that encoding/json would not tell apart (see [Middleware]).
	MsgAmbiguousInputs      = "Duplicate or ambiguous field: inputs"               // 400
	MsgAmbiguousInputPrefix = "Duplicate or ambiguous input field: "               // 400, followed by a required field's name
	MsgAmbiguousNames       = "Duplicate or ambiguous field names in request body" // 400, any other such pair
)

// defaultMaxBytes is the bound of a request body when Config.MaxBytes is
// zero: 1 MiB.
const defaultMaxBytes = 1 << 20

// Config configures [Middleware]. Its zero value is sane.
type Config struct {
	// MaxBytes bounds the body (zero: 1 MiB).
	MaxBytes int64
	// Required returns the input fields a request must carry, in the order
	// they are reported when missing (nil: the Required fields of the product
	// that auth.Products stored in the context, as auth.ProductFrom gives
	// it; none if there is no product).
	Required func(*http.Request) []string
}

// Middleware returns middleware that reads a request's body and lets the request
// through only if it is a JSON object whose "inputs" member is an object
// carrying every required field (present and not null; names are
// case-sensitive). The parsed inputs are stored for [From], and the body
// is replaced by the bytes read (Body, ContentLength and GetBody set), so the
// next handler can still read all of it, unchanged.
//
// What the next handler decodes is what Middleware checked: a body is refused if
// two member names of its object, or of its inputs object, are equal under the
// case folding with which encoding/json matches names to struct fields, so that
// {"inputs":{"Premium":1},"Inputs":{"Premium":999999}} cannot be checked with
// 1 and computed with 999999. Its refusals (415, 413, 400) are written with
// errorsjson.Write, with the Msg constants; docs/inputs.md has the rules and
// docs/contract.md every message.
//
// Like auth.Middleware, it panics if the handler it is given is nil.
func Middleware(cfg Config) func(http.Handler) http.Handler {
	max := cfg.MaxBytes
	if max <= 0 {
		max = defaultMaxBytes
	}
	required := cfg.Required
	if required == nil {
		required = func(r *http.Request) []string {
			if p, ok := auth.ProductFrom(r.Context()); ok {
				return p.Required
			}
			return nil
		}
	}
	return func(next http.Handler) http.Handler {
		nilhandler.Refuse("inputs: Middleware", next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
				mt, _, err := mime.ParseMediaType(ct)
				if err != nil || mt != "application/json" {
					errorsjson.Write(w, r, http.StatusUnsupportedMediaType, MsgUnsupportedMediaType)
					return
				}
			}
			if r.ContentLength > max {
				errorsjson.Write(w, r, http.StatusRequestEntityTooLarge, errorsjson.MsgBodyTooLarge)
				return
			}
			body, err := readBody(w, r, max)
			if err != nil {
				var tooLarge *http.MaxBytesError
				if errors.As(err, &tooLarge) {
					errorsjson.Write(w, r, http.StatusRequestEntityTooLarge, errorsjson.MsgBodyTooLarge)
				} else {
					errorsjson.Write(w, r, http.StatusBadRequest, MsgBodyUnreadable)
				}
				return
			}
			inputs, msg := parseInputs(body, required(r))
			if msg != "" {
				errorsjson.Write(w, r, http.StatusBadRequest, msg)
				return
			}
			if ctx, copied := found.With(r.Context(), found.Inputs, inputs); copied {
				r = r.WithContext(ctx)
			}
			r.Body = newBodyReader(body)
			r.ContentLength = int64(len(body))
			r.TransferEncoding = nil
			r.GetBody = func() (io.ReadCloser, error) { return newBodyReader(body), nil }
			next.ServeHTTP(w, r)
		})
	}
}

// firstBodyBuffer is the most readBody allocates before bytes arrive.
const firstBodyBuffer = 4 << 10

// readBody reads r's body, at most max bytes. Its buffer grows with the bytes
// that arrive, not with the length the request announces: a caller that
// announces a megabyte and sends one byte holds firstBodyBuffer bytes, not a
// megabyte (TestInputsMemoryFollowsBytes). The announced length only keeps the
// buffer from outgrowing it, so a body that fits in firstBodyBuffer is read
// into one buffer of its size.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body := http.MaxBytesReader(w, r.Body, max)
	n := r.ContentLength // at most max: checked by the caller
	if n <= 0 {
		return io.ReadAll(body)
	}
	// One byte past the announced length sees the end without a growth.
	buf := make([]byte, 0, min(n+1, firstBodyBuffer))
	for {
		if len(buf) == cap(buf) {
			grown := int64(2 * cap(buf))
			if int64(cap(buf)) < n+1 {
				grown = min(grown, n+1)
			}
			buf = append(make([]byte, 0, grown), buf...)
		}
		m, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		switch {
		case err == io.EOF && int64(len(buf)) < n:
			return nil, io.ErrUnexpectedEOF
		case err == io.EOF:
			// net/http's server stops at the announced length; a body from
			// another caller may go on, and is read to its end like any other.
			return buf, nil
		case err != nil:
			return nil, err
		}
	}
}

// bodyReader is the body Middleware hands on: the bytes it read, closable, in
// one allocation.
type bodyReader struct{ bytes.Reader }

func newBodyReader(b []byte) *bodyReader {
	br := new(bodyReader)
	br.Reset(b)
	return br
}

func (*bodyReader) Close() error { return nil }

// From returns the inputs object that [Middleware] parsed from the body,
// member by member. The map is shared: do not modify it.
func From(ctx context.Context) (map[string]json.RawMessage, bool) {
	m, ok := found.Get(ctx, found.Inputs).(map[string]json.RawMessage)
	return m, ok
}
