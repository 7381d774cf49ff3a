package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// answerJSON answers what the valid class allows: 200 with a JSON body.
func answerJSON(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{}`))
}

// TestOpenDriveSendsOnSchedule: an open load sends every request of its
// schedule while none is answered. The server holds every request until all
// of them have arrived, which a load that waits for answers never gets to.
func TestOpenDriveSendsOnSchedule(t *testing.T) {
	const n = 20
	var arrived atomic.Int32
	allIn, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if arrived.Add(1) == n {
			close(allIn)
		}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		answerJSON(w)
	}))
	defer srv.Close()
	client := newClient(n)
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	reports := make(chan *openReport, 1)
	go func() {
		reports <- openDrive(ctx, client, srv.URL, "open", []*class{validClass(keys{bulk: "b"})}, 1000, bounds{requests: n, duration: time.Second, concurrency: n}, 1)
	}()
	select {
	case <-allIn:
	case <-ctx.Done():
		t.Errorf("%d of %d requests arrived, none answered: the load waited for answers", arrived.Load(), n)
	}
	close(release)
	rep := <-reports
	if rep.sent != n || rep.answered != n || rep.held != 0 || len(rep.failures) != 0 {
		t.Errorf("sent %d, answered %d, held %d, failures %q; want %d sent and answered, 0 held, none", rep.sent, rep.answered, rep.held, rep.failures, n)
	}
}

// TestOpenDriveCountsFromSchedule: a server that stalls 200 ms once shows it
// in the percentiles of the requests due during the stall, whether or not
// the cap on requests in flight held them back from being sent. The stall
// starts at the first arrival, T, no earlier than the first due time; every
// request due by T + 100 ms is answered no earlier than T + 200 ms (held by
// the stall, or sent after it), so at least the 11 due in the schedule's
// first 100 ms (10 ms apart) count 100 ms or more: p99 of 150 (the third
// largest) is at least 100 ms. Measured from when each was sent, with one in
// flight only the first would.
func TestOpenDriveCountsFromSchedule(t *testing.T) {
	for _, tt := range []struct {
		name     string
		inFlight int
	}{{"one in flight", 1}, {"64 in flight", 64}} {
		inFlight := tt.inFlight
		t.Run(tt.name, func(t *testing.T) {
			var once sync.Once
			stall := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				once.Do(func() { time.AfterFunc(200*time.Millisecond, func() { close(stall) }) })
				select {
				case <-stall:
				case <-r.Context().Done():
					return
				}
				answerJSON(w)
			}))
			defer srv.Close()
			client := newClient(inFlight)
			defer client.CloseIdleConnections()
			rep := openDrive(t.Context(), client, srv.URL, "open", []*class{validClass(keys{bulk: "b"})}, 100, bounds{requests: 150, duration: 10 * time.Second, concurrency: inFlight}, 1)
			if rep.sent != 150 || rep.answered != 150 || len(rep.failures) != 0 {
				t.Fatalf("sent %d, answered %d, failures %q; want 150 sent and answered, none", rep.sent, rep.answered, rep.failures)
			}
			slow := 0
			for i := range rep.results {
				if rep.results[i].latency >= 100*time.Millisecond {
					slow++
				}
			}
			if slow < 11 {
				t.Errorf("%d requests took 100 ms or more from their due time, want at least 11", slow)
			}
			if q := rep.quantiles(-1, 0.99); q[0] < 100*time.Millisecond {
				t.Errorf("p99 %v, want at least 100ms", q[0])
			}
		})
	}
}

// TestOpenDriveBounds: the schedule holds rate × duration requests, or
// -requests if fewer, and a done context stops the pacer.
func TestOpenDriveBounds(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { answerJSON(w) }))
	defer srv.Close()
	client := newClient(8)
	defer client.CloseIdleConnections()
	valid := []*class{validClass(keys{bulk: "b"})}
	if rep := openDrive(t.Context(), client, srv.URL, "open", valid, 200, bounds{requests: 1000, duration: 100 * time.Millisecond, concurrency: 8}, 1); rep.sent != 20 {
		t.Errorf("200/s for 100ms: sent %d, want 20", rep.sent)
	}
	if rep := openDrive(t.Context(), client, srv.URL, "open", valid, 200, bounds{requests: 5, duration: time.Second, concurrency: 8}, 1); rep.sent != 5 {
		t.Errorf("-requests 5: sent %d, want 5", rep.sent)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if rep := openDrive(ctx, client, srv.URL, "open", valid, 1, bounds{requests: 100, duration: time.Minute, concurrency: 8}, 1); rep.sent > 1 {
		t.Errorf("done context: sent %d, want at most the first, due at once", rep.sent)
	}
}

func TestOpenFlagsRefuse(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-rate", "-1"}, "-rate must be 0 (closed loop) or a rate up to 1000000 requests a second"},
		{[]string{"-rate", "NaN"}, "-rate must be 0 (closed loop) or a rate up to 1000000 requests a second"},
		{[]string{"-rate", "1000001"}, "-rate must be 0 (closed loop) or a rate up to 1000000 requests a second"},
		{[]string{"-rate", "100", "-soak", "1m"}, "-rate is for one run of the mix, not -soak"},
		{[]string{"-open-compare", "-target", "http://127.0.0.1:8080"}, "-open-compare runs on gateways the tool starts (not with -target)"},
		{[]string{"-redis-compare"}, "-redis-compare is a part of -compare or -open-compare, on gateways the tool starts (not with -target)"},
		{[]string{"-open-duration", "99ms"}, "-open-duration must be 100ms to 1m0s"},
		{[]string{"-open-duration", "61s"}, "-open-duration must be 100ms to 1m0s"},
		{[]string{"-open-percents", "0,50"}, `-open-percents "0,50": want percents of capacity above 0 and at most 100, such as 25,50,75,90`},
		{[]string{"-open-percents", "50,101"}, `-open-percents "50,101": want percents of capacity above 0 and at most 100, such as 25,50,75,90`},
		{[]string{"-open-percents", "half"}, `-open-percents "half": want percents of capacity above 0 and at most 100, such as 25,50,75,90`},
		{[]string{"-open-percents", ""}, `-open-percents "": want percents of capacity above 0 and at most 100, such as 25,50,75,90`},
		{[]string{"-open-percents", "50,25"}, `-open-percents "50,25": want increasing percents`},
		{[]string{"-open-percents", "50,50"}, `-open-percents "50,50": want increasing percents`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), tt.args, &stdout, &stderr); code != 2 {
				t.Errorf("run(%q) = %d, want 2", tt.args, code)
			}
			if want := "load: " + tt.want + "\n"; stderr.String() != want {
				t.Errorf("stderr %q, want %q", stderr.String(), want)
			}
		})
	}
	o, err := parseFlags([]string{"-open-percents", " 10, 20.5,100", "-rate", "250.5"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.openPercents, []float64{10, 20.5, 100}) || o.rate != 250.5 {
		t.Errorf("-open-percents: %v, -rate %v; want [10 20.5 100], 250.5", o.openPercents, o.rate)
	}
}

// TestOpenCompare runs -open-compare briefly, on Redis too, after the mix
// sent as an open load (-rate): every server answers every request, and each
// point and ratio is printed.
func TestOpenCompare(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the gatehouse gateway")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("GATEHOUSE_REQUIRE_REDIS") == "1" {
			t.Fatalf("GATEHOUSE_REQUIRE_REDIS=1 but: %v", err)
		}
		t.Skip("redis-server not on PATH")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute) // as TestCompare's
	defer cancel()
	var out bytes.Buffer
	code := run(ctx, []string{"-requests", "300", "-concurrency", "8", "-rate", "500", "-open-compare", "-redis-compare", "-open-percents", "25,50", "-open-duration", "200ms"}, &out, os.Stderr)
	t.Logf("\n%s", out.String())
	if code != 0 {
		t.Fatalf("load -open-compare exited %d", code)
	}
	for _, want := range []string{
		"mix: open load at 500 req/s: 300 sent", "open-loadavg before: ", "open-capacity ", "open-point server=proxy percent=25 ", "open-point server=gateway percent=25 ", "open-point server=redis percent=25 ",
		"open-point server=proxy percent=50 ", "open-point server=gateway percent=50 ", "open-point server=redis percent=50 ",
		"ratio gateway/bare-proxy p99 at 50% of capacity", "ratio gateway-on-Redis/bare-proxy p99 at 50% of capacity", "PASS",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
