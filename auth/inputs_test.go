package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-go/gatehouse/errorsjson"
)

func TestInputs(t *testing.T) {
	product := &Product{Slug: "quote", Active: true, Required: []string{"Premium", "Age"}}
	tests := []struct {
		name        string
		contentType string
		body        string
		product     *Product // nil: none in the context
		status      int
		msg         string
	}{
		{"all fields", "application/json", `{"inputs":{"Premium":100000,"Age":"40"}}`, product, 200, ""},
		{"extra members", "application/json", `{"inputs":{"Premium":1,"Age":2,"X":3},"other":true}`, product, 200, ""},
		{"no content type", "", `{"inputs":{"Premium":1,"Age":2}}`, product, 200, ""},
		{"charset", "application/json; charset=utf-8", `{"inputs":{"Premium":1,"Age":2}}`, product, 200, ""},
		{"surrounding whitespace", "application/json", "\n {\"inputs\":{\"Premium\":1,\"Age\":2}} \n", product, 200, ""},
		{"no product, empty inputs", "application/json", `{"inputs":{}}`, nil, 200, ""},
		{"false is present", "application/json", `{"inputs":{"Premium":false,"Age":""}}`, product, 200, ""},
		{"first field missing", "application/json", `{"inputs":{"Age":2}}`, product, 400, "Missing required input field: Premium"},
		{"second field missing", "application/json", `{"inputs":{"Premium":1}}`, product, 400, "Missing required input field: Age"},
		{"both missing: first named", "application/json", `{"inputs":{}}`, product, 400, "Missing required input field: Premium"},
		{"null is missing", "application/json", `{"inputs":{"Premium":null,"Age":2}}`, product, 400, "Missing required input field: Premium"},
		{"names are case-sensitive", "application/json", `{"inputs":{"premium":1,"Age":2}}`, product, 400, "Missing required input field: Premium"},
		{"empty body", "application/json", ``, product, 400, MsgBodyEmpty},
		{"blank body", "application/json", "  \n", product, 400, MsgBodyEmpty},
		{"malformed", "application/json", `{"inputs":`, product, 400, MsgBodyNotJSON},
		{"not JSON", "application/json", `Premium=1`, product, 400, MsgBodyNotJSON},
		{"trailing garbage", "application/json", `{"inputs":{"Premium":1,"Age":2}} x`, product, 400, MsgBodyNotJSON},
		{"two objects", "application/json", `{"inputs":{}}{"inputs":{}}`, nil, 400, MsgBodyNotJSON},
		{"array body", "application/json", `[{"inputs":{}}]`, product, 400, MsgBodyNotObject},
		{"string body", "application/json", `"inputs"`, product, 400, MsgBodyNotObject},
		{"null body", "application/json", `null`, product, 400, MsgBodyNotObject},
		{"inputs missing", "application/json", `{"Premium":1,"Age":2}`, product, 400, MsgNoInputs},
		{"inputs wrong case", "application/json", `{"Inputs":{"Premium":1,"Age":2}}`, product, 400, MsgNoInputs},
		{"inputs null", "application/json", `{"inputs":null}`, product, 400, MsgInputsNotObject},
		{"inputs array", "application/json", `{"inputs":[1,2]}`, product, 400, MsgInputsNotObject},
		{"inputs string", "application/json", `{"inputs":"Premium"}`, product, 400, MsgInputsNotObject},
		{"text/plain", "text/plain", `{"inputs":{}}`, nil, 415, MsgUnsupportedMediaType},
		{"form", "application/x-www-form-urlencoded", `inputs=1`, nil, 415, MsgUnsupportedMediaType},
		{"bad content type", "application/json; =", `{"inputs":{}}`, nil, 415, MsgUnsupportedMediaType},
		{"too large", "application/json", `{"inputs":{"Premium":"` + strings.Repeat("x", 100) + `"}}`, nil, 413, errorsjson.MsgBodyTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ran bool
			var downstream []byte
			var inputs map[string]json.RawMessage
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ran = true
				inputs, _ = InputsFrom(r.Context())
				downstream, _ = io.ReadAll(r.Body)
				if r.ContentLength != int64(len(downstream)) {
					t.Errorf("ContentLength = %d, body has %d bytes", r.ContentLength, len(downstream))
				}
				again, err := r.GetBody()
				if err != nil {
					t.Fatal(err)
				}
				if b, _ := io.ReadAll(again); string(b) != string(downstream) {
					t.Errorf("GetBody gives %q, Body gave %q", b, downstream)
				}
			})
			h := Inputs(InputConfig{MaxBytes: 100})(next)
			req := httptest.NewRequest("POST", "/api/quote", strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.product != nil {
				req = req.WithContext(contextWithProduct(req, tt.product))
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if tt.msg != "" {
				assertError(t, rec, tt.status, tt.msg)
				if ran {
					t.Error("next ran for a refused request")
				}
				if strings.Contains(rec.Body.String(), "x=") {
					t.Error("the error echoes the body")
				}
				return
			}
			if !ran || rec.Code != 200 {
				t.Fatalf("status %d, next ran %v; want 200 and next", rec.Code, ran)
			}
			if string(downstream) != tt.body {
				t.Errorf("next read %q, want the whole body %q", downstream, tt.body)
			}
			if inputs == nil {
				t.Error("InputsFrom gives no inputs")
			}
		})
	}
}

func contextWithProduct(r *http.Request, p *Product) context.Context {
	ctx, _ := withProduct(r.Context(), p)
	return ctx
}

func TestInputsUnknownLength(t *testing.T) {
	// A chunked body (ContentLength -1) over the bound is caught while read.
	h := Inputs(InputConfig{MaxBytes: 10})(&okHandler{})
	req := httptest.NewRequest("POST", "/", io.MultiReader(strings.NewReader(`{"inputs":{"a":"`), strings.NewReader(strings.Repeat("b", 20)+`"}}`)))
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assertError(t, rec, 413, errorsjson.MsgBodyTooLarge)
}

func TestInputsDefaultBound(t *testing.T) {
	h := Inputs(InputConfig{})(&okHandler{})
	big := `{"inputs":{"a":"` + strings.Repeat("b", DefaultMaxBytes) + `"}}`
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/", strings.NewReader(big)))
	assertError(t, rec, 413, errorsjson.MsgBodyTooLarge)

	fits := `{"inputs":{"a":"` + strings.Repeat("b", DefaultMaxBytes-100) + `"}}`
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/", strings.NewReader(fits)))
	if rec.Code != 200 {
		t.Errorf("a body under 1 MiB: status %d, want 200", rec.Code)
	}
}

func TestInputsCustomRequired(t *testing.T) {
	h := Inputs(InputConfig{Required: func(*http.Request) []string { return []string{"Zip"} }})(&okHandler{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/", strings.NewReader(`{"inputs":{}}`)))
	assertError(t, rec, 400, "Missing required input field: Zip")
}

// TestInputsOverRealServer checks the body reaches a handler through a real
// socket, and that the connection's reads of it are bounded.
func TestInputsOverRealServer(t *testing.T) {
	srv := httptest.NewServer(Inputs(InputConfig{MaxBytes: 64})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	})))
	defer srv.Close()
	for body, want := range map[string]int{`{"inputs":{"a":1}}`: 200, `{"inputs":{"a":"` + strings.Repeat("x", 100) + `"}}`: 413} {
		resp, err := http.Post(srv.URL, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("status %d, want %d", resp.StatusCode, want)
		}
		if want == 200 && string(got) != body {
			t.Errorf("handler read %q, want %q", got, body)
		}
	}
}

// TestInputsContentLengthWrong: a handler called directly with a
// ContentLength that does not match its body (net/http's server never does
// that) still gets the whole body read, within the bound, or a 400.
func TestInputsContentLengthWrong(t *testing.T) {
	const body = `{"inputs":{"a":1}}`
	var seen string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen = string(b)
	})
	for _, tt := range []struct {
		name          string
		contentLength int64
		max           int64
		status        int
	}{
		{"exact", int64(len(body)), 0, 200},
		{"announced shorter", 5, 0, 200},
		{"announced shorter, body over the bound", 5, 10, 413},
		{"announced longer", int64(len(body)) + 10, 0, 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			seen = ""
			req := httptest.NewRequest("POST", "/", strings.NewReader(body))
			req.ContentLength = tt.contentLength
			rec := httptest.NewRecorder()
			Inputs(InputConfig{MaxBytes: tt.max})(next).ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tt.status, rec.Body)
			}
			if tt.status == 200 && seen != body {
				t.Errorf("next read %q, want the whole body", seen)
			}
		})
	}
}

// benchInputsBodies are the bodies the Inputs benchmarks read: a typical
// request and one with more members.
var benchInputsBodies = []struct {
	name, body string
	required   []string
}{
	{"typical", `{"inputs":{"Premium":100000,"Age":"40"}}`, []string{"Premium", "Age"}},
	{"twenty fields", `{"meta":{"client":"web","v":2},"inputs":{` + benchFields(20) + `}}`, []string{"Field0", "Field1"}},
}

func benchFields(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"Field%d":"value %d"`, i, i)
	}
	return b.String()
}

// BenchmarkInputs measures the middleware on a body of announced length, as
// net/http's server hands it over.
func BenchmarkInputs(b *testing.B) {
	for _, bb := range benchInputsBodies {
		b.Run(bb.name, func(b *testing.B) {
			required := func(*http.Request) []string { return bb.required }
			h := Inputs(InputConfig{Required: required})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			body := strings.NewReader(bb.body)
			req := httptest.NewRequest("POST", "/api/quote", body)
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			b.ReportAllocs()
			b.SetBytes(int64(len(bb.body)))
			for b.Loop() {
				body.Reset(bb.body)
				req.Body = io.NopCloser(body)
				req.ContentLength = int64(len(bb.body))
				h.ServeHTTP(w, req)
			}
			if w.Code != 200 {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		})
	}
}

// BenchmarkInputsParse measures the scanner alone.
func BenchmarkInputsParse(b *testing.B) {
	for _, bb := range benchInputsBodies {
		b.Run(bb.name, func(b *testing.B) {
			body := []byte(bb.body)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, msg := parseInputs(body, bb.required); msg != "" {
					b.Fatal(msg)
				}
			}
		})
	}
}
