package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestCommandName: the command calls itself gatehouse, its installed name, in
// its usage (which lists its forms: serve, keys, usage, config, version), its keys usage and
// its start-up banner. gatehouse keys, alone or with -h, lists the keys
// commands and succeeds, as gatehouse -h does; a flag in place of a command,
// or an unknown command, lists them and fails.
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

	var keysUsage bytes.Buffer
	writeKeysUsage(&keysUsage)
	if first, _, _ := strings.Cut(keysUsage.String(), "\n"); first != "usage: gatehouse keys COMMAND -db URL [flags] [ID]" {
		t.Errorf("gatehouse keys's usage starts with %q", first)
	}
	for _, tt := range []struct {
		args    []string
		wantErr string // "" for none
	}{
		{[]string{"keys"}, ""},
		{[]string{"keys", "-h"}, ""},
		{[]string{"keys", "-help"}, ""},
		{[]string{"keys", "-db", "sqlite:keys.db"}, "keys: a command is required"},
		{[]string{"keys", "frobnicate"}, `keys: unknown command "frobnicate"`},
	} {
		stdout.Reset()
		stderr.Reset()
		err := run(context.Background(), tt.args, &stdout, &stderr, nil, nil)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.wantErr {
			t.Errorf("gatehouse %s: error %q, want %q", strings.Join(tt.args, " "), got, tt.wantErr)
		}
		if stderr.String() != keysUsage.String() || stdout.Len() > 0 {
			t.Errorf("gatehouse %s: stdout %q, stderr\n%s\nwant nothing on stdout and the commands on stderr:\n%s",
				strings.Join(tt.args, " "), stdout.String(), stderr.String(), keysUsage.String())
		}
	}

	g := start(t)
	if first, _, _ := strings.Cut(g.stdout.String(), "\n"); first != "gatehouse listening on "+g.base {
		t.Errorf("the banner's first line is %q, want %q", first, "gatehouse listening on "+g.base)
	}
}
