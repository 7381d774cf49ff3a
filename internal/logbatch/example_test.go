package logbatch_test

import (
	"log/slog"
	"os"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/logbatch"
)

// Example puts a Writer under a slog logger: the line reaches the output
// within Flush, and at Close at the latest.
func Example() {
	logs := logbatch.New(os.Stdout, logbatch.Config{Flush: 10 * time.Millisecond})
	defer logs.Close() // writes what is held: the line below, at the latest
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // for a stable Output
			}
			return a
		},
	}))
	logger.Info("request", "status", 200)
	// Output: level=INFO msg=request status=200
}
