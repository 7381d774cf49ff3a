package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/gatehouse-go/gatehouse/errorsjson"
)

// The messages [Inputs] answers with. They are part of the API that callers
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
)

// DefaultMaxBytes is the bound of a request body when InputConfig.MaxBytes is
// zero: 1 MiB.
const DefaultMaxBytes = 1 << 20

// InputConfig configures [Inputs]. Its zero value is sane.
type InputConfig struct {
	// MaxBytes bounds the body (zero: DefaultMaxBytes).
	MaxBytes int64
	// Required returns the input fields a request must carry, in the order
	// they are reported when missing (nil: the Required fields of the product
	// that [Products] stored in the context, none if there is no product).
	Required func(*http.Request) []string
}

// Inputs returns middleware that reads a request's body and lets the request
// through only if it is a JSON object whose "inputs" member is an object
// carrying every required field. A field counts as carried when its member is
// present and not null; names are case-sensitive. The parsed inputs are stored
// for [InputsFrom], and the body is replaced by the bytes read (Body,
// ContentLength and GetBody set), so the next handler can still read all of it.
//
// The Content-Type must be application/json (parameters such as charset are
// ignored) or absent; anything else is answered 415 MsgUnsupportedMediaType.
// Inputs answers, through errorsjson.Write:
//
//   - 413 "Request body too large" for a body over MaxBytes;
//   - 400 MsgBodyEmpty, MsgBodyNotJSON (malformed, or data after the value),
//     MsgBodyNotObject, MsgNoInputs, MsgInputsNotObject (null included), or
//     "Missing required input field: Name" naming the first missing field in
//     the required order;
//   - 400 MsgBodyUnreadable when reading the body fails otherwise.
func Inputs(cfg InputConfig) func(http.Handler) http.Handler {
	max := cfg.MaxBytes
	if max <= 0 {
		max = DefaultMaxBytes
	}
	required := cfg.Required
	if required == nil {
		required = func(r *http.Request) []string {
			if p, ok := ProductFrom(r.Context()); ok {
				return p.Required
			}
			return nil
		}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ct := r.Header.Get("Content-Type"); ct != "" {
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
			r = r.WithContext(context.WithValue(r.Context(), inputsCtx, inputs))
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			r.TransferEncoding = nil
			r.GetBody = func() (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(body)), nil
			}
			next.ServeHTTP(w, r)
		})
	}
}

func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, max))
}

// parseInputs returns the inputs object of body, or the message that says
// what is wrong with it.
func parseInputs(body []byte, required []string) (map[string]json.RawMessage, string) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, MsgBodyEmpty
	}
	if !json.Valid(trimmed) {
		return nil, MsgBodyNotJSON
	}
	if trimmed[0] != '{' {
		return nil, MsgBodyNotObject
	}
	// A map, not a struct, because encoding/json matches struct fields
	// case-insensitively and the member is "inputs", exactly.
	var top map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &top); err != nil {
		return nil, MsgBodyNotJSON // not reached: the body is a valid object
	}
	raw, ok := top["inputs"]
	if !ok {
		return nil, MsgNoInputs
	}
	var inputs map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &inputs) != nil {
		return nil, MsgInputsNotObject
	}
	for _, name := range required {
		if v, ok := inputs[name]; !ok || string(v) == "null" {
			return nil, MsgMissingInputPrefix + name
		}
	}
	return inputs, ""
}

// InputsFrom returns the inputs object that [Inputs] parsed from the body,
// member by member. The map is shared: do not modify it.
func InputsFrom(ctx context.Context) (map[string]json.RawMessage, bool) {
	m, ok := ctx.Value(inputsCtx).(map[string]json.RawMessage)
	return m, ok
}
