package errorsjson

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// FuzzRequestIDAndWrite: whatever id and message a request carries, the id
// kept is safe to echo (the caller's own when well formed, else a new UUID),
// and the body Write gives that request is one valid JSON object whose error
// is the message (invalid UTF-8 replaced byte by byte, as encoding/json does)
// and whose request_id is the id the header carries, byte for byte what
// encoding/json makes of a Body.
func FuzzRequestIDAndWrite(f *testing.F) {
	f.Add("req-1", "Missing required input field: Premium")
	f.Add("a\"b\n", "<script>\x00\xff")
	f.Add("", "\u2028\u2029&")
	f.Add("req-1\r\nX-Evil: 1", `"},{"error":"x`)
	f.Fuzz(func(t *testing.T, id, message string) {
		if validRequestID(id) {
			for i := 0; i < len(id); i++ {
				if id[i] < 0x21 || id[i] > 0x7e || id[i] == '"' || id[i] == '\\' {
					t.Fatalf("validRequestID(%q) accepted byte %q", id, id[i])
				}
			}
		}
		r := httptest.NewRequest("POST", "/api/quote", nil)
		r.Header.Set(HeaderRequestID, id)
		rec := httptest.NewRecorder()
		RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			Write(w, r, 400, message)
		})).ServeHTTP(rec, r)

		sent := rec.Header().Get(HeaderRequestID)
		switch {
		case validRequestID(id) && sent != id:
			t.Fatalf("well-formed id %q replaced by %q", id, sent)
		case !validRequestID(id) && (len(sent) != 36 || !validRequestID(sent)):
			t.Fatalf("id %q answered with %q, want a new UUID", id, sent)
		}
		var b Body
		dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&b); err != nil || dec.More() {
			t.Fatalf("body %q is not one JSON error object: %v", rec.Body, err)
		}
		if want := string([]rune(message)); b.Error != want {
			t.Fatalf("error = %q, want %q", b.Error, want)
		}
		if b.RequestID != sent {
			t.Fatalf("request_id = %q, header says %q", b.RequestID, sent)
		}
		want, _ := json.Marshal(Body{Error: message, RequestID: sent})
		if got := rec.Body.String(); got != string(want)+"\n" {
			t.Fatalf("body = %q, want %q", got, want)
		}
		if rec.Code != 400 || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Content-Length") != strconv.Itoa(rec.Body.Len()) {
			t.Fatalf("status %d, headers %v", rec.Code, rec.Header())
		}
	})
}
