package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// script is a flaky server: it answers its statuses in order (the last one
// forever), each with its headers, and records every request body.
type script struct {
	mu       sync.Mutex
	answers  []answer
	bodies   []string
	attempts int
}

type answer struct {
	status     int
	retryAfter string
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.bodies = append(s.bodies, string(b))
	a := s.answers[min(s.attempts, len(s.answers)-1)]
	s.attempts++
	s.mu.Unlock()
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	w.WriteHeader(a.status)
	io.WriteString(w, "body of attempt "+strconv.Itoa(s.attempts))
}

// recordedSleep records the waits instead of sleeping.
type recordedSleep struct{ waits []time.Duration }

func (r *recordedSleep) sleep(ctx context.Context, d time.Duration) error {
	r.waits = append(r.waits, d)
	return ctx.Err()
}

func TestTransportSequences(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name         string
		method       string
		answers      []answer
		maxRetry     time.Duration
		wantStatus   int
		wantAttempts int
		wantWaits    []time.Duration
	}{
		{"429 waits Retry-After seconds", "POST", []answer{{429, "3"}, {200, ""}}, 0, 200, 2, []time.Duration{3 * time.Second}},
		{"429 waits an HTTP-date", "POST", []answer{{429, now.Add(7 * time.Second).Format(http.TimeFormat)}, {200, ""}}, 0, 200, 2, []time.Duration{7 * time.Second}},
		{"429 without Retry-After waits 60 s", "POST", []answer{{429, ""}, {200, ""}}, 0, 200, 2, []time.Duration{60 * time.Second}},
		{"429 beyond MaxRetryAfter is returned", "POST", []answer{{429, "120"}, {200, ""}}, 0, 429, 1, nil},
		{"429 within a raised MaxRetryAfter", "POST", []answer{{429, "120"}, {200, ""}}, 5 * time.Minute, 200, 2, []time.Duration{120 * time.Second}},
		// jitter is 0.5: waits are half of 1 s, 2 s, 4 s.
		{"503 backs off exponentially", "POST", []answer{{503, ""}, {503, ""}, {503, ""}, {200, ""}}, 0, 200, 4,
			[]time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}},
		{"503 gives up after MaxAttempts", "POST", []answer{{503, ""}}, 0, 503, 4,
			[]time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}},
		{"503's own Retry-After is a floor", "POST", []answer{{503, "5"}, {200, ""}}, 0, 200, 2, []time.Duration{5 * time.Second}},
		{"503 beyond MaxRetryAfter is returned", "POST", []answer{{503, "86400"}, {200, ""}}, 0, 503, 1, nil},
		{"503 at MaxRetryAfter is waited", "POST", []answer{{503, "60"}, {200, ""}}, 0, 200, 2, []time.Duration{60 * time.Second}},
		{"503 beyond a lowered MaxRetryAfter is returned", "POST", []answer{{503, "5"}, {200, ""}}, 2 * time.Second, 503, 1, nil},
		{"500 is retried once", "POST", []answer{{500, ""}, {500, ""}, {200, ""}}, 0, 500, 2, []time.Duration{time.Second}},
		{"500 then success", "POST", []answer{{500, ""}, {200, ""}}, 0, 200, 2, []time.Duration{time.Second}},
		{"400 never retried", "POST", []answer{{400, ""}}, 0, 400, 1, nil},
		{"401 never retried", "POST", []answer{{401, ""}}, 0, 401, 1, nil},
		{"403 never retried", "POST", []answer{{403, ""}}, 0, 403, 1, nil},
		{"404 never retried", "POST", []answer{{404, ""}}, 0, 404, 1, nil},
		{"502 never retried", "POST", []answer{{502, ""}}, 0, 502, 1, nil},
		{"success at once", "POST", []answer{{200, ""}}, 0, 200, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &script{answers: tt.answers}
			srv := httptest.NewServer(s)
			defer srv.Close()
			rec := &recordedSleep{}
			tr := &Transport{
				MaxRetryAfter: tt.maxRetry,
				Sleep:         rec.sleep,
				Jitter:        func() float64 { return 0.5 },
				Now:           func() time.Time { return now },
			}
			req, _ := http.NewRequest(tt.method, srv.URL, strings.NewReader(`{"inputs":{"A":1}}`))
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if want := "body of attempt " + strconv.Itoa(tt.wantAttempts); string(body) != want {
				t.Errorf("body = %q, want %q (the last attempt's, intact)", body, want)
			}
			if s.attempts != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", s.attempts, tt.wantAttempts)
			}
			if !equalDurations(rec.waits, tt.wantWaits) {
				t.Errorf("waits = %v, want %v", rec.waits, tt.wantWaits)
			}
			for i, b := range s.bodies {
				if b != `{"inputs":{"A":1}}` {
					t.Errorf("attempt %d body = %q: the body was not replayed", i+1, b)
				}
			}
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTransportFullJitterRange(t *testing.T) {
	for attempt, step := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 10: 30 * time.Second} {
		for _, j := range []float64{0, 0.999999} {
			d := DefaultBackoff(&http.Response{StatusCode: 503, Header: http.Header{}}, nil, attempt, j)
			if d < 0 || d >= step {
				t.Errorf("attempt %d jitter %v: wait %v, want in [0, %v)", attempt, j, d, step)
			}
		}
	}
}

func TestTransportBodyWithoutGetBodyIsNotRetried(t *testing.T) {
	s := &script{answers: []answer{{503, ""}, {200, ""}}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL, io.NopCloser(strings.NewReader("x"))) // no GetBody
	resp, err := (&Transport{Sleep: (&recordedSleep{}).sleep}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || s.attempts != 1 {
		t.Errorf("got %d after %d attempts, want the 503 after 1", resp.StatusCode, s.attempts)
	}
}

func TestTransportNetworkErrors(t *testing.T) {
	addr := "http://" + closedAddr(t)
	for _, tt := range []struct {
		method       string
		header       string
		wantAttempts int
	}{
		{"GET", "", 3},
		{"PUT", "", 3},
		{"POST", "", 1},
		{"POST", "k-1", 3},
	} {
		var attempts int
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			attempts++
			return http.DefaultTransport.RoundTrip(r)
		})
		req, _ := http.NewRequest(tt.method, addr, strings.NewReader("x"))
		if tt.header != "" {
			req.Header.Set("Idempotency-Key", tt.header)
		}
		_, err := (&Transport{Base: base, MaxAttempts: 3, Sleep: (&recordedSleep{}).sleep}).RoundTrip(req)
		if err == nil {
			t.Errorf("%s: no error from a refused connection", tt.method)
		}
		if attempts != tt.wantAttempts {
			t.Errorf("%s (Idempotency-Key %q): %d attempts, want %d", tt.method, tt.header, attempts, tt.wantAttempts)
		}
	}
}

// TestTransportMaxRetryAfterBoundsBackoff: a custom Backoff's wait is bounded
// too, on no answer as on an answer; nothing is slept.
func TestTransportMaxRetryAfterBoundsBackoff(t *testing.T) {
	addr := "http://" + closedAddr(t)
	s := &script{answers: []answer{{500, ""}, {200, ""}}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	for _, url := range []string{addr, srv.URL} {
		rec := &recordedSleep{}
		tr := &Transport{
			Sleep:   rec.sleep,
			Backoff: func(*http.Response, error, int, float64) time.Duration { return 2 * time.Hour },
		}
		req, _ := http.NewRequest("GET", url, nil)
		resp, err := tr.RoundTrip(req)
		if resp != nil {
			resp.Body.Close()
		}
		if url == addr && err == nil || url == srv.URL && (err != nil || resp.StatusCode != 500) {
			t.Errorf("%s: got %v, %v; want the first attempt's answer or error", url, resp, err)
		}
		if len(rec.waits) != 0 {
			t.Errorf("%s: waits = %v, want none beyond MaxRetryAfter", url, rec.waits)
		}
	}
	if s.attempts != 1 {
		t.Errorf("attempts = %d, want 1", s.attempts)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTransportCancelStopsWaiting(t *testing.T) {
	s := &script{answers: []answer{{429, "30"}}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	errc := make(chan error, 1)
	go func() {
		_, err := (&Transport{}).RoundTrip(req) // the real timer: 30 s unless cancelled
		errc <- err
	}()
	for {
		s.mu.Lock()
		n := s.attempts
		s.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled context did not stop the wait")
	}
}

// TestTransportReusesConnections: retried responses are drained and closed, so
// every attempt reuses one connection.
func TestTransportReusesConnections(t *testing.T) {
	s := &script{answers: []answer{{503, ""}, {503, ""}, {200, ""}}}
	srv := httptest.NewUnstartedServer(s)
	var mu sync.Mutex
	conns := 0
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	resp, err := (&Transport{Sleep: (&recordedSleep{}).sleep}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if conns != 1 {
		t.Errorf("%d connections for 3 attempts, want 1", conns)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"0", 0, true},
		{"30", 30 * time.Second, true},
		{" 7 ", 7 * time.Second, true},
		{"86400", 24 * time.Hour, true},
		{"999999999999999999999999", 24 * time.Hour, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{now.Add(72 * time.Hour).Format(http.TimeFormat), 24 * time.Hour, true},
		{"", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}
