// Package authtest is what the tests of the key middleware over a store share
// (auth's, and sqlstore's on a real database): requests sent at once, their
// answers checked whole, and the log lines read back; and the check of a
// refusal's JSON error shape that auth's and inputs' tests share.
//
//	logger, logs := authtest.NewLog()
//	h := errorsjson.RequestID(auth.Middleware(auth.Config{Store: store, Logger: logger})(next))
//	b := authtest.Start(context.Background(), h, plain, "b")
//	authtest.AssertAnswer(t, "B", <-b, 503, authtest.UnavailableBody("b"), "1")
package authtest

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-go/gatehouse/errorsjson"
)

// Start sends h a request with the API key plain and the request id id,
// under ctx, in a goroutine of its own, and returns a channel that gives its
// answer.
func Start(ctx context.Context, h http.Handler, plain, id string) <-chan *httptest.ResponseRecorder {
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		req := httptest.NewRequestWithContext(ctx, "POST", "/api/quote", nil)
		req.Header.Set("X-API-Key", plain)
		req.Header.Set(errorsjson.HeaderRequestID, id)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		done <- rec
	}()
	return done
}

// AssertAnswer checks rec's status, body and Retry-After ("" for none); who
// names the request in the failure.
func AssertAnswer(t testing.TB, who string, rec *httptest.ResponseRecorder, status int, body, retryAfter string) {
	t.Helper()
	if rec.Code != status || rec.Body.String() != body || rec.Header().Get("Retry-After") != retryAfter {
		t.Errorf("%s: %d %q, Retry-After %q; want %d %q, %q", who, rec.Code, rec.Body.String(), rec.Header().Get("Retry-After"), status, body, retryAfter)
	}
}

// Post sends h a POST of body to path with the API key plain, and returns
// its answer.
func Post(h http.Handler, plain, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.Header.Set("X-API-Key", plain)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// AssertError checks that rec holds the JSON error shape with status and msg.
func AssertError(t testing.TB, rec *httptest.ResponseRecorder, status int, msg string) {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status = %d, want %d (body %q)", rec.Code, status, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var b errorsjson.Body
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("body %q is not JSON: %v", rec.Body.String(), err)
	}
	if b.Error != msg {
		t.Errorf("error = %q, want %q", b.Error, msg)
	}
}

// UnavailableBody is the JSON body of a 503 to the request with id.
func UnavailableBody(id string) string {
	return `{"error":"` + errorsjson.MsgUpstreamUnavailable + `","request_id":"` + id + `"}` + "\n"
}

// Log holds the lines of the logger [NewLog] returns. It is safe for
// concurrent use.
type Log struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// NewLog returns a text logger at info level whose lines, without their time,
// are kept in the returned Log.
func NewLog() (*slog.Logger, *Log) {
	l := &Log{}
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})), l
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// Lines returns the lines logged so far, sorted (requests answered at once
// log in no particular order), or nil.
func (l *Log) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.TrimSpace(l.buf.String())
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	slices.Sort(lines)
	return lines
}
