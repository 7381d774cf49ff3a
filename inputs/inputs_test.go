package inputs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/errorsjson"
	"github.com/gatehouse-go/gatehouse/internal/authtest"
)

func TestInputs(t *testing.T) {
	product := &auth.Product{Slug: "quote", Active: true, Required: []string{"Premium", "Age"}}
	tests := []struct {
		name        string
		contentType string
		body        string
		product     *auth.Product // nil: none in the context
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
		{"inputs twice", "application/json", `{"inputs":{"Premium":1,"Age":2},"inputs":{"Premium":9,"Age":2}}`, product, 400, MsgAmbiguousInputs},
		{"Inputs beside inputs", "application/json", `{"inputs":{"Premium":1200,"Age":2},"Inputs":{"Premium":999999}}`, product, 400, MsgAmbiguousInputs},
		{"INPUTS beside inputs", "application/json", `{"INPUTS":{"Premium":999999},"inputs":{"Premium":1200,"Age":2}}`, product, 400, MsgAmbiguousInputs},
		{"long s folds to s", "application/json", `{"inputs":{"Premium":1200,"Age":2},"input` + "\u017f" + `":{"Premium":9}}`, product, 400, MsgAmbiguousInputs},
		{"escaped long s folds to s", "application/json", `{"inputs":{"Premium":1200,"Age":2},"input\u017f":{"Premium":9}}`, product, 400, MsgAmbiguousInputs},
		{"escaped name repeats inputs", "application/json", `{"inputs":{"Premium":1200,"Age":2},"\u0069nputs":{}}`, product, 400, MsgAmbiguousInputs},
		{"dotless i does not fold", "application/json", `{"inputs":{"Premium":1200,"Age":2},"\u0131nputs":{}}`, product, 200, ""},
		{"other names collide", "application/json", `{"inputs":{"Premium":1,"Age":2},"a":1,"A":2}`, product, 400, MsgAmbiguousNames},
		{"input null beside its name", "application/json", `{"inputs":{"Premium":1200,"premium":null,"Age":2}}`, product, 400, "Duplicate or ambiguous input field: Premium"},
		{"input repeated", "application/json", `{"inputs":{"Premium":1,"Age":2,"Age":null}}`, product, 400, "Duplicate or ambiguous input field: Age"},
		{"first ambiguous required named", "application/json", `{"inputs":{"AGE":1,"Age":2,"Premium":1,"PREMIUM":1}}`, product, 400, "Duplicate or ambiguous input field: Premium"},
		{"kelvin sign folds to k", "application/json", `{"inputs":{"Premium":1,"Age":2,"\u212aey":1,"key":2}}`, product, 400, MsgAmbiguousNames},
		{"invalid UTF-8 names decode alike", "application/json", `{"inputs":{"Premium":1,"Age":2,"x` + "\xff" + `":1,"x` + "\xfe" + `":2}}`, product, 400, MsgAmbiguousNames},
		{"accent does not fold", "application/json", `{"inputs":{"Premium":1,"Age":2,"Pr\u00e9mium":3}}`, product, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ran bool
			var downstream []byte
			var inputs map[string]json.RawMessage
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ran = true
				inputs, _ = From(r.Context())
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
			h := Middleware(Config{MaxBytes: 100})(next)
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
				authtest.AssertError(t, rec, tt.status, tt.msg)
				if ran {
					t.Error("next ran for a refused request")
				}
				// Byte for byte: nothing of the body is echoed.
				want, _ := json.Marshal(errorsjson.Body{Error: tt.msg})
				if got := rec.Body.String(); got != string(want)+"\n" {
					t.Errorf("body = %q, want %q", got, want)
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
				t.Error("From gives no inputs")
			}
		})
	}
}

func TestInputsUnknownLength(t *testing.T) {
	// A chunked body (ContentLength -1) over the bound is caught while read.
	h := Middleware(Config{MaxBytes: 10})(ok)
	req := httptest.NewRequest("POST", "/", io.MultiReader(strings.NewReader(`{"inputs":{"a":"`), strings.NewReader(strings.Repeat("b", 20)+`"}}`)))
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	authtest.AssertError(t, rec, 413, errorsjson.MsgBodyTooLarge)
}

func TestInputsDefaultBound(t *testing.T) {
	h := Middleware(Config{})(ok)
	big := `{"inputs":{"a":"` + strings.Repeat("b", defaultMaxBytes) + `"}}`
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/", strings.NewReader(big)))
	authtest.AssertError(t, rec, 413, errorsjson.MsgBodyTooLarge)

	fits := `{"inputs":{"a":"` + strings.Repeat("b", defaultMaxBytes-100) + `"}}`
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/", strings.NewReader(fits)))
	if rec.Code != 200 {
		t.Errorf("a body under 1 MiB: status %d, want 200", rec.Code)
	}
}

func TestInputsCustomRequired(t *testing.T) {
	h := Middleware(Config{Required: func(*http.Request) []string { return []string{"Zip"} }})(ok)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/", strings.NewReader(`{"inputs":{}}`)))
	authtest.AssertError(t, rec, 400, "Missing required input field: Zip")
}

// TestInputsOverRealServer checks the body reaches a handler through a real
// socket, and that the connection's reads of it are bounded.
func TestInputsOverRealServer(t *testing.T) {
	srv := httptest.NewServer(Middleware(Config{MaxBytes: 64})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
			Middleware(Config{MaxBytes: tt.max})(next).ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tt.status, rec.Body)
			}
			if tt.status == 200 && seen != body {
				t.Errorf("next read %q, want the whole body", seen)
			}
		})
	}
}

// benchInputsBodies are the bodies the benchmarks of Middleware read: a typical
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
			h := Middleware(Config{Required: required})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
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

// BenchmarkInputsParse measures the scanner alone ("scanner"), beside the
// same answers from encoding/json's Decoder ("encoding-json",
// parseInputsReference): the figure that keeps the scanner (scanner.go).
func BenchmarkInputsParse(b *testing.B) {
	for _, impl := range []struct {
		name  string
		parse func([]byte, []string) (map[string]json.RawMessage, string)
	}{{"scanner", parseInputs}, {"encoding-json", parseInputsReference}} {
		for _, bb := range benchInputsBodies {
			b.Run(impl.name+"/"+bb.name, func(b *testing.B) {
				body := []byte(bb.body)
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					if _, msg := impl.parse(body, bb.required); msg != "" {
						b.Fatal(msg)
					}
				}
			})
		}
	}
}

// TestInputsUpstreamDecodesWhatWasChecked: over a real socket, a body whose
// names encoding/json would fold together never reaches an upstream that
// decodes it into a struct; the body it would decode differently is refused
// with the contract's error shape, and a plain body reaches it unchanged.
func TestInputsUpstreamDecodesWhatWasChecked(t *testing.T) {
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Decodes as a Go upstream would.
		var req struct{ Inputs struct{ Premium float64 } }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad", 500)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "premium=%v", req.Inputs.Premium)
	})
	required := func(*http.Request) []string { return []string{"Premium"} }
	srv := httptest.NewServer(Middleware(Config{Required: required})(upstream))
	defer srv.Close()

	refused := func(msg string) string {
		b, _ := json.Marshal(errorsjson.Body{Error: msg})
		return string(b) + "\n"
	}
	tests := []struct {
		name   string
		body   string
		status int
		want   string
	}{
		{"plain", `{"inputs":{"Premium":1200}}`, 200, "premium=1200"},
		{"Inputs after inputs", `{"inputs":{"Premium":1200},"Inputs":{"Premium":999999}}`, 400, refused(MsgAmbiguousInputs)},
		{"INPUTS after inputs", `{"inputs":{"Premium":1200},"INPUTS":{"Premium":999999}}`, 400, refused(MsgAmbiguousInputs)},
		{"long s", `{"inputs":{"Premium":1200},"input` + "\u017f" + `":{"Premium":999999}}`, 400, refused(MsgAmbiguousInputs)},
		{"inputs twice", `{"inputs":{"Premium":1200},"inputs":{"Premium":999999}}`, 400, refused(MsgAmbiguousInputs)},
		{"null beside the field", `{"inputs":{"Premium":1200,"premium":null}}`, 400, refused(MsgAmbiguousInputPrefix + "Premium")},
		{"field twice", `{"inputs":{"Premium":1200,"Premium":999999}}`, 400, refused(MsgAmbiguousInputPrefix + "Premium")},
		{"kelvin sign", `{"inputs":{"Premium":1200,"` + "\u212a" + `ey":1,"key":2}}`, 400, refused(MsgAmbiguousNames)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(srv.URL+"/api/quote", "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || string(got) != tt.want {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, got, tt.status, tt.want)
			}
			wantHeader := http.Header{
				"Content-Type":   {"text/plain"},
				"Content-Length": {strconv.Itoa(len(tt.want))},
			}
			if tt.status != 200 {
				wantHeader = http.Header{
					"Content-Type":           {"application/json"},
					"Content-Length":         {strconv.Itoa(len(tt.want))},
					"X-Content-Type-Options": {"nosniff"},
					"Cache-Control":          {"no-store"},
				}
			}
			resp.Header.Del("Date")
			if !reflect.DeepEqual(resp.Header, wantHeader) {
				t.Errorf("header %v, want %v", resp.Header, wantHeader)
			}
		})
	}
}

// readingBody signals on reading once the first bytes of the body have been
// read: the reader is then waiting for bytes that are not coming.
type readingBody struct {
	io.ReadCloser
	got     bool
	reading chan<- struct{}
}

func (b *readingBody) Read(p []byte) (int, error) {
	if b.got && b.reading != nil {
		b.reading <- struct{}{}
		b.reading = nil
	}
	n, err := b.ReadCloser.Read(p)
	b.got = b.got || n > 0
	return n, err
}

// TestInputsMemoryFollowsBytes: callers that announce a megabyte and send one
// byte hold memory for the byte, not for the megabyte. Over real connections,
// the heap grows by far less than conns × 1 MiB while every request waits in
// the middleware's read.
func TestInputsMemoryFollowsBytes(t *testing.T) {
	const (
		conns     = 100
		announced = defaultMaxBytes
		perConn   = 64 << 10 // the bound: a connection's own buffers and a few KiB of body
	)
	reading := make(chan struct{}, conns)
	inner := Middleware(Config{})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = &readingBody{ReadCloser: r.Body, reading: reading}
		inner.ServeHTTP(w, r)
	}))
	defer srv.Close()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range conns {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /api/quote HTTP/1.1\r\nHost: gatehouse\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", announced)
	}
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for i := range conns {
		select {
		case <-reading:
		case <-timeout.C:
			t.Fatalf("only %d of %d requests reached the body's read in 10s", i, conns)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew %d KiB for %d connections announcing %d KiB each", grew>>10, conns, announced>>10)
	if grew > conns*perConn {
		t.Errorf("heap grew %d KiB for %d connections that sent one byte each, want under %d KiB", grew>>10, conns, conns*perConn>>10)
	}
}

// TestClashesEqualHashes: names whose hashes are equal but which fold apart
// do not clash; the hashes only decide whether the names are compared.
func TestClashesEqualHashes(t *testing.T) {
	for _, tt := range []struct {
		obj    string
		hashes []uint64
		want   []string
	}{
		{`{"a":1,"b":2}`, []uint64{7, 7}, nil},
		{`{"a":1,"b":2,"A":3}`, []uint64{7, 7, 7}, []string{"a"}},
		{`{"a":1,"A":2,"\u017f":3,"S":4,"x":5}`, []uint64{1, 1, 2, 2, 3}, []string{"A", "S"}},
		{`{"a":1,"A":2}`, []uint64{1, 2}, nil}, // distinct hashes: not compared
	} {
		var got []string
		for _, n := range clashes([]byte(tt.obj), tt.hashes) {
			got = append(got, strings.ToUpper(string(n)))
		}
		var want []string
		for _, n := range tt.want {
			want = append(want, strings.ToUpper(n))
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("clashes(%s, %v) = %q, want %q", tt.obj, tt.hashes, got, want)
		}
	}
}

// TestReadBodyBuffer: a body that fits in firstBodyBuffer is read into one
// buffer of its size (plus the byte that sees its end), and a larger one into
// a buffer no larger than that.
func TestReadBodyBuffer(t *testing.T) {
	for _, n := range []int{1, 100, firstBodyBuffer - 1, firstBodyBuffer, 3*firstBodyBuffer + 5, defaultMaxBytes} {
		body := []byte(strings.Repeat("x", n))
		src := bytes.NewReader(body)
		r := httptest.NewRequest("POST", "/", src)
		rc := io.NopCloser(src)
		var got []byte
		var err error
		allocs := testing.AllocsPerRun(5, func() {
			src.Reset(body)
			r.Body = rc
			r.ContentLength = int64(n)
			got, err = readBody(nil, r, defaultMaxBytes)
		})
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("%d bytes: read %d bytes, %v", n, len(got), err)
		}
		if cap(got) > n+1 {
			t.Errorf("%d bytes: buffer of %d", n, cap(got))
		}
		// MaxBytesReader's own allocation and the buffer's.
		if n < firstBodyBuffer && allocs != 2 {
			t.Errorf("%d bytes: %v allocations, want 2", n, allocs)
		}
	}
}
