package main

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/demo"
	"github.com/gatehouse-go/gatehouse/internal/logbatch"
	"github.com/gatehouse-go/gatehouse/internal/redistest"
	"github.com/gatehouse-go/gatehouse/internal/serving"
)

// BenchmarkLoopback: the gateway with its request log on (a text line
// a request, to a file, batched as -log-flush's default), the same gateway
// with its limits on a redis-server on loopback (-redis; skipped without
// redis-server on PATH; a decision may wait 1 s, so that a busy machine
// slows it rather than failing it), and the demo calculation alone, each behind the
// gateway's http.Server on 127.0.0.1, called over keep-alive connections:
// what -compare -redis-compare of the load tool measures, in one process,
// for profiles.
//
//	cd cmd/gatehouse && go test -run '^$' -bench Loopback -benchmem -count 6 .
func BenchmarkLoopback(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "requests.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	lines := logbatch.New(f, logbatch.Config{Flush: logbatch.DefaultFlush}) // as run does
	defer lines.Close()
	logger := slog.New(slog.NewTextHandler(lines, nil))
	// Each server is built once: a sub-benchmark runs more than once (b.N
	// grows), and only its listener is made anew each time.
	type server struct {
		h     http.Handler
		plain string // the key the requests carry
	}
	g, plain := inProcessGatewayLogging(b, &options{}, logger)
	var onRedis *server // nil without redis-server on PATH
	if _, err := exec.LookPath("redis-server"); err == nil {
		rs := redistest.Start(b)
		g, plain := inProcessGatewayLogging(b, &options{redisURL: rs.URL, redisTimeout: time.Second}, logger)
		onRedis = &server{g.Handler(), plain}
	}
	for _, tc := range []struct {
		name string
		s    *server
	}{
		{"gateway", &server{g.Handler(), plain}},
		{"gateway-on-redis", onRedis},
		{"bare", &server{http.HandlerFunc(demo.Calculate), plain}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			if tc.s == nil {
				redistest.Start(b) // no redis-server: skips b, or fails it under GATEHOUSE_REQUIRE_REDIS
			}
			h, plain := tc.s.h, tc.s.plain
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			mux := http.NewServeMux()
			mux.Handle("/", h)
			s := serving.NewServer(mux)
			go s.Serve(ln)
			defer s.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			defer client.CloseIdleConnections()
			url := "http://" + ln.Addr().String() + "/api/local"
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", url, bytes.NewReader(inProcessBody))
					req.Header.Set("Authorization", "Bearer "+plain)
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Error(resp.Status)
						return
					}
				}
			})
		})
	}
}
