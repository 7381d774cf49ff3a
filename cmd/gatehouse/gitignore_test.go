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
// README.md, docs/ and the example's doc comment create, with the -wal and
// -shm files beside them (the store runs SQLite in WAL mode), are ignored by
// git at the repository's root and in example/, so following the
// instructions leaves nothing to commit by mistake. Skipped outside a git
// checkout (a module zip).
func TestDocumentedDatabasesIgnored(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git on PATH")
	}
	if err := exec.Command("git", "-C", root, "rev-parse", "--is-inside-work-tree").Run(); err != nil {
		t.Skip("not a git checkout")
	}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files := append([]string{filepath.Join(root, "README.md"), filepath.Join(root, "example", "main.go")}, docs...)
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
		t.Fatal("no sqlite:PATH.db in README.md, docs/ or example/main.go: the README's keys commands use one")
	}
	for _, p := range paths {
		for _, dir := range []string{root, filepath.Join(root, "example")} {
			for _, f := range []string{p, p + "-wal", p + "-shm"} {
				err := exec.Command("git", "-C", dir, "check-ignore", "-q", f).Run()
				var exit *exec.ExitError
				switch {
				case errors.As(err, &exit) && exit.ExitCode() == 1:
					t.Errorf("%s in %s is not ignored by git", f, dir)
				case err != nil:
					t.Fatalf("git check-ignore %s in %s: %v", f, dir, err)
				}
			}
		}
	}
}
