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
			if ctx, copied := withInputs(r.Context(), inputs); copied {
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

// readBody reads r's body, at most max bytes. A body of announced length
// (the usual case) is read into one buffer of that size.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body := http.MaxBytesReader(w, r.Body, max)
	n := r.ContentLength // at most max: checked by the caller
	if n <= 0 {
		return io.ReadAll(body)
	}
	buf := make([]byte, n, n+1)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, err
	}
	// net/http's server stops at the announced length; a body from another
	// caller may go on, and is read to its end like any other.
	switch m, err := body.Read(buf[n : n+1]); {
	case m == 0 && err == io.EOF:
		return buf, nil
	case m == 0 && err != nil:
		return nil, err
	}
	rest, err := io.ReadAll(body)
	return append(buf[:n+1], rest...), err
}

// bodyReader is the body Inputs hands on: the bytes it read, closable, in
// one allocation.
type bodyReader struct{ bytes.Reader }

func newBodyReader(b []byte) *bodyReader {
	br := new(bodyReader)
	br.Reset(b)
	return br
}

func (*bodyReader) Close() error { return nil }

// parseInputs returns the inputs object of body, or the message that says
// what is wrong with it. Its answers are those of decoding body with
// encoding/json into map[string]json.RawMessage, and then the inputs member the
// same way (FuzzInputsAgreesWithEncodingJSON holds it to that), but once
// json.Valid has passed it finds the members with a scanner of its own rather
// than decoding twice: the body is the gateway's hottest input. The values are
// slices of body, capped so that an append cannot write into it.
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
	// The member named exactly "inputs" (the last one, if repeated, as
	// encoding/json would keep), not a case-insensitive match.
	var raw []byte
	top := members{b: trimmed}
	for key, val, ok := top.next(); ok; key, val, ok = top.next() {
		if keyIs(key, "inputs") {
			raw = val
		}
	}
	if raw == nil {
		return nil, MsgNoInputs
	}
	if raw[0] != '{' {
		return nil, MsgInputsNotObject
	}
	inputs := make(map[string]json.RawMessage)
	in := members{b: raw}
	for key, val, ok := in.next(); ok; key, val, ok = in.next() {
		inputs[keyString(key)] = val
	}
	for _, name := range required {
		if v, ok := inputs[name]; !ok || string(v) == "null" {
			return nil, MsgMissingInputPrefix + name
		}
	}
	return inputs, ""
}

// members scans the members of b, a JSON object that json.Valid accepted.
type members struct {
	b []byte
	i int // the next byte to look at; 0 before the opening brace
}

// next returns the next member's key (quoted, as written) and value (without
// surrounding space), or ok=false after the last.
func (m *members) next() (key, val []byte, ok bool) {
	if m.i == 0 {
		m.i = 1 // past '{'
	}
	m.skipSpace()
	if m.b[m.i] == ',' {
		m.i++
		m.skipSpace()
	}
	if m.b[m.i] == '}' {
		return nil, nil, false
	}
	start := m.i
	m.skipValue()
	key = m.b[start:m.i]
	m.skipSpace()
	m.i++ // ':'
	m.skipSpace()
	start = m.i
	m.skipValue()
	return key, m.b[start:m.i:m.i], true
}

func (m *members) skipSpace() {
	for m.i < len(m.b) {
		switch m.b[m.i] {
		case ' ', '\t', '\r', '\n':
			m.i++
		default:
			return
		}
	}
}

// skipValue moves past the value that starts at m.i.
func (m *members) skipValue() {
	switch m.b[m.i] {
	case '"':
		m.skipString()
	case '{', '[':
		depth := 0
		for {
			switch m.b[m.i] {
			case '"':
				m.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			m.i++
			if depth == 0 {
				return
			}
		}
	default: // a number, true, false or null
		for m.i < len(m.b) {
			switch m.b[m.i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return
			}
			m.i++
		}
	}
}

// skipString moves past the string that starts at m.i.
func (m *members) skipString() {
	m.i++
	for m.b[m.i] != '"' {
		if m.b[m.i] == '\\' {
			m.i++
		}
		m.i++
	}
	m.i++
}

// plain reports whether the quoted key is its own value: no escapes and only
// ASCII, which encoding/json would pass through unchanged.
func plain(quoted []byte) bool {
	for _, c := range quoted[1 : len(quoted)-1] {
		if c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}

// keyString returns the value of a quoted key, as encoding/json decodes it.
func keyString(quoted []byte) string {
	if plain(quoted) {
		return string(quoted[1 : len(quoted)-1])
	}
	var s string
	json.Unmarshal(quoted, &s) // valid: json.Valid accepted the object
	return s
}

// keyIs reports whether the quoted key's value is name, without allocating
// for a plain key.
func keyIs(quoted []byte, name string) bool {
	if plain(quoted) {
		return string(quoted[1:len(quoted)-1]) == name
	}
	return keyString(quoted) == name
}

// InputsFrom returns the inputs object that [Inputs] parsed from the body,
// member by member. The map is shared: do not modify it.
func InputsFrom(ctx context.Context) (map[string]json.RawMessage, bool) {
	if f := foundIn(ctx); f != nil {
		if m := f.inputs.Load(); m != nil {
			return *m, true
		}
	}
	return nil, false
}
