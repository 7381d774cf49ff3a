package syncbuf

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestBuffer: writes from several goroutines while another reads are all kept
// (run under -race, which fails on an unguarded buffer).
func TestBuffer(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 100 {
				fmt.Fprintf(&b, "%d-%d\n", i, j)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := strings.Count(b.String(), "\n"); got != 400 {
		t.Errorf("%d lines, want 400", got)
	}
}
