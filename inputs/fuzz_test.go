package inputs

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/errorsjson"
)

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
	product := &auth.Product{Slug: "quote", Active: true, Required: required}
	var ran bool
	var seenBody []byte
	var seenInputs map[string]json.RawMessage
	h := Middleware(Config{MaxBytes: 256})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran = true
		seenInputs, _ = From(r.Context())
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
