package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/errorsjson"
)

// TestMain lets -compare start this test binary as its bare servers, as the
// tool starts itself (see startBare).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == serveBareArg {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		code := serveBare(ctx, os.Args[2:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func TestCheckLoopback(t *testing.T) {
	tests := []struct {
		name, target string
		ok           bool
	}{
		{"IPv4 loopback", "http://127.0.0.1:8080", true},
		{"anywhere in 127/8", "http://127.45.6.7:8080/", true},
		{"IPv6 loopback", "http://[::1]:8080", true},
		{"localhost", "http://localhost:8080", true},
		{"LOCALHOST", "http://LOCALHOST:8080", true},
		{"private address", "http://192.168.1.10:8080", false},
		{"public address", "http://8.8.8.8", false},
		{"unspecified", "http://0.0.0.0:8080", false},
		{"IPv6 unspecified", "http://[::]:8080", false},
		{"name that starts like localhost", "http://localhost.example.com", false},
		{"name that starts like loopback", "http://127.0.0.1.nip.io", false},
		{"IPv4-mapped public", "http://[::ffff:8.8.8.8]:80", false},
		{"https", "https://127.0.0.1:8443", false},
		{"no scheme", "127.0.0.1:8080", false},
		{"no host", "http://", false},
		{"userinfo trick", "http://127.0.0.1@example.com/", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkLoopback(tt.target)
			if (err == nil) != tt.ok {
				t.Errorf("checkLoopback(%q) = %v, want ok %v", tt.target, err, tt.ok)
			}
		})
	}
}

func TestFlagsRefuse(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"remote target", []string{"-target", "http://10.0.0.1:8080"}},
		{"no requests", []string{"-requests", "0"}},
		{"too many requests", []string{"-requests", "10000001"}},
		{"duration past the cap", []string{"-duration", "6m"}},
		{"no concurrency", []string{"-concurrency", "0"}},
		{"soak past the cap", []string{"-soak", "31m"}},
		{"stray argument", []string{"now"}},
		{"usage-compare without -compare", []string{"-usage-compare"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tt.args, &stdout, &stderr); code != 2 {
				t.Errorf("run(%q) = %d, want 2; stderr: %s", tt.args, code, stderr.String())
			}
		})
	}
}

// TestGatewaySource: by default the tool builds the gateway from
// cmd/gatehouse of the repository its source is in, and refuses a directory
// that is not the gatehouse command's module.
func TestGatewaySource(t *testing.T) {
	want, err := filepath.Abs(filepath.Join("..", "..", "cmd", "gatehouse"))
	if err != nil {
		t.Fatal(err)
	}
	if got := defaultGatewaySource(); got != want {
		t.Errorf("defaultGatewaySource() = %q, want %q", got, want)
	}
	if err := checkGatewaySource(want); err != nil {
		t.Errorf("checkGatewaySource(%q): %v", want, err)
	}
	benchmarks, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	for _, tt := range []struct{ src, want string }{
		{benchmarks, "-gateway-src " + benchmarks + ": go.mod is module github.com/gatehouse-go/gatehouse/benchmarks, not github.com/gatehouse-go/gatehouse/cmd/gatehouse"},
		{empty, "-gateway-src " + empty + ": open " + filepath.Join(empty, "go.mod") + ": no such file or directory"},
		{"", "no -gateway-src: this tool was built without its source's path; give -gateway-src DIR (cmd/gatehouse of a clone) or -gateway PATH"},
	} {
		if err := checkGatewaySource(tt.src); err == nil || err.Error() != tt.want {
			t.Errorf("checkGatewaySource(%q) = %v, want %s", tt.src, err, tt.want)
		}
	}
	// load builds nothing from a wrong directory: the error is the check's.
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"-gateway-src", benchmarks, "-requests", "1"}, &stdout, &stderr); code != 1 {
		t.Errorf("run with -gateway-src %s = %d, want 1", benchmarks, code)
	}
	if want := "load: -gateway-src " + benchmarks + ": go.mod is module github.com/gatehouse-go/gatehouse/benchmarks, not github.com/gatehouse-go/gatehouse/cmd/gatehouse\n"; stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
}

// TestLoad runs a short bounded load through the tool against the gatehouse
// gateway, built and started as a child process, and fails on any status its
// class does not allow and on any request lost or answered twice.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the gatehouse gateway")
	}
	// The context bounds a run that hangs, not a slow one: building the
	// gateway alone can take a minute on a busy machine.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out bytes.Buffer
	code := run(ctx, []string{"-requests", "2000", "-duration", "10s", "-concurrency", "16"}, &out, os.Stderr)
	t.Logf("\n%s", out.String())
	if code != 0 {
		t.Fatalf("load exited %d", code)
	}
	for _, want := range []string{"mix: ", "PASS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestDriveCatches shows that the checks fail where they should: a gateway
// that lets everyone in, one that answers without JSON, and one that drops
// connections.
func TestDriveCatches(t *testing.T) {
	k := keys{bulk: "b", scoped: "s", small: "m", invalid: []string{"x"}}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"every request answered 200", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{}`))
		}, "status 200, allowed [401]"},
		{"an answer that is not JSON", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "nope", http.StatusUnauthorized)
		}, "want application/json"},
		{"connections dropped", func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}, "no answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			client := newClient(4)
			defer client.CloseIdleConnections()
			rep := drive(context.Background(), client, srv.URL, "mix", mix(k, false), bounds{requests: 200, duration: 10 * time.Second, concurrency: 4}, 1)
			if rep.sent != 200 {
				t.Errorf("sent %d, want 200", rep.sent)
			}
			found := false
			for _, f := range rep.failures {
				found = found || strings.Contains(f, tt.want)
			}
			if !found {
				t.Errorf("no failure mentions %q; failures: %q", tt.want, rep.failures[:min(3, len(rep.failures))])
			}
		})
	}
}

// TestCompare runs -compare briefly: the three servers answer every request
// and the ratios are printed.
func TestCompare(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the gatehouse gateway")
	}
	// The run builds the gateway, starts six servers and drives each four
	// times, each drive bounded by -requests and -duration: on a busy
	// machine that is well over a minute. The context only bounds a run
	// that hangs, so it is far longer than any run takes.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out bytes.Buffer
	code := run(ctx, []string{"-requests", "500", "-duration", "5s", "-concurrency", "16", "-compare", "-usage-compare", "-log-level", "INFO"}, &out, os.Stderr)
	t.Logf("\n%s", out.String())
	if code != 0 {
		t.Fatalf("load -compare exited %d", code)
	}
	for _, want := range []string{
		"ratio gateway/bare throughput", "ratio gateway/bare-with-the-request-line throughput",
		"ratio contract-floor/bare throughput", "ratio gateway/contract-floor throughput",
		"ratio gateway/bare-proxy throughput", "ratio gateway-usage-on/gateway-usage-off throughput", "PASS",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestSameHeaderNames: the contract's floor answers with the header names
// and body length of a gateway's 200, and sameHeaderNames tells apart a
// server that writes one header fewer, or another status.
func TestSameHeaderNames(t *testing.T) {
	ctx := t.Context()
	withHeaders := func(names ...string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for _, n := range names {
				w.Header().Set(n, "1")
			}
			bareHandler().ServeHTTP(w, r)
		}))
		t.Cleanup(s.Close)
		return s
	}
	floor := httptest.NewServer(errorsjson.RequestID(contractHeaders(bareHandler())))
	defer floor.Close()
	contract := []string{"X-Request-Id", "X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Daily-Limit", "X-Ratelimit-Daily-Remaining"}
	client := newClient(1)
	k := keys{bulk: "ila_any"}
	if err := sameHeaderNames(ctx, client, withHeaders(contract...).URL, floor.URL, k); err != nil {
		t.Errorf("a server writing the contract's headers: %v", err)
	}
	if err := sameHeaderNames(ctx, client, withHeaders(contract[1:]...).URL, floor.URL, k); err == nil {
		t.Error("a server without X-Request-Id: no error")
	}
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusTeapot)
	}))
	defer refusing.Close()
	if err := sameHeaderNames(ctx, client, refusing.URL, floor.URL, k); err == nil || !strings.Contains(err.Error(), "answered 418, want 200") {
		t.Errorf("a server answering 418: %v, want answered 418, want 200", err)
	}
}

// TestSoak runs a few short rounds and checks that the gateway process is
// sampled and judged flat.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the gatehouse gateway")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // as TestLoad's
	defer cancel()
	var out bytes.Buffer
	code := run(ctx, []string{"-soak", "3s", "-requests", "300", "-duration", "1s", "-concurrency", "8"}, &out, os.Stderr)
	t.Logf("\n%s", out.String())
	if code != 0 {
		t.Fatalf("load -soak exited %d", code)
	}
	for _, want := range []string{"← baseline", "flatness, last round vs baseline: rss", "PASS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestDemoKeys: the keys the tool gives a -target gateway are the demo
// configuration's, each where its kind of request expects it.
func TestDemoKeys(t *testing.T) {
	k := demoKeys()
	want := keys{
		bulk:    "ila_tQQCpbGt20EtVWgkAahjuU84aW9eavuQ3WeTsV",
		scoped:  "ila_7wXX9PxBOvcPWOtRguD0gcBI5FK2qkyr1AgLZE",
		small:   "ila_V8RH3qHIdJNpF4spgeD919LdRWHRs3OF43tXVH",
		invalid: []string{"ila_FDidErCQK0tGGRY1DI2FOkLkmHsOXTj41tfoms", "ila_oTPvq5mMSEiyqkJOkhC5cjL7DdJ8SlMh07fYS4", "ila_short", "not-a-key", ""},
		limited: true,
	}
	if fmt.Sprintf("%#v", k) != fmt.Sprintf("%#v", want) {
		t.Errorf("demoKeys() = %#v\nwant %#v", k, want)
	}
}
