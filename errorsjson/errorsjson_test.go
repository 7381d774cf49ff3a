package errorsjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"github.com/google/uuid"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// decode returns the error body of rec, failing the test unless it is the one
// JSON shape with the headers Write promises.
func decode(t *testing.T, rec *httptest.ResponseRecorder) Body {
	t.Helper()
	if got := rec.Header().Get("Content-Type"); got != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", got)
	}
	if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
	}
	var b Body
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("body %q is not the JSON error shape: %v", rec.Body.String(), err)
	}
	return b
}

func TestWrite(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		message  string
		id       string
		wantBody string
	}{
		{"plain", 401, MsgNoKey, "", `{"error":"No API key provided"}` + "\n"},
		{"with request id", 404, MsgProductNotFound, "abc-1", `{"error":"Product not found","request_id":"abc-1"}` + "\n"},
		{"escaped", 400, `Missing required input field: "A<b>"`, "", `{"error":"Missing required input field: \"A\u003cb\u003e\""}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tt.id != "" {
				r.Header.Set(HeaderRequestID, tt.id)
			}
			rec := httptest.NewRecorder()
			RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "7") // set earlier by a layer: must survive
				w.Header().Set("Content-Encoding", "gzip")
				Write(w, r, tt.status, tt.message)
			})).ServeHTTP(rec, r)
			if tt.id == "" {
				// A fresh id was generated; put it into the expected body.
				id := rec.Header().Get(HeaderRequestID)
				tt.wantBody = strings.TrimSuffix(tt.wantBody, "}\n") + `,"request_id":"` + id + `"}` + "\n"
			}
			if rec.Code != tt.status {
				t.Errorf("status = %d, want %d", rec.Code, tt.status)
			}
			if got := rec.Body.String(); got != tt.wantBody {
				t.Errorf("body = %q, want %q", got, tt.wantBody)
			}
			b := decode(t, rec)
			if b.Error != tt.message {
				t.Errorf("error = %q, want %q", b.Error, tt.message)
			}
			if got := rec.Header().Get("Retry-After"); got != "7" {
				t.Errorf("Retry-After = %q, want the earlier layer's 7", got)
			}
			if got := rec.Header().Get("Content-Encoding"); got != "" {
				t.Errorf("Content-Encoding = %q, want it removed", got)
			}
			if got, want := rec.Header().Get("Content-Length"), strconv.Itoa(len(tt.wantBody)); got != want {
				t.Errorf("Content-Length = %q, want %s", got, want)
			}
		})
	}
}

func TestWriteWithoutRequest(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, nil, 500, MsgInternal)
	if got, want := rec.Body.String(), `{"error":"Internal server error"}`+"\n"; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
}

func TestRequestID(t *testing.T) {
	tests := []struct {
		name     string
		incoming []string
		keep     bool
	}{
		{"none", nil, false},
		{"well formed", []string{"req-123_abc.def:9"}, true},
		{"uuid", []string{"0b8f4b1e-3f5a-4c55-9d5e-1c2d3e4f5a6b"}, true},
		{"empty", []string{""}, false},
		{"space", []string{"a b"}, false},
		{"newline", []string{"a\nb"}, false},
		{"too long", []string{strings.Repeat("a", 129)}, false},
		{"longest kept", []string{strings.Repeat("a", 128)}, true},
		{"non ascii", []string{"é"}, false},
		{"json breaking", []string{`a"b`}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			for _, v := range tt.incoming {
				r.Header.Add(HeaderRequestID, v)
			}
			var seen string
			rec := httptest.NewRecorder()
			RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = RequestIDFrom(r.Context())
			})).ServeHTTP(rec, r)
			got := rec.Header().Get(HeaderRequestID)
			if got != seen {
				t.Errorf("header id %q != context id %q", got, seen)
			}
			if tt.keep {
				if got != tt.incoming[0] {
					t.Errorf("id = %q, want the incoming %q kept", got, tt.incoming[0])
				}
				return
			}
			if len(got) != 36 || strings.Count(got, "-") != 4 {
				t.Errorf("id = %q, want a new UUID", got)
			}
		})
	}
}

// TestRequestIDAllocations: the id costs the request four allocations, and a
// new id two more (uuid.NewString's UUID and string): the copy of the request
// (WithContext), the context.WithValue context and the id made an interface
// for it, and the header's []string value; none for the header's name, in or
// out.
func TestRequestIDAllocations(t *testing.T) {
	if http.CanonicalHeaderKey(HeaderRequestID) != canonicalRequestID {
		t.Fatalf("canonicalRequestID = %q, want %q", canonicalRequestID, http.CanonicalHeaderKey(HeaderRequestID))
	}
	h := RequestID(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, tt := range []struct {
		name     string
		incoming string
		want     float64
	}{
		{"new id", "", 6},
		{"incoming id kept", "req-123", 4},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if tt.incoming != "" {
			r.Header.Set(HeaderRequestID, tt.incoming)
		}
		w := httptest.NewRecorder()
		if got := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) }); got != tt.want {
			t.Errorf("%s: %v allocations a request, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRequestIDFromEmptyContext(t *testing.T) {
	if got := RequestIDFrom(httptest.NewRequest("GET", "/", nil).Context()); got != "" {
		t.Errorf("RequestIDFrom = %q, want empty", got)
	}
}

func TestMessage(t *testing.T) {
	tests := []struct {
		status int
		want   string
	}{
		{404, MsgNotFound},
		{405, MsgMethodNotAllowed},
		{413, MsgBodyTooLarge},
		{429, MsgRateLimited},
		{431, MsgHeaderTooLarge},
		{500, MsgInternal},
		{503, MsgUpstreamUnavailable},
		{418, "I'm a teapot"},
		{599, "Error 599"},
	}
	for _, tt := range tests {
		if got := Message(tt.status); got != tt.want {
			t.Errorf("Message(%d) = %q, want %q", tt.status, got, tt.want)
		}
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	rec := httptest.NewRecorder()
	NotFound(rec, httptest.NewRequest("GET", "/nope", nil))
	if rec.Code != 404 || decode(t, rec).Error != MsgNotFound {
		t.Errorf("NotFound: %d %q", rec.Code, rec.Body.String())
	}

	rec = httptest.NewRecorder()
	MethodNotAllowed("GET", "HEAD").ServeHTTP(rec, httptest.NewRequest("POST", "/health", nil))
	if rec.Code != 405 || decode(t, rec).Error != MsgMethodNotAllowed {
		t.Errorf("MethodNotAllowed: %d %q", rec.Code, rec.Body.String())
	}
	if got := rec.Header().Get("Allow"); got != "GET, HEAD" {
		t.Errorf("Allow = %q, want %q", got, "GET, HEAD")
	}
}

func TestRewrite(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/{productSlug}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("productSlug") {
		case "text-error":
			http.Error(w, "secret upstream detail", http.StatusBadGateway)
		case "short-text-error":
			http.Error(w, "no such user", http.StatusNotFound)
		case "json-error":
			Write(w, r, http.StatusForbidden, MsgForbidden)
		case "ok":
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("fine"))
		case "html-error":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusTeapot)
			w.Write([]byte("<h1>no</h1>"))
		case "problem-json":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"title":"x"}`))
		case "too-large":
			http.MaxBytesHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, err := r.Body.Read(make([]byte, 100)); err != nil {
					var mbe *http.MaxBytesError
					if errors.As(err, &mbe) {
						http.Error(w, "too large", http.StatusRequestEntityTooLarge)
					}
				}
			}), 1).ServeHTTP(w, r)
		}
	})
	h := Rewrite(mux)

	tests := []struct {
		name      string
		method    string
		path      string
		body      string
		wantCode  int
		wantBody  string // exact; "" for a JSON error checked through wantError
		wantError string
		wantAllow string
	}{
		{"unknown route", "GET", "/nowhere", "", 404, "", MsgNotFound, ""},
		{"wrong method", "GET", "/api/x", "", 405, "", MsgMethodNotAllowed, "POST"},
		{"http.Error", "POST", "/api/text-error", "", 502, "", "Bad Gateway", ""},
		{"short printable message replaced too", "POST", "/api/short-text-error", "", 404, "", MsgNotFound, ""},
		{"html error", "POST", "/api/html-error", "", 418, "", "I'm a teapot", ""},
		{"json error kept", "POST", "/api/json-error", "", 403, "", MsgForbidden, ""},
		{"success untouched", "POST", "/api/ok", "", 200, "fine", "", ""},
		{"problem json kept", "POST", "/api/problem-json", "", 409, `{"title":"x"}`, "", ""},
		{"max bytes", "POST", "/api/too-large", "0123456789", 413, "", MsgBodyTooLarge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body)))
			if rec.Code != tt.wantCode {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantCode)
			}
			if tt.wantBody != "" {
				if got := rec.Body.String(); got != tt.wantBody {
					t.Errorf("body = %q, want %q", got, tt.wantBody)
				}
				return
			}
			if got := decode(t, rec).Error; got != tt.wantError {
				t.Errorf("error = %q, want %q", got, tt.wantError)
			}
			if strings.Contains(rec.Body.String(), "secret") {
				t.Errorf("body %q leaks the handler's plain text", rec.Body.String())
			}
			if got := rec.Header().Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
		})
	}
}

func TestRecover(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))

	t.Run("panic becomes 500", func(t *testing.T) {
		logs.Reset()
		h := RequestID(Recover(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-RateLimit-Limit", "60")
			panic("boom with ila_secretkey")
		})))
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/api/x", nil)
		req.Header.Set(HeaderRequestID, "rid-1")
		h.ServeHTTP(rec, req)
		if rec.Code != 500 {
			t.Fatalf("status = %d, want 500", rec.Code)
		}
		if got, want := rec.Body.String(), `{"error":"Internal server error","request_id":"rid-1"}`+"\n"; got != want {
			t.Errorf("body = %q, want %q", got, want)
		}
		if got := rec.Header().Get("X-RateLimit-Limit"); got != "60" {
			t.Errorf("X-RateLimit-Limit = %q, want it kept", got)
		}
		var entry map[string]any
		if err := json.Unmarshal(logs.Bytes(), &entry); err != nil {
			t.Fatalf("log %q: %v", logs.String(), err)
		}
		if entry["request_id"] != "rid-1" || entry["level"] != "ERROR" || !strings.Contains(entry["stack"].(string), "TestRecover") {
			t.Errorf("log entry lacks request id, level or stack: %v", entry)
		}
	})

	t.Run("abort handler passes", func(t *testing.T) {
		h := Recover(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			panic(http.ErrAbortHandler)
		}))
		defer func() {
			if v := recover(); v != http.ErrAbortHandler {
				t.Errorf("recovered %v, want http.ErrAbortHandler passed on", v)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	})

	t.Run("panic after header aborts", func(t *testing.T) {
		h := Recover(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			w.Write([]byte("partial"))
			panic("late")
		}))
		defer func() {
			if v := recover(); v != http.ErrAbortHandler {
				t.Errorf("recovered %v, want http.ErrAbortHandler", v)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	})

	t.Run("server keeps serving", func(t *testing.T) {
		srv := httptest.NewServer(Recover(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/panic" {
				panic("boom")
			}
			w.Write([]byte("ok"))
		})))
		defer srv.Close()
		for _, path := range []string{"/panic", "/ok", "/panic", "/ok"} {
			resp, err := srv.Client().Get(srv.URL + path)
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			resp.Body.Close()
			want := 200
			if path == "/panic" {
				want = 500
			}
			if resp.StatusCode != want {
				t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
			}
		}
	})
}

func TestGuardSharedAndFlush(t *testing.T) {
	var inner http.ResponseWriter
	h := Recover(nil)(Rewrite(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner = w
		w.(http.Flusher).Flush()
		w.Write([]byte("streamed"))
	})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if _, ok := inner.(*guard); !ok {
		t.Fatalf("inner writer is %T, want *guard", inner)
	}
	if inner.(*guard).ResponseWriter != rec {
		t.Errorf("Recover and Rewrite stacked twice: the guard does not wrap the recorder directly")
	}
	if !rec.Flushed || rec.Body.String() != "streamed" || rec.Code != 200 {
		t.Errorf("flushed=%v code=%d body=%q", rec.Flushed, rec.Code, rec.Body.String())
	}
}

// TestNewRequestIDIsUUIDv4: a new id is a random (version 4, RFC 9562
// variant) UUID, and two are never the same.
func TestNewRequestIDIsUUIDv4(t *testing.T) {
	h := RequestID(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	seen := make(map[string]bool)
	for range 1000 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		id := rec.Header().Get(HeaderRequestID)
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 4 || u.Variant() != uuid.RFC4122 || u.String() != id {
			t.Fatalf("new id %q: not a canonical version 4 UUID (%v)", id, err)
		}
		if seen[id] {
			t.Fatalf("id %q made twice", id)
		}
		seen[id] = true
	}
}

// BenchmarkRequestID is RequestID giving a request without an id a new one,
// in front of a handler that reads it.
func BenchmarkRequestID(b *testing.B) {
	h := RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if RequestIDFrom(r.Context()) == "" {
			b.Fatal("no request id")
		}
	}))
	r := httptest.NewRequest("GET", "/", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

func TestCanonicalPath(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "next") })
	h := RequestID(CanonicalPath(next))
	tests := []struct {
		method, target string
		status         int
		body           string
	}{
		{"POST", "/api/quote", 200, "next"},
		{"GET", "/", 200, "next"},
		{"GET", "/health/", 200, "next"}, // a trailing slash is canonical: the router decides
		{"POST", "/api/%2e/quote", 200, "next"},
		{"CONNECT", "/api/./quote", 200, "next"}, // not cleaned by ServeMux either
		{"POST", "/api/./quote", 404, `{"error":"Not found","request_id":"c1"}` + "\n"},
		{"POST", "/x/../api/quote", 404, `{"error":"Not found","request_id":"c1"}` + "\n"},
		{"POST", "//api/quote", 404, `{"error":"Not found","request_id":"c1"}` + "\n"},
		{"POST", "/api/quote/.", 404, `{"error":"Not found","request_id":"c1"}` + "\n"},
		{"POST", "/api/quote/..", 404, `{"error":"Not found","request_id":"c1"}` + "\n"},
		{"POST", "/api/quote//", 404, `{"error":"Not found","request_id":"c1"}` + "\n"},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, tt.target, nil)
		req.Header.Set("X-Request-ID", "c1")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		ct := rec.Header().Get("Content-Type")
		if rec.Code != tt.status || rec.Body.String() != tt.body || (tt.status == 404 && ct != "application/json") {
			t.Errorf("%s %s: %d %q (Content-Type %q), want %d %q", tt.method, tt.target, rec.Code, rec.Body, ct, tt.status, tt.body)
		}
	}
}

func TestMaxHeaderBytes(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "next") })
	// "GET /x HTTP/1.1\r\n" (17) + "Host: example.com\r\n" (19) +
	// "X-Big: …\r\n" (9 + len) + "\r\n" (2): 47 bytes and the value.
	const limit = 100
	tests := []struct {
		name   string
		limit  int
		value  int // bytes of X-Big's value
		status int
		body   string
	}{
		{"at the limit", limit, limit - 47, 200, "next"},
		{"a byte over", limit, limit - 46, 431, `{"error":"Request header fields too large","request_id":"m1"}` + "\n"},
		{"no limit", 0, 1 << 20, 200, "next"},
	}
	for _, tt := range tests {
		h := RequestID(MaxHeaderBytes(tt.limit)(next))
		req := httptest.NewRequest("GET", "/x", nil)
		req.Header.Set("X-Request-ID", "m1") // "X-Request-Id: m1\r\n": 18 more
		req.Header.Set("X-Big", strings.Repeat("a", tt.value-18))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		ct := rec.Header().Get("Content-Type")
		if rec.Code != tt.status || rec.Body.String() != tt.body || (tt.status == 431 && ct != "application/json") {
			t.Errorf("%s: %d %q (Content-Type %q), want %d %q", tt.name, rec.Code, rec.Body, ct, tt.status, tt.body)
		}
	}
}
