package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// keysCommandFlags are the keys commands, in the order of their usage, each
// with the flags it takes, sorted, and the positional argument a test gives it
// (none for a command that takes none).
func keysCommandFlags() []struct {
	name  string
	flags []string
	arg   []string
} {
	id := []string{"key_0123456789abcdef"}
	return []struct {
		name  string
		flags []string
		arg   []string
	}{
		{"migrate", []string{"db"}, nil},
		{"create", []string{"actor", "db", "expires", "name", "owner", "per-day", "per-minute", "products", "windows"}, nil},
		{"list", []string{"db", "owner"}, nil},
		{"show", []string{"db"}, id},
		{"update", []string{"actor", "db", "expires", "name", "per-day", "per-minute", "products", "windows"}, id},
		{"disable", []string{"actor", "db"}, id},
		{"enable", []string{"actor", "db"}, id},
		{"delete", []string{"actor", "db"}, id},
		{"owner-limits", []string{"actor", "db", "delete", "per-day", "per-minute", "windows"}, []string{"acme"}},
		{"rotate", []string{"actor", "db", "overlap"}, id},
		{"audit", []string{"db", "limit", "since"}, id},
	}
}

// keysFlagLine matches a flag's line in a usage: two spaces, the flag.
var keysFlagLine = regexp.MustCompile(`(?m)^  -(\S+)`)

// keysHelp runs "gatehouse keys name -h" through run and returns what it
// printed on stderr: the command's usage.
func keysHelp(t *testing.T, name string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"keys", name, "-h"}, &stdout, &stderr, nil, nil); err != nil || stdout.Len() != 0 {
		t.Fatalf("keys %s -h: error %v, stdout %q; want none", name, err, stdout.String())
	}
	return stderr.String()
}

// TestKeysCommandFlags: each keys command takes only its own flags. Its -h
// succeeds and prints its usage, whose first line is its synopsis (the one
// gatehouse keys lists) and whose flags are exactly its own; every flag that
// only other commands take, given after the command's ID or owner (keys show
// ID -per-minute 5), is refused before the database is opened, with the error
// "keys COMMAND: flag provided but not defined: -FLAG" and, on stderr, the
// flag's line and the command's usage.
func TestKeysCommandFlags(t *testing.T) {
	var all []string
	for _, c := range keysCommandFlags() {
		all = append(all, c.flags...)
	}
	slices.Sort(all)
	all = slices.Compact(all)

	var stdout, stderr bytes.Buffer
	run(context.Background(), []string{"keys"}, &stdout, &stderr, nil, nil)
	keysUsage := stderr.String()
	var listed []string
	for _, m := range regexp.MustCompile(`(?m)^  (\S+)`).FindAllStringSubmatch(keysUsage, -1) {
		listed = append(listed, m[1])
	}
	var names []string
	for _, c := range keysCommandFlags() {
		names = append(names, c.name)
	}
	if !slices.Equal(listed, names) {
		t.Errorf("gatehouse keys lists the commands %q, want %q:\n%s", listed, names, keysUsage)
	}

	for _, c := range keysCommandFlags() {
		t.Run(c.name, func(t *testing.T) {
			usage := keysHelp(t, c.name)
			first, _, _ := strings.Cut(usage, "\n")
			synopsis, ok := strings.CutPrefix(first, "usage: gatehouse keys "+c.name+" -db URL")
			if !ok || !strings.Contains(keysUsage, "\n  "+c.name+synopsis+"\n") {
				t.Errorf("-h's first line %q is not the synopsis gatehouse keys lists:\n%s", first, keysUsage)
			}
			var flags []string
			for _, m := range keysFlagLine.FindAllStringSubmatch(usage, -1) {
				flags = append(flags, m[1])
			}
			if !slices.Equal(flags, c.flags) {
				t.Errorf("-h lists the flags %q, want %q:\n%s", flags, c.flags, usage)
			}

			path := filepath.Join(t.TempDir(), "keys.db")
			for _, f := range all {
				if slices.Contains(c.flags, f) {
					continue
				}
				args := append(append([]string{"keys", c.name, "-db", "sqlite:" + path}, c.arg...), "-"+f, "5")
				var stdout, stderr bytes.Buffer
				err := run(context.Background(), args, &stdout, &stderr, nil, nil)
				if want := "keys " + c.name + ": flag provided but not defined: -" + f; err == nil || err.Error() != want {
					t.Errorf("%q: error %v, want %s", args[1:], err, want)
				}
				if want := "flag provided but not defined: -" + f + "\n" + usage; stderr.String() != want || stdout.Len() != 0 {
					t.Errorf("%q: stdout %q, stderr\n%s\nwant nothing on stdout, and on stderr\n%s", args[1:], stdout.String(), stderr.String(), want)
				}
			}
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a refused flag opened the database: %v", err)
			}
		})
	}
}

// TestKeysCommandFlagsExitStatus: on the built binary, each keys command's -h
// exits 0 with its usage on stderr, and a flag it does not take (the first
// that another command takes) exits 1, the status of any other refused flag of
// the gatehouse command, with the flag's line, the command's usage and the
// error on stderr and nothing on stdout.
func TestKeysCommandFlagsExitStatus(t *testing.T) {
	bin := buildBinary(t)
	path := filepath.Join(t.TempDir(), "keys.db")
	other := []string{"name", "overlap", "per-minute", "owner"} // among these, one each command does not take
	for _, c := range keysCommandFlags() {
		usage := keysHelp(t, c.name)
		i := slices.IndexFunc(other, func(f string) bool { return !slices.Contains(c.flags, f) })
		for _, tt := range []struct {
			args           []string
			code           int
			stderr, stdout string
		}{
			{[]string{"keys", c.name, "-h"}, 0, usage, ""},
			{append(append([]string{"keys", c.name, "-db", "sqlite:" + path}, c.arg...), "-"+other[i], "5"), 1,
				"flag provided but not defined: -" + other[i] + "\n" + usage + "gatehouse: keys " + c.name + ": flag provided but not defined: -" + other[i] + "\n", ""},
		} {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, tt.args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatal(err)
			}
			if code := cmd.ProcessState.ExitCode(); code != tt.code || stderr.String() != tt.stderr || stdout.String() != tt.stdout {
				t.Errorf("gatehouse %q: exit %d, stdout %q, stderr\n%s\nwant exit %d, stdout %q, stderr\n%s", tt.args, code, stdout.String(), stderr.String(), tt.code, tt.stdout, tt.stderr)
			}
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused flag opened the database: %v", err)
	}
}
