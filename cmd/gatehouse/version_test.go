package main

import (
	"bytes"
	"context"
	"regexp"
	"runtime"
	"runtime/debug"
	"testing"
)

// TestVersionLine: `gatehouse version` prints the main module's version from
// the build information and the Go version that built the binary; without
// build information, "(unknown)" and the running Go version.
func TestVersionLine(t *testing.T) {
	for _, c := range []struct {
		bi   *debug.BuildInfo
		want string
	}{
		{&debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/gatehouse-go/gatehouse/cmd/gatehouse", Version: "v0.1.0"}}, "gatehouse v0.1.0 go1.26.0\n"},
		{&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/gatehouse-go/gatehouse/cmd/gatehouse", Version: "(devel)"}}, "gatehouse (devel) go1.26.8\n"},
		{&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.1.1-0.20261204172406-4c39dcf961fb"}}, "gatehouse v0.1.1-0.20261204172406-4c39dcf961fb go1.26.8\n"},
		{nil, "gatehouse (unknown) " + runtime.Version() + "\n"},
	} {
		if got := versionLine(c.bi); got != c.want {
			t.Errorf("versionLine(%+v) = %q, want %q", c.bi, got, c.want)
		}
	}
}

// TestVersionCommand: `gatehouse version` prints this binary's version line
// on stdout, nothing on stderr, and refuses arguments.
func TestVersionCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &stdout, &stderr, nil, nil); err != nil {
		t.Fatal(err)
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("a test binary has build information")
	}
	if got, want := stdout.String(), versionLine(bi); got != want {
		t.Errorf("gatehouse version printed %q, want %q", got, want)
	}
	if !regexp.MustCompile(`^gatehouse \S+ go1\.\d+\S*\n$`).MatchString(stdout.String()) {
		t.Errorf("gatehouse version printed %q, not gatehouse VERSION GOVERSION", stdout.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("gatehouse version wrote to stderr: %q", stderr.String())
	}

	stdout.Reset()
	err := run(context.Background(), []string{"version", "-v"}, &stdout, &stderr, nil, nil)
	if err == nil || err.Error() != "version takes no arguments" {
		t.Errorf("gatehouse version -v: error %v, want version takes no arguments", err)
	}
	if stdout.Len() > 0 {
		t.Errorf("gatehouse version -v printed %q", stdout.String())
	}
}
