package errorsjson_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gatehouse-go/gatehouse/errorsjson"
)

func ExampleWrite() {
	rec := httptest.NewRecorder()
	errorsjson.Write(rec, httptest.NewRequest("POST", "/api/x", nil), http.StatusNotFound, errorsjson.MsgProductNotFound)
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Print(rec.Body.String())
	// Output:
	// 404 application/json
	// {"error":"Product not found"}
}

func ExampleRewrite() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {})
	h := errorsjson.Rewrite(mux) // ServeMux's own 404 and 405 become JSON

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/health", nil))
	fmt.Println(rec.Code, rec.Header().Get("Allow"))
	fmt.Print(rec.Body.String())
	// Output:
	// 405 GET, HEAD
	// {"error":"Method not allowed"}
}

func ExampleRecover() {
	h := errorsjson.RequestID(errorsjson.Recover(nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("a bug")
	})))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-Request-ID", "demo-1")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req) // logs the panic with its stack to slog.Default()
	fmt.Println(rec.Code)
	fmt.Print(rec.Body.String())
	// Output:
	// 500
	// {"error":"Internal server error","request_id":"demo-1"}
}

// RequestID keeps a well-formed incoming X-Request-ID, or makes a new one,
// and every layer below reads it with RequestIDFrom; Write puts it in the
// body.
func ExampleRequestID() {
	h := errorsjson.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		errorsjson.Write(w, r, http.StatusForbidden, errorsjson.MsgForbidden)
	}))
	for _, id := range []string{"req-42", "<script>"} {
		r := httptest.NewRequest("POST", "/api/x", nil)
		r.Header.Set(errorsjson.HeaderRequestID, id)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		got := w.Header().Get(errorsjson.HeaderRequestID)
		if got != id {
			// Not kept: a new random UUID instead.
			fmt.Println(len(got), strings.Contains(w.Body.String(), got))
			continue
		}
		fmt.Println(w.Code, got)
		fmt.Print(w.Body.String())
	}
	// Output:
	// 403 req-42
	// {"error":"Your API key does not have access to this product","request_id":"req-42"}
	// 36 true
}
