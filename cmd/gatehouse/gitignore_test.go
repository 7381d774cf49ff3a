package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// sqlitePath finds the database files that the documentation's commands
// create: "-db sqlite:keys.db" makes keys.db in the directory it is run in.
var sqlitePath = regexp.MustCompile(`sqlite:([a-z0-9_./-]+\.db)\b`)

// TestDocumentedDatabasesIgnored: the SQLite files that the commands of
// README.md, docs/ and this command's doc comment create, with the -wal and
// -shm files beside them (the store runs SQLite in WAL mode), are ignored by
// git at the repository's root and in cmd/gatehouse (where go run . runs), so
// following the instructions leaves nothing to commit by mistake. Skipped
// outside a git checkout (a module zip).
func TestDocumentedDatabasesIgnored(t *testing.T) {
	root := gitRoot(t)
	here := filepath.Join(root, "cmd", "gatehouse")
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files := append([]string{filepath.Join(root, "README.md"), filepath.Join(here, "main.go")}, docs...)
	var paths []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range sqlitePath.FindAllSubmatch(b, -1) {
			if p := string(m[1]); !slices.Contains(paths, p) {
				paths = append(paths, p)
			}
		}
	}
	if len(paths) == 0 {
		t.Fatal("no sqlite:PATH.db in README.md, docs/ or cmd/gatehouse/main.go: the README's keys commands use one")
	}
	for _, p := range paths {
		for _, dir := range []string{root, here} {
			for _, f := range []string{p, p + "-wal", p + "-shm"} {
				assertIgnored(t, dir, f)
			}
		}
	}
}

// TestBuiltBinaryIgnored: the binary that go build leaves in cmd/gatehouse is
// ignored by git. Skipped outside a git checkout.
func TestBuiltBinaryIgnored(t *testing.T) {
	assertIgnored(t, filepath.Join(gitRoot(t), "cmd", "gatehouse"), "gatehouse")
}

// gitRoot returns the repository's root as an absolute path, and skips the
// test without git or outside a git checkout (a module zip).
func gitRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git on PATH")
	}
	if err := exec.Command("git", "-C", root, "rev-parse", "--is-inside-work-tree").Run(); err != nil {
		t.Skip("not a git checkout")
	}
	return root
}

// assertIgnored fails t unless git ignores the file named f in dir.
func assertIgnored(t *testing.T, dir, f string) {
	t.Helper()
	err := exec.Command("git", "-C", dir, "check-ignore", "-q", f).Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		t.Errorf("%s in %s is not ignored by git", f, dir)
	case err != nil:
		t.Fatalf("git check-ignore %s in %s: %v", f, dir, err)
	}
}
