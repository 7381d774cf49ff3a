package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/errorsjson"
)

const (
	callerKey      = "ila_callersSecretKeyThatMustNotLeak0001"
	upstreamSecret = "Bearer upstream-secret-xyz"
	requestID      = "req-42"
)

// serve sends one caller request through p as the stack would: with a request
// id in the context, the caller's key headers and rate-limit headers already set.
func serve(t *testing.T, p http.Handler, query, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("POST", "/api/quote"+query, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+callerKey)
	r.Header.Set("X-API-Key", callerKey)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Request-ID", requestID)
	rec := httptest.NewRecorder()
	errorsjson.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-RateLimit-Limit", "60") // set by the limiter before the proxy runs
		p.ServeHTTP(w, r)
	})).ServeHTTP(rec, r)
	return rec
}

func errorJSON(msg string) string {
	b, _ := json.Marshal(errorsjson.Body{Error: msg, RequestID: requestID})
	return string(b) + "\n"
}

// noGoroutineLeak fails the test if goroutines started during it are still
// running once it is over (connections closed), after a bounded wait.
func noGoroutineLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}

func TestProxyTranslates(t *testing.T) {
	largePDF := bytes.Repeat([]byte("%PDF-1.4 0123456789abcdef\n"), 200_000) // ~5 MB
	tests := []struct {
		name       string
		query      string
		upstream   http.HandlerFunc
		wantStatus int
		wantBody   string
		wantHeader map[string]string // exact; "" means absent
	}{
		{"success streams through", "?format=json", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-RateLimit-Limit", "999999") // the upstream's own limits: not the caller's
			w.Header().Set("X-Request-Id", "upstream-id")
			w.Write([]byte(`{"status":200,"response_data":{"outputs":{"A":1}}}`))
		}, 200, `{"status":200,"response_data":{"outputs":{"A":1}}}`,
			map[string]string{"Content-Type": "application/json", "X-RateLimit-Limit": "60", "X-Request-Id": requestID}},
		{"large pdf", "?format=pdf", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/pdf")
			w.Header().Set("Content-Disposition", `attachment; filename="quote.pdf"`)
			w.Write(largePDF)
		}, 200, string(largePDF),
			map[string]string{"Content-Type": "application/pdf", "Content-Disposition": `attachment; filename="quote.pdf"`}},
		{"upstream 401", "", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":"token for account 77 expired"}`, http.StatusUnauthorized)
		}, 502, errorJSON(errorsjson.MsgUpstreamAuth), map[string]string{"X-RateLimit-Limit": "60", "Retry-After": ""}},
		{"upstream 403", "", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "forbidden: internal detail", http.StatusForbidden)
		}, 502, errorJSON(errorsjson.MsgUpstreamAuth), map[string]string{"Retry-After": ""}},
		{"upstream 429 with Retry-After", "", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "12")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		}, 503, errorJSON(errorsjson.MsgUpstreamUnavailable), map[string]string{"Retry-After": "12", "X-RateLimit-Limit": "60"}},
		{"upstream 503 without Retry-After", "", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		}, 503, errorJSON(errorsjson.MsgUpstreamUnavailable), map[string]string{"Retry-After": "3"}},
		{"upstream 502 with an HTTP-date", "", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat))
			http.Error(w, "bad gateway", http.StatusBadGateway)
		}, 503, errorJSON(errorsjson.MsgUpstreamUnavailable), nil},
		{"upstream 504", "", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "timeout", http.StatusGatewayTimeout)
		}, 503, errorJSON(errorsjson.MsgUpstreamUnavailable), map[string]string{"Retry-After": "3"}},
		{"upstream 500", "", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "panic: nil map at calc.go:12", http.StatusInternalServerError)
		}, 500, errorJSON(errorsjson.MsgInternal), map[string]string{"Retry-After": ""}},
		{"upstream 400 with a short message", "", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			w.Write([]byte(`{"error":"Premium must be positive"}`))
		}, 400, errorJSON("Premium must be positive"), nil},
		{"upstream 400 with a message field", "", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(400)
			w.Write([]byte(`{"message":"Age out of range"}`))
		}, 400, errorJSON("Age out of range"), nil},
		{"upstream 400 with a long message", "", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(400)
			w.Write([]byte(`{"error":"` + strings.Repeat("x", 201) + `"}`))
		}, 400, errorJSON(MsgInvalidInput), nil},
		{"upstream 400 with a multi-line message", "", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(400)
			w.Write([]byte(`{"error":"line one\nSELECT * FROM secrets"}`))
		}, 400, errorJSON(MsgInvalidInput), nil},
		{"upstream 400 in plain text", "", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "bad input", 400)
		}, 400, errorJSON(MsgInvalidInput), nil},
		{"upstream 422", "", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(422)
			w.Write([]byte(`{"error":"Premium: not a number"}`))
		}, 422, errorJSON("Premium: not a number"), nil},
		{"upstream 404", "", func(w http.ResponseWriter, r *http.Request) {
			http.NotFound(w, r)
		}, 502, errorJSON(MsgUpstreamUnexpected), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noGoroutineLeak(t)
			var got atomic.Pointer[http.Request]
			var gotBody atomic.Value
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				gotBody.Store(string(b))
				got.Store(r)
				tt.upstream(w, r)
			}))
			defer up.Close()
			var logs bytes.Buffer
			p, err := NewProxy(Target{
				Name: "quote", URL: up.URL + "/v1/quote", Header: http.Header{"Authorization": {upstreamSecret}},
				RetryAfter: 3 * time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()

			rec := serve(t, p, tt.query, `{"inputs":{"Premium":1}}`)
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if rec.Body.String() != tt.wantBody {
				t.Errorf("body = %.200q, want %.200q", rec.Body.String(), tt.wantBody)
			}
			for k, v := range tt.wantHeader {
				if g := rec.Header().Get(k); g != v {
					t.Errorf("%s = %q, want %q", k, g, v)
				}
			}
			if tt.name == "upstream 502 with an HTTP-date" {
				if ra := rec.Header().Get("Retry-After"); ra != "90" && ra != "89" && ra != "91" {
					t.Errorf("Retry-After = %q, want about 90", ra)
				}
			}

			r := got.Load()
			if r == nil {
				t.Fatal("the upstream got no request")
			}
			if g := r.Header.Get("Authorization"); g != upstreamSecret {
				t.Errorf("upstream Authorization = %q, want the upstream's own credential", g)
			}
			if g := r.Header.Get("X-API-Key"); g != "" {
				t.Errorf("the caller's X-API-Key reached the upstream: %q", g)
			}
			for k, vs := range r.Header {
				for _, v := range vs {
					if strings.Contains(v, callerKey) {
						t.Errorf("the caller's key reached the upstream in %s", k)
					}
				}
			}
			if g := r.Header.Get("X-Request-ID"); g != requestID {
				t.Errorf("upstream X-Request-ID = %q, want %q", g, requestID)
			}
			if r.URL.Path != "/v1/quote" || r.URL.RawQuery != strings.TrimPrefix(tt.query, "?") || r.Method != "POST" {
				t.Errorf("upstream got %s %s?%s", r.Method, r.URL.Path, r.URL.RawQuery)
			}
			if b, _ := gotBody.Load().(string); b != `{"inputs":{"Premium":1}}` {
				t.Errorf("upstream body = %q", b)
			}
			if strings.Contains(logs.String(), "upstream-secret") || strings.Contains(logs.String(), callerKey) {
				t.Errorf("a secret reached the log: %s", logs.String())
			}
			if tt.wantStatus == 502 && !strings.Contains(logs.String(), "upstream_status=") {
				t.Errorf("a 502 is not logged with the upstream's status: %q", logs.String())
			}
		})
	}
}

func TestProxyUnreachable(t *testing.T) {
	addr := closedAddr(t) // nothing listens there

	hang := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer hanging.Close()
	defer close(hang)

	closing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer closing.Close()

	tests := []struct {
		name   string
		target Target
		reason string // logged, instead of the transport's error with the address in it
	}{
		{"connection refused", Target{URL: "http://" + addr}, "connection refused"},
		{"connection closed without an answer", Target{URL: closing.URL}, "connection closed early"},
		{"answer headers too slow", Target{URL: hanging.URL, ResponseHeaderTimeout: 50 * time.Millisecond}, "timeout"},
		{"whole call too slow", Target{URL: hanging.URL, Timeout: 50 * time.Millisecond}, "timeout"},
		{"unknown host", Target{URL: "http://nonexistent.invalid", DialTimeout: time.Second}, "host not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.target.RetryAfter = 3500 * time.Millisecond // written as 4: whole seconds, rounded up
			var logs bytes.Buffer
			tt.target.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			p, err := NewProxy(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			rec := serve(t, p, "", `{}`)
			if rec.Code != 503 || rec.Body.String() != errorJSON(errorsjson.MsgUpstreamUnavailable) {
				t.Errorf("got %d %q, want 503 %q", rec.Code, rec.Body, errorJSON(errorsjson.MsgUpstreamUnavailable))
			}
			if g := rec.Header().Get("Retry-After"); g != "4" {
				t.Errorf("Retry-After = %q, want 4", g)
			}
			host := strings.TrimPrefix(tt.target.URL, "http://")
			if strings.Contains(logs.String(), host) || !strings.Contains(logs.String(), "reason="+tt.reason) && !strings.Contains(logs.String(), "reason="+strconv.Quote(tt.reason)) {
				t.Errorf("log = %q: want reason=%q and no upstream address", logs.String(), tt.reason)
			}
		})
	}
}

// TestProxyBrokenStream: an upstream whose chunked stream breaks off in the
// middle of a success must not look like a short success to the caller: the
// caller gets the 200 and the pieces sent so far, then a read error.
func TestProxyBrokenStream(t *testing.T) {
	noGoroutineLeak(t)
	piece := bytes.Repeat([]byte("p"), 1000)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // nothing unread: the close below is a FIN, not a reset
		for range 3 {
			w.Write(piece)
			w.(http.Flusher).Flush() // no Content-Length: chunked
		}
		// Break off without the chunked terminator.
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	}))
	defer up.Close()
	p, err := NewProxy(Target{URL: up.URL, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	gw, finished := gatewayFor(t, p)

	resp, err := gw.Client().Post(gw.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatalf("no answer: %v (the stream's head was flushed before the break)", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	<-finished
	if resp.StatusCode != 200 || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("status %d, Transfer-Encoding %v; want 200 chunked", resp.StatusCode, resp.TransferEncoding)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("read %d bytes, err %v: want a broken response (unexpected EOF), not a complete success", len(body), err)
	}
	if len(body) > 3*len(piece) || strings.Trim(string(body), "p") != "" {
		t.Errorf("read %d bytes: want a prefix of what the upstream sent", len(body))
	}
}

// TestProxyCallerGoneCancelsUpstream: a caller that goes away cancels the
// upstream call instead of leaving it running.
func TestProxyCallerGoneCancelsUpstream(t *testing.T) {
	noGoroutineLeak(t)
	arrived, cancelled := make(chan struct{}), make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // a server notices a closed connection only once the body is read
		close(arrived)
		<-r.Context().Done()
		close(cancelled)
	}))
	defer up.Close()
	p, _ := NewProxy(Target{URL: up.URL, Logger: slog.New(slog.DiscardHandler)})
	defer p.Close()

	ctx, cancel := contextWithCancel()
	r := httptest.NewRequest("POST", "/", strings.NewReader("{}")).WithContext(ctx)
	done := make(chan struct{})
	go func() {
		p.ServeHTTP(httptest.NewRecorder(), r)
		close(done)
	}()
	<-arrived
	cancel()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream call was not cancelled")
	}
	<-done
}

func TestProxyBreaker(t *testing.T) {
	var calls atomic.Int64
	var healthy atomic.Bool
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if !healthy.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer up.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p, _ := NewProxy(Target{
		URL: up.URL, RetryAfter: time.Second, Logger: slog.New(slog.DiscardHandler),
		Breaker: BreakerConfig{Failures: 3, CoolDown: 20 * time.Second},
		Now:     func() time.Time { return now },
	})
	defer p.Close()

	for i := range 3 {
		if rec := serve(t, p, "", "{}"); rec.Code != 503 || rec.Header().Get("Retry-After") != "1" {
			t.Fatalf("failure %d: %d Retry-After %q", i+1, rec.Code, rec.Header().Get("Retry-After"))
		}
	}
	if calls.Load() != 3 || !p.Open() {
		t.Fatalf("after 3 failures: %d calls, open=%v; want 3 calls and open", calls.Load(), p.Open())
	}
	now = now.Add(5 * time.Second)
	rec := serve(t, p, "", "{}")
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "15" || calls.Load() != 3 {
		t.Fatalf("open: %d Retry-After %q calls %d; want 503, 15, no call", rec.Code, rec.Header().Get("Retry-After"), calls.Load())
	}
	// Cool-down over: one probe; it fails, so the breaker opens again.
	now = now.Add(15 * time.Second)
	serve(t, p, "", "{}")
	if calls.Load() != 4 || !p.Open() {
		t.Fatalf("failed probe: %d calls, open=%v; want 4 and open", calls.Load(), p.Open())
	}
	now = now.Add(20 * time.Second)
	healthy.Store(true)
	if rec := serve(t, p, "", "{}"); rec.Code != 200 || rec.Body.String() != "ok" {
		t.Fatalf("successful probe: %d %q", rec.Code, rec.Body)
	}
	if p.Open() {
		t.Fatal("a successful probe did not close the breaker")
	}
	for range 5 {
		serve(t, p, "", "{}")
	}
	if calls.Load() != 10 {
		t.Errorf("closed breaker: %d calls, want 10", calls.Load())
	}
}

func TestBreakerHalfOpenLetsOneProbe(t *testing.T) {
	now := time.Unix(0, 0)
	b := newBreaker(BreakerConfig{Failures: 1, CoolDown: time.Second})
	_, probe, _ := b.allow(now)
	b.done(probe, failed, now)
	if ok, _, wait := b.allow(now); ok || wait != time.Second {
		t.Fatalf("open: ok=%v wait=%v", ok, wait)
	}
	now = now.Add(time.Second)
	ok, probe, _ := b.allow(now)
	if !ok || !probe {
		t.Fatalf("half-open: first request ok=%v probe=%v, want the probe", ok, probe)
	}
	if ok2, _, wait := b.allow(now); ok2 || wait != time.Second {
		t.Fatalf("half-open: second request ok=%v wait=%v, want refused while the probe is out", ok2, wait)
	}
	b.done(true, succeeded, now)
	if ok, probe, _ := b.allow(now); !ok || probe {
		t.Fatalf("closed after the probe: ok=%v probe=%v", ok, probe)
	}
}

func TestNewProxyRefusesBadURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "/relative", "http://", "://bad"} {
		if _, err := NewProxy(Target{URL: u}); err == nil {
			t.Errorf("NewProxy(%q) accepted it", u)
		}
	}
}

// BenchmarkProxy is a Proxy in front of a loopback upstream answering a small
// JSON body: the proxy's own cost a call (the request it builds, the call over
// a kept-alive connection, the answer's headers and body copied), with the
// upstream's cost, which shares the process, on top.
func BenchmarkProxy(b *testing.B) {
	const answer = `{"premium":1234.5}`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer)
	}))
	defer up.Close()
	p, err := NewProxy(Target{Name: "quote", URL: up.URL, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	const body = `{"inputs":{"Premium":1}}`
	rd := strings.NewReader(body)
	r := httptest.NewRequest("POST", "/api/quote", nil)
	r.Header.Set("Content-Type", "application/json")
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		r.Body, r.ContentLength = io.NopCloser(rd), int64(len(body))
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		if w.Code != http.StatusOK || w.Body.String() != answer {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
