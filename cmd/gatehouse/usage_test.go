package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestCommandName: the command calls itself gatehouse, its installed name, in
// its usage (which lists its forms: serve, keys, usage, config, version), its keys usage and
// its start-up banner.
func TestCommandName(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, &stdout, &stderr, nil, nil); err != nil {
		t.Fatalf("-h: %v", err)
	}
	if !strings.HasPrefix(stderr.String(), usageHead+"  -addr string\n") {
		t.Errorf("-h does not start with the command's forms, then its flags:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "the configuration's keys. See: gatehouse keys\n") {
		t.Errorf("-h: -db's usage does not point to gatehouse keys:\n%s", stderr.String())
	}

	stderr.Reset()
	err := run(context.Background(), []string{"keys"}, &stdout, &stderr, nil, nil)
	if err == nil || err.Error() != "keys: a command is required" {
		t.Errorf("keys with no command: err %v, want keys: a command is required", err)
	}
	if first, _, _ := strings.Cut(stderr.String(), "\n"); first != "usage: gatehouse keys COMMAND -db URL [flags] [ID]" {
		t.Errorf("keys with no command prints %q first", first)
	}

	g := start(t)
	if first, _, _ := strings.Cut(g.stdout.String(), "\n"); first != "gatehouse listening on "+g.base {
		t.Errorf("the banner's first line is %q, want %q", first, "gatehouse listening on "+g.base)
	}
}
