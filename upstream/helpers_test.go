package upstream

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-go/gatehouse/internal/downport"
)

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

// closedAddr returns a loopback address that refuses every connection until
// t ends: downport's, whose port no other listener can be given meanwhile.
func closedAddr(t *testing.T) string {
	t.Helper()
	hold, addr, err := downport.Reserve()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hold.Close() })
	return addr
}

// serveRecorder sends one caller request through h and returns the recording.
func serveRecorder(h http.Handler, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/api/quote", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}
