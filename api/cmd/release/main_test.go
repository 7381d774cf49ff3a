package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-go/gatehouse/api"
	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

// clone returns a throwaway clone of this repository's HEAD, on a branch,
// without its tags, with a committer set, and the hash of its HEAD.
func clone(t *testing.T) (dir, head string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git on PATH")
	}
	root, err := git(".", "rev-parse", "--show-toplevel")
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	dir = t.TempDir()
	if out, err := exec.Command("git", "clone", "-q", "--no-tags", root, dir).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	// On a branch of its own: CI may have checked out a detached HEAD.
	mustGit(t, dir, "checkout", "-q", "-B", "release-test")
	mustGit(t, dir, "config", "user.name", "Release Test")
	mustGit(t, dir, "config", "user.email", "release-test@example.com")
	return dir, mustGit(t, dir, "rev-parse", "HEAD")
}

// versions returns the version at which the tree in dir requires its
// siblings (promgatehouse's requirement of the core tells) and the next minor
// version, which the tests release.
func versions(t *testing.T, dir string) (was, next string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "promgatehouse", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse("promgatehouse/go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.Require {
		if r.Mod.Path == api.CorePath {
			was = r.Mod.Version
		}
	}
	var major, minor int
	if _, err := fmt.Sscanf(semver.MajorMinor(was), "v%d.%d", &major, &minor); err != nil {
		t.Fatalf("promgatehouse requires the core at %q: %v", was, err)
	}
	return was, fmt.Sprintf("v%d.%d.0", major, minor+1)
}

// mustGit runs git in dir and returns its output, or fails the test.
func mustGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := git(dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// goMods returns the path and contents of every go.mod of the repository in
// dir at revision rev.
func goMods(t *testing.T, dir, rev string) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, f := range strings.Split(mustGit(t, dir, "ls-tree", "-r", "--name-only", rev), "\n") {
		if filepath.Base(f) == "go.mod" && !strings.Contains(f, "testdata/") {
			files[f] = mustGit(t, dir, "show", rev+":"+f) + "\n"
		}
	}
	if len(files) < len(api.Published()) {
		t.Fatalf("%d go.mod files at %s; at least the %d published modules have one", len(files), rev, len(api.Published()))
	}
	return files
}

// TestApply: a release writes two commits on the branch and tags every
// published module, annotated, at the first: there every go.mod requires its
// siblings at the version, the command's without replace directives; in the
// second the command's replace lines are back, and the tree differs from
// before the release in the require lines only. A second run at the same
// version is refused.
func TestApply(t *testing.T) {
	dir, before := clone(t)
	_, v := versions(t, dir)
	var out bytes.Buffer
	if err := run([]string{"-C", dir, v, "-apply"}, &out); err != nil {
		t.Fatal(err)
	}
	release := mustGit(t, dir, "rev-parse", "HEAD~1")
	if got := mustGit(t, dir, "rev-parse", "HEAD~2"); got != before {
		t.Fatalf("the release's commits follow %s, want the HEAD before it, %s", got, before)
	}
	if got := mustGit(t, dir, "log", "--format=%s", "-2"); got != "all: replace directives back after "+v+"\nall: release "+v {
		t.Errorf("commit subjects:\n%s", got)
	}
	if !strings.Contains(out.String(), "\ntagged "+release+"\nthen committed "+mustGit(t, dir, "rev-parse", "HEAD")+"\n") {
		t.Errorf("output does not name the commits:\n%s", out.String())
	}
	if s := mustGit(t, dir, "status", "--porcelain"); s != "" {
		t.Errorf("the tree has changes after the release:\n%s", s)
	}

	var want []string
	for _, m := range api.Published() {
		want = append(want, m.Tag(v))
		tag := m.Tag(v)
		if got := mustGit(t, dir, "rev-parse", tag+"^{commit}"); got != release {
			t.Errorf("tag %s names %s, want the release commit %s", tag, got, release)
		}
		if got := mustGit(t, dir, "cat-file", "-t", tag); got != "tag" {
			t.Errorf("tag %s is a %s, want an annotated tag", tag, got)
		}
		if got := mustGit(t, dir, "tag", "-l", "--format=%(contents:subject)", tag); got != m.Path+" "+v {
			t.Errorf("tag %s says %q", tag, got)
		}
	}
	tags := strings.Split(mustGit(t, dir, "tag", "-l"), "\n")
	slices.Sort(want)
	if !slices.Equal(tags, want) {
		t.Errorf("tags %q, want %q", tags, want)
	}

	old, atTag, atHead := goMods(t, dir, before), goMods(t, dir, release), goMods(t, dir, "HEAD")
	for f, data := range old {
		dev, err := api.DevGoMod(f, []byte(data), v)
		if err != nil {
			t.Fatal(err)
		}
		rel, err := api.ReleaseGoMod(f, []byte(data), v)
		if err != nil {
			t.Fatal(err)
		}
		if atTag[f] != string(rel) {
			t.Errorf("%s at the tags:\n%s\nwant:\n%s", f, atTag[f], rel)
		}
		if atHead[f] != string(dev) {
			t.Errorf("%s after the release:\n%s\nwant:\n%s", f, atHead[f], dev)
		}
		if m := coreRequire.FindStringSubmatch(atHead[f]); m != nil && m[1] != v {
			t.Errorf("%s after the release requires the core at another version:\n%s", f, atHead[f])
		}
	}
	cmdMod := atTag["cmd/gatehouse/go.mod"]
	if strings.Contains(cmdMod, "replace") || !strings.Contains(cmdMod, "\tgithub.com/gatehouse-go/gatehouse/ratelimit/redisstore "+v+"\n") {
		t.Errorf("cmd/gatehouse/go.mod at the tags:\n%s", cmdMod)
	}
	if !strings.Contains(atHead["cmd/gatehouse/go.mod"], "\nreplace github.com/gatehouse-go/gatehouse => ../../\n") {
		t.Errorf("cmd/gatehouse/go.mod after the release has not its replace lines:\n%s", atHead["cmd/gatehouse/go.mod"])
	}
	if got := mustGit(t, dir, "diff", "--name-only", before, "HEAD", "--", ".", ":!*go.mod"); got != "" {
		t.Errorf("the release changed files other than go.mod:\n%s", got)
	}

	err := run([]string{"-C", dir, v, "-apply"}, &out)
	if err == nil || err.Error() != "tag "+v+" exists" {
		t.Errorf("a second release of %s: %v, want tag %s exists", v, err, v)
	}
}

// TestDryRun: without -apply, release prints the commits, the tags and the
// push command, and writes nothing.
func TestDryRun(t *testing.T) {
	dir, before := clone(t)
	was, v := versions(t, dir)
	var out bytes.Buffer
	if err := run([]string{"-C", dir, v}, &out); err != nil {
		t.Fatal(err)
	}
	branch := mustGit(t, dir, "symbolic-ref", "--short", "HEAD")
	short := mustGit(t, dir, "rev-parse", "--short", "HEAD")
	tags := "tags:\n"
	var push []string
	for _, m := range api.Published() {
		tags += "\t" + m.Tag(v) + "\t" + m.Path + "\n"
		push = append(push, m.Tag(v))
	}
	for _, want := range []string{
		"release " + v + " of 5 modules, from " + branch + " at " + short + "\n" + `commit "all: release ` + v + `":` + "\n",
		"\tpromgatehouse/go.mod: require github.com/gatehouse-go/gatehouse " + v + " (was " + was + ")\n",
		"\tcmd/gatehouse/go.mod: drop replace github.com/gatehouse-go/gatehouse => ../../\n",
		"\n" + tags + `commit "all: replace directives back after ` + v + `":` + "\n",
		"\tcmd/gatehouse/go.mod: replace github.com/gatehouse-go/gatehouse => ../../\n",
		"push (release never does):\n\tgit push --atomic origin " + branch + " " + strings.Join(push, " ") + "\n" +
			"dry run: nothing written; -apply writes the commits and the tags\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the dry run's output has not %q:\n%s", want, out.String())
		}
	}
	if !strings.HasSuffix(out.String(), "dry run: nothing written; -apply writes the commits and the tags\n") {
		t.Errorf("the dry run's output does not end with what it wrote:\n%s", out.String())
	}
	unchanged(t, dir, before)
}

// unchanged fails the test unless the repository in dir is at head, clean
// and without tags.
func unchanged(t *testing.T, dir, head string) {
	t.Helper()
	if got := mustGit(t, dir, "rev-parse", "HEAD"); got != head {
		t.Errorf("HEAD moved from %s to %s", head, got)
	}
	if s := mustGit(t, dir, "status", "--porcelain"); s != "" {
		t.Errorf("the tree has changes:\n%s", s)
	}
	if tags := mustGit(t, dir, "tag", "-l"); tags != "" {
		t.Errorf("tags were made: %s", tags)
	}
}

// TestRefusals: release refuses a bad version, a tree with changes not
// committed, a detached HEAD, an existing tag of any module, and a version
// not above the latest release; each refusal writes nothing.
func TestRefusals(t *testing.T) {
	dir, head := clone(t)
	refused := func(want string, args ...string) {
		t.Helper()
		var out bytes.Buffer
		err := run(append([]string{"-C", dir}, args...), &out)
		if err == nil || err.Error() != want {
			t.Errorf("release %q: %v, want %s", args, err, want)
		}
		if out.Len() > 0 {
			t.Errorf("release %q printed %q", args, out.String())
		}
	}

	refused("usage: release [-C dir] vX.Y.Z [-apply]")
	refused("usage: release [-C dir] vX.Y.Z [-apply]", "v0.2.0", "v0.3.0")
	refused("usage: release [-C dir] vX.Y.Z [-apply]", "-push", "v0.2.0")
	refused(`"0.2.0" is not a release version: want vMAJOR.MINOR.PATCH, such as v0.1.0`, "0.2.0", "-apply")
	refused("v2.0.0 would need module paths ending in /v2", "v2.0.0", "-apply")

	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	refused("the tree has changes not committed (a release is made of commits only):\n?? notes.txt", "v0.2.0", "-apply")
	os.Remove(filepath.Join(dir, "notes.txt"))
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module github.com/gatehouse-go/gatehouse\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	refused("the tree has changes not committed (a release is made of commits only):\n M go.mod", "v0.2.0", "-apply")
	mustGit(t, dir, "checkout", "-q", "--", "go.mod")

	mustGit(t, dir, "checkout", "-q", "--detach")
	refused("HEAD is detached: check out the branch to release from", "v0.2.0", "-apply")
	mustGit(t, dir, "checkout", "-q", "-")
	unchanged(t, dir, head)

	mustGit(t, dir, "tag", "promgatehouse/v0.3.0")
	refused("tag promgatehouse/v0.3.0 exists", "v0.3.0", "-apply")
	mustGit(t, dir, "tag", "v0.5.0")
	refused("v0.4.0 is not above v0.5.0, the latest release", "v0.4.0", "-apply")
	refused("v0.5.0-rc.1 is not above v0.5.0, the latest release", "v0.5.0-rc.1", "-apply")
	if got := mustGit(t, dir, "rev-parse", "HEAD"); got != head {
		t.Errorf("HEAD moved from %s to %s", head, got)
	}
	if got := mustGit(t, dir, "tag", "-l"); got != "promgatehouse/v0.3.0\nv0.5.0" {
		t.Errorf("tags after the refusals: %q", got)
	}
}

// TestScript: .ci/release runs this tool on the repository it is in, and a
// -C after it names another; its dry run prints what run prints.
func TestScript(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on PATH")
	}
	dir, head := clone(t)
	var want bytes.Buffer
	if err := run([]string{"-C", dir, "v0.2.0"}, &want); err != nil {
		t.Fatal(err)
	}
	root, err := git(".", "rev-parse", "--show-toplevel")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, ".ci", "release"), "-C", dir, "v0.2.0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf(".ci/release: %v\n%s", err, stderr.String())
	}
	if string(got) != want.String() {
		t.Errorf(".ci/release -C %s v0.2.0 printed:\n%s\nwant:\n%s", dir, got, want.String())
	}
	unchanged(t, dir, head)
}

// coreRequire finds the version at which a go.mod requires the core module,
// directly or as "// indirect".
var coreRequire = regexp.MustCompile(`(?m)^\s*(?:require\s+)?github\.com/gatehouse-go/gatehouse (v\S+)`)
