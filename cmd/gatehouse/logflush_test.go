package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gatehouse-go/gatehouse/internal/syncbuf"
)

// TestLogFlushedAtShutdown: with -log-flush 1h the request log line is held
// while the gateway serves, and is on stderr once run has returned after a
// stop: run closes its log writer after the server has shut down.
func TestLogFlushedAtShutdown(t *testing.T) {
	g := start(t, "-log-level", "INFO", "-log-flush", "1h")
	r := g.call(t, "POST", "/api/premium-calculator", nil, `{"inputs":{}}`)
	var body struct {
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); r.status != 401 || err != nil || body.RequestID == "" {
		t.Fatalf("without a key: %d %q, want 401 with a request_id", r.status, r.body)
	}
	want := "request_id=" + body.RequestID
	if strings.Contains(g.stderr.String(), want) {
		t.Fatalf("stderr holds the request's line while the gateway serves with -log-flush 1h: the log is not batched")
	}

	g.stop()
	err := <-g.done
	g.done <- err // for start's cleanup
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	var line string
	for l := range strings.Lines(g.stderr.String()) {
		if strings.Contains(l, want) {
			line = l
		}
	}
	if !strings.Contains(line, "msg=request ") || !strings.Contains(line, " status=401 ") {
		t.Fatalf("after run returned, stderr's line for %s is %q, want the request's log line with status=401; stderr:\n%s", want, line, g.stderr.String())
	}
}

// TestLogFlushFlag: -log-flush refuses a negative delay.
func TestLogFlushFlag(t *testing.T) {
	_, err := parseFlags([]string{"-log-flush", "-1ms"}, &syncbuf.Buffer{})
	if err == nil || !strings.HasPrefix(err.Error(), "-log-flush -1ms: must not be negative") {
		t.Fatalf("-log-flush -1ms: %v, want a refusal", err)
	}
}
