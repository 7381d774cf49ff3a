package auth

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func FuzzCheckKey(f *testing.F) {
	for range 3 {
		k, _ := NewKey()
		f.Add(k, uint8(5), uint8('Q'))
	}
	f.Add("", uint8(0), uint8(0))
	f.Add("ila_", uint8(3), uint8('_'))
	f.Add("ila_"+strings.Repeat("z", 38), uint8(41), uint8('0'))
	f.Fuzz(func(t *testing.T, key string, pos, c uint8) {
		var format Format
		_ = format.Check(key) // never panics

		// A minted key passes, and any single-character change of it fails.
		minted, _ := format.NewKey()
		if err := format.Check(minted); err != nil {
			t.Fatalf("minted key %q refused: %v", minted, err)
		}
		i := int(pos) % len(minted)
		if c == minted[i] {
			return
		}
		changed := minted[:i] + string([]byte{c}) + minted[i+1:]
		if format.Check(changed) == nil {
			t.Fatalf("%q (position %d of %q changed) passes Check", changed, i, minted)
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
		key, err := ExtractKey(h)
		if err != nil && key != "" {
			t.Fatalf("ExtractKey = %q with error %v", key, err)
		}
		if key != strings.Trim(key, " \t") {
			t.Fatalf("key %q is not trimmed", key)
		}
		if key != "" && !strings.Contains(authz, key) && !strings.Contains(apiKey, key) {
			t.Fatalf("key %q comes from neither header", key)
		}
	})
}

func FuzzInputs(f *testing.F) {
	f.Add(`{"inputs":{"Premium":1,"Age":2}}`, "application/json")
	f.Add(`{"inputs":{"Premium":null}}`, "")
	f.Add(`{"inputs":[]}`, "application/json; charset=utf-8")
	f.Add(`{"inputs":{}} {}`, "application/json")
	f.Add(`[`, "text/plain")
	f.Add("\xff\xfe{", "application/json")
	f.Add(`{"inputs":{"Premium":"`+strings.Repeat("x", 300)+`"}}`, "application/json")
	product := &Product{Slug: "quote", Active: true, Required: []string{"Premium", "Age"}}
	h := Inputs(InputConfig{MaxBytes: 256})(&okHandler{})
	f.Fuzz(func(t *testing.T, body, contentType string) {
		req := httptest.NewRequest("POST", "/api/quote", strings.NewReader(body))
		req.Header["Content-Type"] = []string{contentType}
		req = req.WithContext(contextWithProduct(req, product))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for body %q", rec.Code, body)
		}
		if rec.Code != 200 && rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("refusal %d without the JSON error shape", rec.Code)
		}
	})
}

// FuzzClientAddr: whatever a client writes in the header, Of never panics, and
// it answers either the connection's address or one written in the header; with
// trusted proxies named, a peer outside them is always answered by its own
// address.
func FuzzClientAddr(f *testing.F) {
	f.Add("10.0.0.1:80", "203.0.113.9, 10.2.2.2")
	f.Add("192.0.2.1:1", "[2001:db8::1]:443,,unknown")
	f.Add("[::ffff:10.0.0.1]:1", "::ffff:1.2.3.4%eth0")
	f.Add("pipe", "1.1.1.1")
	f.Fuzz(func(t *testing.T, remote, header string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header["X-Forwarded-For"] = []string{header}
		peer := ClientAddr{}.Of(r)
		trusting := ClientAddr{Header: "X-Forwarded-For"}.Of(r)
		guarded := ClientAddr{Header: "X-Forwarded-For", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}.Of(r)
		inHeader := func(a netip.Addr) bool {
			for item := range strings.SplitSeq(header, ",") {
				if parseAddr(strings.TrimSpace(item)) == a {
					return true
				}
			}
			return false
		}
		if trusting != peer && !inHeader(trusting) {
			t.Fatalf("Of = %v: neither the peer %v nor in the header", trusting, peer)
		}
		if guarded != peer && (!inHeader(guarded) || !netip.MustParsePrefix("10.0.0.0/8").Contains(peer)) {
			t.Fatalf("guarded Of = %v from peer %v", guarded, peer)
		}
	})
}

// parseInputsReference is parseInputs as encoding/json alone would answer:
// the behaviour parseInputs's own scanner must keep.
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
	var top map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &top); err != nil {
		return nil, MsgBodyNotJSON
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

// FuzzInputsAgreesWithEncodingJSON: parseInputs gives the answer and the
// members that decoding with encoding/json gives, for any body.
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
	} {
		f.Add([]byte(s))
	}
	required := []string{"Premium", "Age"}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, gotMsg := parseInputs(body, required)
		_, wantMsg := parseInputsReference(body, required)
		if gotMsg != wantMsg {
			t.Fatalf("parseInputs(%q) = %q, encoding/json says %q", body, gotMsg, wantMsg)
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
	})
}
