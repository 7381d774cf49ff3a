package logbatch

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkWriter: one request log line (~200 bytes, as slog's TextHandler
// writes it) a op, to a file and to a pipe that a goroutine drains: straight
// (one write(2) a line) and through a Writer with the gatehouse command's 10 ms
// Flush. Close is inside the timing, so the batched figure includes writing
// every line. ns/op is the writing goroutine's wall time; cpu-ns/op is the
// whole process's CPU time (the flusher and, for the pipe, its reader too).
func BenchmarkWriter(b *testing.B) {
	p := []byte(`time=2026-11-28T09:00:00.000Z level=INFO msg=request request_id=9e2b1e6f-37eb-4560-b2a4-a80bb92867c0 method=POST path=/api/premium-calculator key_id=key_full product=premium-calculator status=200 bytes=64 duration=412.3µs` + "\n")
	if n := len(p); n < 180 || n > 240 {
		b.Fatalf("line of %d bytes, want about 200", n)
	}
	open := func(b *testing.B) *os.File {
		f, err := os.Create(filepath.Join(b.TempDir(), "log"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { f.Close() })
		return f
	}
	for _, to := range []struct {
		name string
		open func(*testing.B) *os.File
	}{{"file", open}, {"pipe", pipe}} {
		b.Run(to.name, func(b *testing.B) { benchmarkWriter(b, p, to.open) })
	}
}

// pipe returns the writing end of a pipe whose other end a goroutine reads
// and discards until the benchmark ends, as journald or docker read stderr.
func pipe(b *testing.B) *os.File {
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		io.Copy(io.Discard, r)
		close(read)
	}()
	b.Cleanup(func() {
		w.Close()
		<-read
		r.Close()
	})
	return w
}

func benchmarkWriter(b *testing.B, p []byte, open func(*testing.B) *os.File) {
	b.Run("direct", func(b *testing.B) {
		f := open(b)
		b.ReportAllocs()
		b.SetBytes(int64(len(p)))
		defer reportCPU(b)()
		for b.Loop() {
			if _, err := f.Write(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("logbatch", func(b *testing.B) {
		f := open(b)
		w := New(f, Config{Flush: 10 * time.Millisecond})
		b.ReportAllocs()
		b.SetBytes(int64(len(p)))
		defer reportCPU(b)()
		for b.Loop() {
			if _, err := w.Write(p); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	})
}

// reportCPU starts counting the process's CPU time; the function it returns
// reports it a op, as cpu-ns/op.
func reportCPU(b *testing.B) func() {
	start, ok := processCPU()
	return func() {
		if end, ok2 := processCPU(); ok && ok2 && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}
