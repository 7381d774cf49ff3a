package logbatch

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkWriter: one request log line (~200 bytes, as slog's TextHandler
// writes it) a op, to a file: straight (one write(2) a line) and through a
// Writer with the example gateway's 10 ms Flush. Close is inside the timing,
// so the batched figure includes writing every line.
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
	b.Run("direct", func(b *testing.B) {
		f := open(b)
		b.ReportAllocs()
		b.SetBytes(int64(len(p)))
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
