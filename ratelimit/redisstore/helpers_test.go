package redisstore

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/ratelimit"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// limitedOKBody is what limitedServer's handler answers.
const limitedOKBody = `{"ok":true}`

// limitedServer serves, on a loopback socket, the rate-limit middleware over
// store, every request charged to key under limits, in front of a handler
// that answers 200 limitedOKBody; and returns its URL and a client with
// clients idle connections. Both are closed when the test ends.
func limitedServer(t *testing.T, store ratelimit.Store, key string, limits ratelimit.Limits, clients int) (string, *http.Client) {
	t.Helper()
	mw := ratelimit.Middleware(ratelimit.Config{
		Store: store,
		Key: func(r *http.Request) (ratelimit.Charge, bool) {
			return ratelimit.Charge{Key: key, Limits: limits}, true
		},
		Logger: quiet(),
	})
	srv := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, limitedOKBody)
	})))
	t.Cleanup(srv.Close)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = clients
	t.Cleanup(tr.CloseIdleConnections)
	return srv.URL, &http.Client{Transport: tr, Timeout: 2 * time.Second}
}
