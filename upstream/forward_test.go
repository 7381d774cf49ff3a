package upstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/errorsjson"
)

// headerSet renders h as sorted "Name: v1 | v2" lines, without the headers
// named in skip, so that a test compares a whole header set at once.
func headerSet(h http.Header, skip ...string) string {
	var lines []string
	for k, vs := range h {
		if slices.Contains(skip, k) {
			continue
		}
		lines = append(lines, k+": "+strings.Join(vs, " | "))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestProxyRequestHeaders: of a hostile caller's headers only the allow-list
// reaches the upstream; the caller's key, cookies and claimed addresses never
// do, even to a target with no credentials of its own (which would otherwise
// overwrite the caller's Authorization and hide a leak), and naming a header
// in Connection never strips one the gateway checked or sets.
func TestProxyRequestHeaders(t *testing.T) {
	hostile := http.Header{
		"Authorization":   {"Bearer " + callerKey},
		"X-Api-Key":       {callerKey},
		"Cookie":          {"session=" + callerKey},
		"X-Forwarded-For": {"6.6.6.6"},
		"X-Real-Ip":       {"6.6.6.6"},
		"Forwarded":       {"for=6.6.6.6;host=admin.internal"},
		"X-Request-Id":    {"not a valid id!"},
		"Content-Type":    {"application/json"},
		"Accept":          {"application/pdf"},
		"Accept-Language": {"de"},
		"Traceparent":     {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		"Tracestate":      {"vendor=1"},
		"X-Internal-Role": {"admin"},
		"Idempotency-Key": {"someone-elses-key"},
		"Te":              {"trailers"},
	}
	// Hop-by-hop tricks: a caller names in Connection what it wants stripped.
	const strip = "Content-Type, Traceparent, Tracestate, X-Forwarded-For, X-Request-Id, Authorization, Accept-Language"
	const gotTrace = "Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\nTracestate: vendor=1"
	const passed = "Accept-Language: de\nAccept: application/pdf\nContent-Type: application/json\n" + gotTrace
	tests := []struct {
		name       string
		target     Target
		connection string // the caller's Connection header
		want       string // the upstream's headers, {id} for the request id
	}{
		{"no credentials of its own", Target{}, "",
			passed + "\nX-Forwarded-For: 127.0.0.1\nX-Request-Id: {id}"},
		{"no credentials of its own, Connection tricks", Target{}, strip,
			"Accept: application/pdf\nContent-Type: application/json\n" + gotTrace + "\nX-Forwarded-For: 127.0.0.1\nX-Request-Id: {id}"},
		{"its own credentials, Connection tricks", Target{Header: http.Header{"authorization": {upstreamSecret}}}, strip,
			"Accept: application/pdf\nAuthorization: " + upstreamSecret + "\nContent-Type: application/json\n" + gotTrace + "\nX-Forwarded-For: 127.0.0.1\nX-Request-Id: {id}"},
		{"client address plugged in", Target{ClientAddr: func(*http.Request) netip.Addr { return netip.MustParseAddr("203.0.113.9") }}, "",
			passed + "\nX-Forwarded-For: 203.0.113.9\nX-Request-Id: {id}"},
		{"no client address known", Target{ClientAddr: func(*http.Request) netip.Addr { return netip.Addr{} }}, "",
			passed + "\nX-Request-Id: {id}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got atomic.Pointer[http.Header]
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h := r.Header.Clone()
				got.Store(&h)
				io.WriteString(w, "{}")
			}))
			defer up.Close()
			tt.target.URL = up.URL
			tt.target.Logger = slog.New(slog.DiscardHandler)
			p, err := NewProxy(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			gw := httptest.NewServer(errorsjson.RequestID(p))
			defer gw.Close()

			req, _ := http.NewRequest("POST", gw.URL, strings.NewReader(`{"inputs":{}}`))
			for k, vs := range hostile {
				req.Header[k] = vs
			}
			if tt.connection != "" {
				req.Header.Set("Connection", tt.connection)
			}
			resp, err := gw.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			id := resp.Header.Get("X-Request-Id")
			if resp.StatusCode != 200 || id == "" || id == hostile.Get("X-Request-Id") {
				t.Fatalf("status %d, X-Request-Id %q: want 200 and a request id of the gateway's", resp.StatusCode, id)
			}
			h := got.Load()
			if h == nil {
				t.Fatal("the upstream got no request")
			}
			// Set by the transport for its own hop.
			gotSet := headerSet(*h, "User-Agent", "Accept-Encoding", "Content-Length")
			if want := strings.ReplaceAll(tt.want, "{id}", id); gotSet != want {
				t.Errorf("upstream headers:\n%s\nwant:\n%s", gotSet, want)
			}
		})
	}
}

// TestCopyEndToEnd holds the Connection-token rule of both directions.
func TestCopyEndToEnd(t *testing.T) {
	src := http.Header{
		"Connection":   {"keep-alive, content-type", " ETAG ,x-a"},
		"Content-Type": {"application/json"},
		"Etag":         {`"1"`},
		"X-A":          {"a"},
		"X-B":          {"b"},
	}
	dst := http.Header{}
	copyEndToEnd(dst, src, []string{"Content-Type", "Etag", "X-A", "X-B"}, []string{"Content-Type"})
	if got, want := headerSet(dst), "Content-Type: application/json\nX-B: b"; got != want {
		t.Errorf("copied:\n%s\nwant:\n%s", got, want)
	}
	// The pass lists never let a hop-by-hop header through.
	for _, name := range []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
		if slices.Contains(passRequest, name) || slices.Contains(passResponse, name) {
			t.Errorf("%s is hop-by-hop but in a pass list", name)
		}
	}
}

// TestProxyQuery: a caller adds only "format" and the target's AllowedQuery
// parameters, and never one that the target URL sets.
func TestProxyQuery(t *testing.T) {
	tests := []struct {
		name    string
		target  string // query of the target URL
		allowed []string
		caller  string
		want    string
	}{
		{"format passes", "", nil, "format=pdf", "format=pdf"},
		{"no query", "tenant=a", nil, "", "tenant=a"},
		{"the target's parameter is not overridden", "tenant=a", []string{"tenant"}, "tenant=b&format=pdf", "tenant=a&format=pdf"},
		{"nor is its format", "format=json", nil, "format=pdf", "format=json"},
		{"other parameters are dropped", "tenant=a", nil, "api_key=" + callerKey + "&debug=1&tenant=b", "tenant=a"},
		{"allowed parameters pass, all their values", "tenant=a", []string{"lang"}, "lang=de&lang=fr&x=1&format=both", "tenant=a&format=both&lang=de&lang=fr"},
		{"unparsable pairs are dropped", "", []string{"lang"}, "format=%zz&lang=de;x=1&lang=en", "lang=en"},
		{"the target's own query is kept byte for byte", "b=2&a=1&a=%7e", nil, "format=pdf", "b=2&a=1&a=%7e&format=pdf"},
	}
	var got atomic.Value
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.URL.RawQuery)
	}))
	defer up.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := up.URL + "/v1/quote"
			if tt.target != "" {
				u += "?" + tt.target
			}
			p, err := NewProxy(Target{URL: u, AllowedQuery: tt.allowed, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			gw := httptest.NewServer(p)
			defer gw.Close()
			resp, err := gw.Client().Post(gw.URL+"/api/quote?"+tt.caller, "application/json", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if g, _ := got.Load().(string); g != tt.want {
				t.Errorf("upstream query = %q, want %q", g, tt.want)
			}
		})
	}
}

// TestProxyHostileUpstream: an upstream that sends cookies, banners, internal
// redirects, huge headers, a body that never ends or a Content-Length that
// lies gets no more than the policy lets through to the caller, and a body
// that cannot be delivered whole reads as broken, never as a success.
func TestProxyHostileUpstream(t *testing.T) {
	var internalHits atomic.Int64
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits.Add(1)
		io.WriteString(w, `{"status":200,"response_data":{"outputs":{"secret":1}}}`)
	}))
	defer internal.Close()
	redirect := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Set-Cookie", "admin=1; Path=/")
			http.Redirect(w, r, internal.URL+"/admin?token=x", code)
		}
	}
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	const errHeaders = "Cache-Control: no-store\nContent-Type: application/json\nX-Content-Type-Options: nosniff\nX-Request-Id: " + requestID

	tests := []struct {
		name       string
		target     Target
		upstream   http.HandlerFunc
		wantStatus int
		wantBody   string // "" with wantBroken
		wantBroken bool   // the body must not read whole
		wantHeader string // the caller's headers, but Date (and Content-Length on errors)
	}{
		{"cookies, banners and internal headers are dropped", Target{}, func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Set-Cookie", "upstream_session=abc; HttpOnly")
			h.Set("Server", "calc/1.2 (10.0.0.5)")
			h.Set("X-Powered-By", "PHP/5.4")
			h.Set("X-Backend-Host", "calc-7.internal:8080")
			h.Set("Location", "http://10.0.0.5/")
			h.Set("X-RateLimit-Limit", "999999")
			h.Set("Retry-After", "5")
			h.Set("X-Request-Id", "upstream-id")
			h.Set("Access-Control-Allow-Origin", "*")
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "no-store")
			h.Set("Etag", `"v1"`)
			h.Set("Connection", "Etag")
			io.WriteString(w, `{"status":200}`)
		}, 200, `{"status":200}`, false,
			"Cache-Control: no-store\nContent-Length: 14\nContent-Type: application/json\nX-Request-Id: " + requestID},
		{"headers that describe the body pass", Target{}, func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Type", "application/pdf")
			h.Set("Content-Disposition", `attachment; filename="quote.pdf"`)
			h.Set("Content-Language", "de")
			h.Set("Last-Modified", "Wed, 21 Oct 2026 07:28:00 GMT")
			h.Set("Expires", "Thu, 22 Oct 2026 07:28:00 GMT")
			h.Set("Vary", "Accept")
			w.(http.Flusher).Flush() // no Content-Length: a stream
			io.WriteString(w, "%PDF-1.4")
		}, 200, "%PDF-1.4", false,
			"Content-Disposition: attachment; filename=\"quote.pdf\"\nContent-Language: de\nContent-Type: application/pdf\n" +
				"Expires: Thu, 22 Oct 2026 07:28:00 GMT\nLast-Modified: Wed, 21 Oct 2026 07:28:00 GMT\nVary: Accept\nX-Request-Id: " + requestID},
		{"302 to an internal host", Target{}, redirect(http.StatusFound), 502, errorJSON(MsgUpstreamUnexpected), false, errHeaders},
		{"301 to an internal host", Target{}, redirect(http.StatusMovedPermanently), 502, errorJSON(MsgUpstreamUnexpected), false, errHeaders},
		{"303 to an internal host", Target{}, redirect(http.StatusSeeOther), 502, errorJSON(MsgUpstreamUnexpected), false, errHeaders},
		{"307 to an internal host", Target{}, redirect(http.StatusTemporaryRedirect), 502, errorJSON(MsgUpstreamUnexpected), false, errHeaders},
		{"308 to an internal host", Target{}, redirect(http.StatusPermanentRedirect), 502, errorJSON(MsgUpstreamUnexpected), false, errHeaders},
		{"huge header", Target{}, func(w http.ResponseWriter, r *http.Request) {
			for i := range 40 {
				w.Header().Set(fmt.Sprintf("X-Big-%d", i), strings.Repeat("b", 4<<10))
			}
			io.WriteString(w, "{}")
		}, 503, errorJSON(errorsjson.MsgUpstreamUnavailable), false,
			"Cache-Control: no-store\nContent-Type: application/json\nRetry-After: 3\nX-Content-Type-Options: nosniff\nX-Request-Id: " + requestID},
		{"body that never ends, size bound", Target{MaxResponseBytes: 1 << 20}, func(w http.ResponseWriter, r *http.Request) {
			for range 10_000 { // bounded: 320 MB at most, cut at 1 MiB
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, 200, "", true, "Content-Type: text/plain; charset=utf-8\nX-Request-Id: " + requestID},
		{"body that never ends, time bound", Target{Timeout: 300 * time.Millisecond}, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			for range 1000 { // bounded: 10 s at most, cut at 300 ms
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}, 200, "", true, "Content-Type: application/octet-stream\nX-Request-Id: " + requestID},
		{"Content-Length that lies, connection closed", Target{}, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000000")
			w.Write(bytes.Repeat(chunk, 2))
			w.(http.Flusher).Flush()
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
		}, 200, "", true, "Content-Length: 1000000\nContent-Type: text/plain; charset=utf-8\nX-Request-Id: " + requestID},
		{"Content-Length that lies, connection kept", Target{Timeout: 300 * time.Millisecond}, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000000")
			w.Write(bytes.Repeat(chunk, 2))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}, 200, "", true, "Content-Length: 1000000\nContent-Type: text/plain; charset=utf-8\nX-Request-Id: " + requestID},
		{"announced body over MaxResponseBytes", Target{MaxResponseBytes: 1 << 20}, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(2<<20))
			w.Write(bytes.Repeat(chunk, 64))
		}, 502, errorJSON(MsgUpstreamUnexpected), false, errHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noGoroutineLeak(t)
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				tt.upstream(w, r)
			}))
			defer up.Close()
			var logs bytes.Buffer
			tt.target.URL = up.URL
			tt.target.RetryAfter = 3 * time.Second
			tt.target.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			p, err := NewProxy(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			gw, finished := gatewayFor(t, errorsjson.RequestID(errorsjson.Recover(tt.target.Logger)(p)))

			req, _ := http.NewRequest("POST", gw.URL, strings.NewReader(`{"inputs":{}}`))
			req.Header.Set("X-Request-ID", requestID)
			resp, err := gw.Client().Do(req)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			<-finished
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			skip := []string{"Date"}
			if tt.wantStatus != 200 {
				skip = append(skip, "Content-Length")
			}
			if got := headerSet(resp.Header, skip...); got != tt.wantHeader {
				t.Errorf("caller's headers:\n%s\nwant:\n%s", got, tt.wantHeader)
			}
			if tt.wantBroken {
				if !errors.Is(rerr, io.ErrUnexpectedEOF) {
					t.Errorf("body read %d bytes, err %v: want a broken response (unexpected EOF)", len(body), rerr)
				}
			} else if rerr != nil || string(body) != tt.wantBody {
				t.Errorf("body = %.200q, %v; want %.200q", body, rerr, tt.wantBody)
			}
			if n := internalHits.Load(); n != 0 {
				t.Errorf("the internal host got %d requests: a redirect was followed", n)
			}
			for _, addr := range []string{up.Listener.Addr().String(), internal.Listener.Addr().String(), "10.0.0.5"} {
				if strings.Contains(logs.String(), addr) {
					t.Errorf("an internal address reached the log: %s", logs.String())
				}
			}
		})
	}
}

func TestReason(t *testing.T) {
	u, _ := url.Parse("http://10.0.0.5:8080/")
	for _, tt := range []struct {
		err  error
		want string
	}{
		{&url.Error{Op: "Post", URL: u.String(), Err: io.ErrUnexpectedEOF}, "connection closed early"},
		{fmt.Errorf("net/http: server response headers exceeded 65536 bytes; aborted"), "answer header too large"},
		{errors.New("tls: something 10.0.0.5"), "other"},
	} {
		if got := reason(tt.err); got != tt.want {
			t.Errorf("reason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestNewProxyBadURL: NewProxy's error says what is wrong with a URL and never
// repeats it, since its user info may hold a password.
func TestNewProxyBadURL(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"http://user:hunter2@host:80x/", `upstream: URL not parsable: invalid port ":80x" after host`},
		{"http://user:hunter2%zz@host/", "upstream: URL not parsable: invalid URL escape"},
		{"http://user:hunter2@ho st/", `upstream: URL not parsable: invalid character " " in host name`},
		{"ftp://user:hunter2@host/", "upstream: URL must be an absolute http or https URL"},
		{"/relative", "upstream: URL must be an absolute http or https URL"},
	} {
		_, err := NewProxy(Target{URL: tt.url})
		if err == nil || err.Error() != tt.want {
			t.Errorf("NewProxy(%q) = %v, want %q", tt.url, err, tt.want)
		}
	}
}
