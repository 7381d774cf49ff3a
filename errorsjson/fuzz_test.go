package errorsjson

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"unicode/utf8"
)

// FuzzRequestIDAndWrite checks that whatever id a caller sends, the id kept is
// safe to echo, and that whatever message is written the body stays one valid
// JSON object carrying it.
func FuzzRequestIDAndWrite(f *testing.F) {
	f.Add("req-1", "Missing required input field: Premium")
	f.Add("a\"b\n", "<script>\x00\xff")
	f.Fuzz(func(t *testing.T, id, message string) {
		if ValidRequestID(id) {
			for i := 0; i < len(id); i++ {
				if id[i] < 0x21 || id[i] > 0x7e || id[i] == '"' || id[i] == '\\' {
					t.Fatalf("ValidRequestID(%q) accepted byte %q", id, id[i])
				}
			}
		}
		rec := httptest.NewRecorder()
		Write(rec, nil, 400, message)
		var b Body
		if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
			t.Fatalf("body %q: %v", rec.Body.String(), err)
		}
		if utf8.ValidString(message) && b.Error != message {
			t.Fatalf("error = %q, want %q", b.Error, message)
		}
	})
}
