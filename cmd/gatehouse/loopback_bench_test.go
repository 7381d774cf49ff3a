package main

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/gatehouse-go/gatehouse/internal/demo"
	"github.com/gatehouse-go/gatehouse/internal/logbatch"
	"github.com/gatehouse-go/gatehouse/internal/serving"
)

// BenchmarkLoopback: the gateway with its request log on (a text line
// a request, to a file, batched as -log-flush's default) against the demo calculation alone, each behind the
// gateway's http.Server on 127.0.0.1, called over keep-alive connections:
// what -compare of the load tool measures, in one process, for profiles.
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
	g, plain := inProcessGatewayLogging(b, &options{}, slog.New(slog.NewTextHandler(lines, nil)))
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"gateway", g.Handler()}, {"bare", http.HandlerFunc(demo.Calculate)}} {
		b.Run(tc.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			mux := http.NewServeMux()
			mux.Handle("/", tc.h)
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
