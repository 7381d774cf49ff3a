package auth

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"unicode"
	"unicode/utf8"

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

	// Names that encoding/json would not tell apart (see [Inputs]).
	MsgAmbiguousInputs      = "Duplicate or ambiguous field: inputs"               // 400
	MsgAmbiguousInputPrefix = "Duplicate or ambiguous input field: "               // 400, followed by a required field's name
	MsgAmbiguousNames       = "Duplicate or ambiguous field names in request body" // 400, any other such pair
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
// What the next handler decodes is what Inputs checked: a body is refused if
// two member names of its object, or two of its inputs object, are equal under
// the case folding with which encoding/json matches names to struct fields
// (ASCII letters regardless of case, and any other rune with the runes of its
// unicode.SimpleFold orbit: "K" KELVIN SIGN with "k", "ſ" LONG S with "s"),
// exact duplicates included. Without that rule, {"inputs":{"Premium":1},
// "Inputs":{"Premium":999999}} would be checked with 1 and decoded into a
// struct with 999999. The body's bytes are forwarded unchanged.
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
//   - 400 for names that collide as above: MsgAmbiguousInputs where they fold
//     to "inputs", "Duplicate or ambiguous input field: Name" where names of
//     the inputs object fold to a required field's (the first in the required
//     order), MsgAmbiguousNames otherwise. The body's own names are never
//     echoed. These checks come before the "Missing" ones of the same level;
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
// same way, with names that collide under encoding/json's folding refused
// (FuzzInputsAgreesWithEncodingJSON holds it to that); but once json.Valid has
// passed it finds the members with a scanner of its own rather than decoding
// twice: the body is the gateway's hottest input. The values are slices of
// body, capped so that an append cannot write into it.
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
	// The member named exactly "inputs", not a case-insensitive match: with
	// collisions refused, no other member can stand for it.
	var raw []byte
	var scratch [32]uint64
	hashes := scratch[:0]
	top := members{b: trimmed}
	for key, val, ok := top.next(); ok; key, val, ok = top.next() {
		if keyIs(key, "inputs") {
			raw = val
		}
		hashes = append(hashes, foldHash(keyName(key)))
	}
	if clash := clashes(trimmed, hashes); clash != nil {
		if slices.ContainsFunc(clash, func(n []byte) bool { return compareFolded(n, []byte("inputs")) == 0 }) {
			return nil, MsgAmbiguousInputs
		}
		return nil, MsgAmbiguousNames
	}
	if raw == nil {
		return nil, MsgNoInputs
	}
	if raw[0] != '{' {
		return nil, MsgInputsNotObject
	}
	inputs := make(map[string]json.RawMessage)
	hashes = scratch[:0]
	in := members{b: raw}
	for key, val, ok := in.next(); ok; key, val, ok = in.next() {
		name := keyName(key)
		inputs[string(name)] = val
		hashes = append(hashes, foldHash(name))
	}
	if clash := clashes(raw, hashes); clash != nil {
		for _, name := range required {
			if slices.ContainsFunc(clash, func(n []byte) bool { return compareFolded(n, []byte(name)) == 0 }) {
				return nil, MsgAmbiguousInputPrefix + name
			}
		}
		return nil, MsgAmbiguousNames
	}
	for _, name := range required {
		if v, ok := inputs[name]; !ok || string(v) == "null" {
			return nil, MsgMissingInputPrefix + name
		}
	}
	return inputs, ""
}

// clashes returns one name of each group of member names of obj that
// encoding/json would not tell apart (see compareFolded), or nil if every name
// stands alone. hashes are the foldHash of the names; it sorts them. Distinct
// hashes prove the names distinct without comparing them, the usual case; only
// equal hashes lead to sorting the names themselves, which costs no more than
// that sort (whatever hashes a caller contrives to make equal).
func clashes(obj []byte, hashes []uint64) [][]byte {
	slices.Sort(hashes)
	if !sameNeighbours(hashes) {
		return nil
	}
	var names [][]byte
	m := members{b: obj}
	for key, _, ok := m.next(); ok; key, _, ok = m.next() {
		names = append(names, keyName(key))
	}
	slices.SortFunc(names, compareFolded)
	var clash [][]byte
	for i := 1; i < len(names); i++ {
		if compareFolded(names[i-1], names[i]) != 0 {
			continue
		}
		if len(clash) == 0 || compareFolded(clash[len(clash)-1], names[i]) != 0 {
			clash = append(clash, names[i])
		}
	}
	return clash
}

// sameNeighbours reports whether two neighbours of sorted are equal.
func sameNeighbours(sorted []uint64) bool {
	for i := 1; i < len(sorted); i++ {
		if sorted[i-1] == sorted[i] {
			return true
		}
	}
	return false
}

// foldHash returns the FNV-1a hash of name (UTF-8, as decoded) folded as
// compareFolded folds it: names that compare equal hash alike.
func foldHash(name []byte) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); {
		if c := name[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			h = (h ^ uint64(c)) * prime
			i++
			continue
		}
		r, n := foldedRune(name[i:])
		h = (h ^ uint64(r)) * prime
		i += n
	}
	return h
}

// compareFolded orders two names (UTF-8, as decoded) by their case-folded
// form as encoding/json's foldName makes it (encoding/json/fold.go): ASCII
// letters upper-cased, any other rune replaced by the smallest rune of its
// unicode.SimpleFold orbit. It returns 0 when a struct field that one name
// matches also matches the other.
func compareFolded(a, b []byte) int {
	for len(a) > 0 && len(b) > 0 {
		ra, na := foldedRune(a)
		rb, nb := foldedRune(b)
		if ra != rb {
			return cmp.Compare(ra, rb)
		}
		a, b = a[na:], b[nb:]
	}
	return cmp.Compare(len(a), len(b))
}

// foldedRune returns the first rune of b as encoding/json folds it, and its
// length in b.
func foldedRune(b []byte) (rune, int) {
	if c := b[0]; c < utf8.RuneSelf {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		return rune(c), 1
	}
	r, n := utf8.DecodeRune(b)
	for {
		// The smallest rune of r's orbit, as encoding/json's foldRune.
		next := unicode.SimpleFold(r)
		if next <= r {
			return next, n
		}
		r = next
	}
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

// keyName returns the value of a quoted key, as encoding/json decodes it
// (invalid UTF-8 replaced by U+FFFD): a slice of quoted itself when the key is
// plain.
func keyName(quoted []byte) []byte {
	if plain(quoted) {
		return quoted[1 : len(quoted)-1]
	}
	var s string
	json.Unmarshal(quoted, &s) // valid: json.Valid accepted the object
	return []byte(s)
}

// keyIs reports whether the quoted key's value is name, without allocating
// for a plain key.
func keyIs(quoted []byte, name string) bool {
	return string(keyName(quoted)) == name
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
