package auth

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-go/gatehouse/errorsjson"
)

// checkKeyReference is Format{}.Check derived again from the format's
// description (prefix, 32 base62 characters, 6 base62 digits of the CRC-32 of
// what precedes them) with the standard library's CRC-32.
func checkKeyReference(key string) error {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	if len(key) != len("ila_")+32+6 || !strings.HasPrefix(key, "ila_") {
		return errMalformedKey
	}
	var sum uint64
	for i := len("ila_"); i < len(key); i++ {
		d := strings.IndexByte(alphabet, key[i])
		if d < 0 {
			return errMalformedKey
		}
		if i >= len("ila_")+32 {
			sum = sum*62 + uint64(d)
		}
	}
	if sum != uint64(crc32.ChecksumIEEE([]byte(key[:len(key)-6]))) {
		return errKeyChecksum
	}
	return nil
}

// withReferenceChecksum returns "ila_" and a 32-character base62 body made of
// seed, followed by the 6 base62 digits of its CRC-32 plus offset (0 for the
// key's own checksum).
func withReferenceChecksum(seed string, offset uint64) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	if seed == "" {
		seed = "0"
	}
	b := []byte("ila_")
	for i := range 32 {
		b = append(b, alphabet[int(seed[i%len(seed)])%62])
	}
	sum := uint64(crc32.ChecksumIEEE(b)) + offset
	var digits [6]byte
	for i := 5; i >= 0; i-- {
		digits[i] = alphabet[sum%62]
		sum /= 62
	}
	return string(append(b, digits[:]...))
}

// FuzzCheckKey: Check answers what the format's description answers, for any
// string; a key built from the description passes, a minted key passes, and
// changing any one character of either makes it fail.
func FuzzCheckKey(f *testing.F) {
	for range 3 {
		k, _ := NewKey()
		f.Add(k, uint8(5), uint8('Q'))
	}
	f.Add("", uint8(0), uint8(0))
	f.Add("ila_", uint8(3), uint8('_'))
	f.Add("ila_"+strings.Repeat("z", 38), uint8(41), uint8('0'))
	f.Add(withReferenceChecksum("x", 0), uint8(37), uint8('a'))
	f.Add(withReferenceChecksum("x", 0), uint8(41), uint8('_'))
	f.Add(withReferenceChecksum("x", 1<<32), uint8(0), uint8('i'))
	f.Fuzz(func(t *testing.T, key string, pos, c uint8) {
		var format Format
		if got, want := format.Check(key), checkKeyReference(key); got != want {
			t.Fatalf("Check(%q) = %v, the format's description says %v", key, got, want)
		}

		minted, record := format.NewKey()
		built := withReferenceChecksum(key, 0)
		// The same CRC-32 modulo 2^32 in 6 digits is still not the checksum.
		if aliased := withReferenceChecksum(key, 1<<32); format.Check(aliased) != errKeyChecksum {
			t.Fatalf("%q (checksum digits plus 2^32) passes Check", aliased)
		}
		for _, valid := range []string{minted, built} {
			if err := format.Check(valid); err != nil || len(valid) != format.keyLen() {
				t.Fatalf("valid key %q refused (%v) or of length %d, not %d", valid, err, len(valid), format.keyLen())
			}
			i := int(pos) % len(valid)
			if c == valid[i] {
				continue
			}
			changed := valid[:i] + string([]byte{c}) + valid[i+1:]
			if err := format.Check(changed); err == nil || err != checkKeyReference(changed) {
				t.Fatalf("%q (position %d of %q changed): Check = %v, want %v", changed, i, valid, err, checkKeyReference(changed))
			}
		}
		if record.Hash != sha256.Sum256([]byte(minted)) {
			t.Fatalf("minted record's hash is not the SHA-256 of its key")
		}
	})
}

func FuzzExtractKey(f *testing.F) {
	f.Add("Bearer ila_abc", "ila_abc", false)
	f.Add("bearer\tila_abc ", "", true)
	f.Add("Basic dXNlcjpwYXNz", "ila_x", false)
	f.Add("", "", false)
	f.Add("Bearer", " ", true)
	f.Fuzz(func(t *testing.T, authz, apiKey string, repeat bool) {
		h := http.Header{}
		if authz != "" {
			h["Authorization"] = []string{authz}
		}
		if apiKey != "" {
			h["X-Api-Key"] = []string{apiKey}
			if repeat {
				h["X-Api-Key"] = append(h["X-Api-Key"], apiKey)
			}
		}
		key, err := extractKey(h)
		if err != nil && key != "" {
			t.Fatalf("extractKey = %q with error %v", key, err)
		}
		if key != strings.Trim(key, " \t") {
			t.Fatalf("key %q is not trimmed", key)
		}
		if key != "" && !strings.Contains(authz, key) && !strings.Contains(apiKey, key) {
			t.Fatalf("key %q comes from neither header", key)
		}
	})
}

// inputsAnswers are the refusals Inputs may give when the product requires
// Premium and Age.
var inputsAnswers = map[string]int{
	MsgUnsupportedMediaType:             415,
	errorsjson.MsgBodyTooLarge:          413,
	MsgBodyEmpty:                        400,
	MsgBodyNotJSON:                      400,
	MsgBodyNotObject:                    400,
	MsgNoInputs:                         400,
	MsgInputsNotObject:                  400,
	MsgAmbiguousInputs:                  400,
	MsgAmbiguousNames:                   400,
	MsgMissingInputPrefix + "Premium":   400,
	MsgMissingInputPrefix + "Age":       400,
	MsgAmbiguousInputPrefix + "Premium": 400,
	MsgAmbiguousInputPrefix + "Age":     400,
	MsgBodyUnreadable:                   400,
}

// FuzzInputs: a request the middleware lets through reaches the next handler
// whole, and an upstream decoding its body with encoding/json finds in every
// required field the value Inputs checked; a request it refuses gets one of
// the contract's answers, in the JSON error shape, byte for byte.
func FuzzInputs(f *testing.F) {
	f.Add(`{"inputs":{"Premium":1,"Age":2}}`, "application/json")
	f.Add(`{"inputs":{"Premium":null}}`, "")
	f.Add(`{"inputs":[]}`, "application/json; charset=utf-8")
	f.Add(`{"inputs":{}} {}`, "application/json")
	f.Add(`[`, "text/plain")
	f.Add("\xff\xfe{", "application/json")
	f.Add(`{"inputs":{"Premium":"`+strings.Repeat("x", 300)+`"}}`, "application/json")
	f.Add(`{"inputs":{"Premium":1200,"Age":1},"Inputs":{"Premium":999999}}`, "application/json")
	f.Add(`{"inputs":{"Premium":1200,"Age":1,"premium":null}}`, "application/json")
	f.Add(`{"inputs":{"Premium":1200,"Age":1,"Premium":7}}`, "application/json")
	f.Add(`{"inputs":{"Premium":1200,"Age":1},"inputſ":{"Age":2}}`, "application/json")
	f.Add(`{"inputs":{"Premium":1200,"Age":1,"Agé":2}}`, "application/json")
	required := []string{"Premium", "Age"}
	product := &Product{Slug: "quote", Active: true, Required: required}
	var ran bool
	var seenBody []byte
	var seenInputs map[string]json.RawMessage
	h := Inputs(InputConfig{MaxBytes: 256})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran = true
		seenInputs, _ = InputsFrom(r.Context())
		seenBody, _ = io.ReadAll(r.Body)
	}))
	f.Fuzz(func(t *testing.T, body, contentType string) {
		ran, seenBody, seenInputs = false, nil, nil
		req := httptest.NewRequest("POST", "/api/quote", strings.NewReader(body))
		req.Header["Content-Type"] = []string{contentType}
		req = req.WithContext(contextWithProduct(req, product))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == 200 {
			if !ran || string(seenBody) != body {
				t.Fatalf("accepted %q, but next ran %v and read %q", body, ran, seenBody)
			}
			var upstream struct{ Inputs struct{ Premium, Age any } }
			if err := json.Unmarshal([]byte(body), &upstream); err != nil {
				t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
			}
			for _, name := range required {
				var checked any
				if err := json.Unmarshal(seenInputs[name], &checked); err != nil || checked == nil {
					t.Fatalf("accepted %q with %s = %q", body, name, seenInputs[name])
				}
				decoded := upstream.Inputs.Premium
				if name == "Age" {
					decoded = upstream.Inputs.Age
				}
				if !reflect.DeepEqual(checked, decoded) {
					t.Fatalf("accepted %q: Inputs checked %s = %v, an upstream decodes %v", body, name, checked, decoded)
				}
			}
			return
		}
		if ran {
			t.Fatalf("refused %q with %d, yet next ran", body, rec.Code)
		}
		var b errorsjson.Body
		if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
			t.Fatalf("refusal %d of %q: body %q is not JSON", rec.Code, body, rec.Body)
		}
		if status, ok := inputsAnswers[b.Error]; !ok || status != rec.Code {
			t.Fatalf("refused %q with %d %q: not one of the contract's answers", body, rec.Code, b.Error)
		}
		want, _ := json.Marshal(errorsjson.Body{Error: b.Error})
		if got := rec.Body.String(); got != string(want)+"\n" || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("refusal body %q, Content-Type %q; want %q, application/json", got, rec.Header().Get("Content-Type"), want)
		}
	})
}

// parseInputsReference is parseInputs as encoding/json alone would answer,
// with names compared by strings.EqualFold (which folds as encoding/json's
// foldName does): the behaviour parseInputs's own scanner must keep.
func parseInputsReference(body []byte, required []string) (map[string]json.RawMessage, string) {
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
	top, names := objectMembers(trimmed)
	if clash := foldClashes(names); clash != nil {
		if slices.ContainsFunc(clash, func(n string) bool { return strings.EqualFold(n, "inputs") }) {
			return nil, MsgAmbiguousInputs
		}
		return nil, MsgAmbiguousNames
	}
	raw, ok := top["inputs"]
	if !ok {
		return nil, MsgNoInputs
	}
	if raw[0] != '{' {
		return nil, MsgInputsNotObject
	}
	inputs, names := objectMembers(raw)
	if clash := foldClashes(names); clash != nil {
		for _, name := range required {
			if slices.ContainsFunc(clash, func(n string) bool { return strings.EqualFold(n, name) }) {
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

// objectMembers decodes the JSON object b with a json.Decoder: its members by
// name (the last of a repeated name, as decoding into a map keeps) and its
// names in order, repeats included.
func objectMembers(b []byte) (map[string]json.RawMessage, []string) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.Token() // '{'
	members := make(map[string]json.RawMessage)
	var names []string
	for dec.More() {
		tok, _ := dec.Token()
		name := tok.(string)
		var v json.RawMessage
		dec.Decode(&v)
		members[name] = v
		names = append(names, name)
	}
	return members, names
}

// foldClashes returns the names equal under strings.EqualFold to an earlier
// name, or nil.
func foldClashes(names []string) []string {
	var clash []string
	for i, a := range names {
		for _, b := range names[:i] {
			if strings.EqualFold(a, b) {
				clash = append(clash, a)
				break
			}
		}
	}
	return clash
}

// decodedEqual reports whether each value of checked decodes with
// encoding/json to the same value as the member of decoded of that name, and
// both hold the same names.
func decodedEqual(checked map[string]json.RawMessage, decoded map[string]any) bool {
	if len(checked) != len(decoded) {
		return false
	}
	for k, raw := range checked {
		var v any
		if json.Unmarshal(raw, &v) != nil {
			return false
		}
		d, ok := decoded[k]
		if !ok || !reflect.DeepEqual(v, d) {
			return false
		}
	}
	return true
}

// FuzzInputsAgreesWithEncodingJSON: parseInputs gives the answer and the
// members that decoding with encoding/json gives, for any body; and whenever
// it accepts a body, an upstream decoding that body with encoding/json, into
// a struct or into a map, gets exactly the inputs that were checked.
func FuzzInputsAgreesWithEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"inputs":{"Premium":1,"Age":2}}`,
		` {"a":[1,{"b":"}"}],"inputs" : { "Premium" : "x\"y" , "Age":null } , "z":true}`,
		`{"inputs":{"Premium":1},"inputs":{"Age":2}}`,
		`{"Inputs":{"Premium":1}}`,
		`{"\u0069nputs":{"Pr\u00e9mium":1,"Age":[],"Age":{}}}`,
		`{"inputs":{"\ud800":1,"caf` + "\xc3\xa9" + `":2,"bad` + "\xff" + `":3}}`,
		`{"inputs":null}`, `{"inputs":[]}`, `{"inputs":"{}"}`, `{}`, `[]`, `null`, `{"inputs":{}}x`, "\t\n{\"inputs\":{}}\r\n",
		`{"inputs":{"Premium":-1.5e10,"Age":0}}`,
		`{"inputs":{"Premium":1200,"Age":1},"Inputs":{"Premium":999999}}`,
		`{"inputs":{"Premium":1200,"Age":1},"INPUTS":{"Premium":999999}}`,
		`{"inputs":{"Premium":1200,"Age":1},"input\u017f":{"Premium":999999}}`,
		`{"inputs":{"Premium":1200,"Age":1},"\u0131nputs":{"Premium":999999}}`,
		`{"inputs":{"Premium":1200,"Age":1,"premium":null}}`,
		`{"inputs":{"Premium":1200,"Age":1,"\u212aey":1,"key":2}}`,
		`{"inputs":{"Premium":1200,"Age":1,"x\ud800":1,"x\udc00":2}}`,
		`{"inputs":{"Premium":1200,"Age":1},"a":1,"A":2}`,
	} {
		f.Add([]byte(s))
	}
	required := []string{"Premium", "Age"}
	f.Fuzz(func(t *testing.T, body []byte) {
		checked, gotMsg := parseInputs(body, required)
		_, wantMsg := parseInputsReference(body, required)
		if gotMsg != wantMsg {
			t.Fatalf("parseInputs(%q) = %q, encoding/json says %q", body, gotMsg, wantMsg)
		}
		if gotMsg == "" {
			// An upstream with a struct naming the required fields.
			var fields struct{ Inputs struct{ Premium, Age any } }
			if err := json.Unmarshal(body, &fields); err != nil {
				t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
			}
			if !decodedEqual(map[string]json.RawMessage{"Premium": checked["Premium"], "Age": checked["Age"]},
				map[string]any{"Premium": fields.Inputs.Premium, "Age": fields.Inputs.Age}) {
				t.Fatalf("accepted %q with %q, a struct decodes %+v", body, checked, fields.Inputs)
			}
		}

		// With no required fields, the members themselves.
		got, gotMsg := parseInputs(body, nil)
		want, wantMsg := parseInputsReference(body, nil)
		if gotMsg != wantMsg || len(got) != len(want) {
			t.Fatalf("parseInputs(%q) = %q %q, encoding/json says %q %q", body, got, gotMsg, want, wantMsg)
		}
		for k, v := range want {
			if !bytes.Equal(got[k], v) {
				t.Fatalf("parseInputs(%q)[%q] = %q, encoding/json says %q", body, k, got[k], v)
			}
		}
		if gotMsg != "" {
			return
		}
		// An upstream with a struct holding the inputs as a map, and one
		// decoding the whole body into a map.
		var asStruct struct{ Inputs map[string]any }
		if err := json.Unmarshal(body, &asStruct); err != nil || !decodedEqual(got, asStruct.Inputs) {
			t.Fatalf("accepted %q with %q, a struct decodes %v (%v)", body, got, asStruct.Inputs, err)
		}
		var asMap map[string]any
		if err := json.Unmarshal(body, &asMap); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
		}
		if m, _ := asMap["inputs"].(map[string]any); !decodedEqual(got, m) {
			t.Fatalf("accepted %q with %q, a map decodes %v", body, got, asMap["inputs"])
		}
	})
}

// FuzzQueryCost: the cost of a query is the highest cost among the values of
// "format" that net/url finds in it (the product's cost when there is none),
// whatever the caller writes: escapes, repeats, semicolons, broken escapes.
func FuzzQueryCost(f *testing.F) {
	for _, s := range []string{"", "format=pdf", "format=json&format=pdf", "form%61t=pdf", "format=p%64f",
		"format=pdf;x=1", "format=json&format=pdf;x", "format=%zz&format=both", "a=1&format", "format=pdf&format=", "format+=pdf", "format=pd+f"} {
		f.Add(s)
	}
	p := &Product{Cost: 5, FormatCosts: map[string]int{"json": 1, "pdf": 10, "both": 11, "": 7, "pd f": 3}}
	f.Fuzz(func(t *testing.T, raw string) {
		vals, _ := url.ParseQuery(raw)
		want := p.costOf("")
		if vs := vals["format"]; len(vs) > 0 {
			want = 0
			for _, v := range vs {
				want = max(want, p.costOf(v))
			}
		}
		if got := p.QueryCost(raw); got != want {
			t.Errorf("QueryCost(%q) = %d, want %d (net/url reads format=%q)", raw, got, want, vals["format"])
		}
	})
}
