// Command release tags every published module of this repository at one
// version, in lockstep: vX.Y.Z for the core, DIR/vX.Y.Z for the module in
// DIR. Run it through .ci/release from the root of a clean checkout:
//
//	.ci/release v0.1.0          # prints the go.mod changes, commits and tags
//	.ci/release v0.1.0 -apply   # writes them
//
// It writes two commits on the current branch. The first, which the tags
// name, has every go.mod require its gatehouse siblings at the version and
// the commands' go.mod files (cmd/...) without replace directives, which
// `go install path@version` refuses. The second puts those replace lines back,
// for development in this tree. It never pushes: it prints the command that
// does. See docs/releasing.md.
//
// It refuses a version that is not vMAJOR.MINOR.PATCH (major 0 or 1), one not
// above the latest release, a tag that exists, a tree with changes not
// committed, a detached HEAD, and a published module whose directory lacks
// its go.mod or its LICENSE.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gatehouse-go/gatehouse/api"
	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

// run releases the version its arguments name (see the package doc); flags
// may come before and after the version.
func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("C", ".", "a directory of the repository to release")
	apply := fs.Bool("apply", false, "write the commits and the tags; without it, print them only")
	usage := errors.New("usage: release [-C dir] vX.Y.Z [-apply]")
	if err := fs.Parse(args); err != nil {
		return usage
	}
	if fs.NArg() == 0 {
		return usage
	}
	version := fs.Arg(0)
	if err := fs.Parse(fs.Args()[1:]); err != nil || fs.NArg() > 0 {
		return usage
	}
	p, err := makePlan(*dir, version)
	if err != nil {
		return err
	}
	p.print(stdout)
	if !*apply {
		fmt.Fprintln(stdout, "dry run: nothing written; -apply writes the commits and the tags")
		return nil
	}
	return p.apply(stdout)
}

// goMod is one go.mod file of the repository in its three forms.
type goMod struct {
	path string // relative to the repository's root, slash-separated
	// now is the file as committed; release as the release commit has it;
	// dev as the commit after it, for development in this tree.
	now, release, dev []byte
}

// plan is what a release writes.
type plan struct {
	root, branch, head, version string
	goMods                      []goMod
	modules                     []api.Module
}

// makePlan checks that the repository holding dir can be released at version
// and returns what the release writes.
func makePlan(dir, version string) (*plan, error) {
	if err := api.CheckVersion(version); err != nil {
		return nil, err
	}
	root, err := git(dir, "rev-parse", "--show-toplevel")
	if err != nil {
		return nil, err
	}
	p := &plan{root: root, version: version, modules: api.Published()}
	if status, err := git(root, "status", "--porcelain"); err != nil {
		return nil, err
	} else if status != "" {
		return nil, fmt.Errorf("the tree has changes not committed (a release is made of commits only):\n%s", status)
	}
	if p.branch, err = git(root, "symbolic-ref", "--short", "-q", "HEAD"); err != nil {
		return nil, errors.New("HEAD is detached: check out the branch to release from")
	}
	if p.head, err = git(root, "rev-parse", "--short", "HEAD"); err != nil {
		return nil, err
	}
	if err := checkTags(root, version, p.modules); err != nil {
		return nil, err
	}
	for _, m := range p.modules {
		if err := checkModule(root, m); err != nil {
			return nil, err
		}
	}
	files, err := git(root, "ls-files", "-z", "--", "go.mod", "*/go.mod")
	if err != nil {
		return nil, err
	}
	for _, f := range strings.Split(files, "\x00") {
		if f == "" || slices.Contains(strings.Split(f, "/"), "testdata") {
			continue
		}
		g := goMod{path: f}
		if g.now, err = os.ReadFile(filepath.Join(root, filepath.FromSlash(f))); err != nil {
			return nil, err
		}
		if g.release, err = api.ReleaseGoMod(f, g.now, version); err != nil {
			return nil, err
		}
		if g.dev, err = api.DevGoMod(f, g.now, version); err != nil {
			return nil, err
		}
		p.goMods = append(p.goMods, g)
	}
	return p, nil
}

// checkTags returns an error if a tag of the release exists, or if version is
// not above the latest release (the highest vX.Y.Z tag).
func checkTags(root, version string, modules []api.Module) error {
	for _, m := range modules {
		if _, err := git(root, "rev-parse", "-q", "--verify", "refs/tags/"+m.Tag(version)); err == nil {
			return fmt.Errorf("tag %s exists", m.Tag(version))
		}
	}
	tags, err := git(root, "tag", "--list", "v*")
	if err != nil {
		return err
	}
	latest := ""
	for _, t := range strings.Fields(tags) {
		if api.CheckVersion(t) == nil && (latest == "" || semver.Compare(t, latest) > 0) {
			latest = t
		}
	}
	if latest != "" && semver.Compare(version, latest) <= 0 {
		return fmt.Errorf("%s is not above %s, the latest release", version, latest)
	}
	return nil
}

// checkModule returns an error unless m's directory holds its go.mod, for
// m.Path, and a LICENSE, which its zip needs (pkg.go.dev shows a module's
// documentation only with a license it recognizes in the module's own files).
func checkModule(root string, m api.Module) error {
	dir := filepath.Join(root, filepath.FromSlash(m.Dir))
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	if got := modfile.ModulePath(data); got != m.Path {
		return fmt.Errorf("%s: module %s, not %s", path.Join(m.Dir, "go.mod"), got, m.Path)
	}
	if _, err := os.Stat(filepath.Join(dir, "LICENSE")); err != nil {
		return fmt.Errorf("%s has no LICENSE: its module zip would have none", m.Dir)
	}
	return nil
}

// releaseSubject and devSubject are the subjects of the two commits.
func (p *plan) releaseSubject() string { return "all: release " + p.version }
func (p *plan) devSubject() string {
	return "all: replace directives back after " + p.version
}

// tags returns the release's tags, in the order of api.Published.
func (p *plan) tags() []string {
	var tags []string
	for _, m := range p.modules {
		tags = append(tags, m.Tag(p.version))
	}
	return tags
}

// print writes the plan: each commit with its go.mod changes, the tags and
// the push command.
func (p *plan) print(w io.Writer) {
	fmt.Fprintf(w, "release %s of %d modules, from %s at %s\n", p.version, len(p.modules), p.branch, p.head)
	if changes := p.changes(func(g goMod) ([]byte, []byte) { return g.now, g.release }); len(changes) > 0 {
		fmt.Fprintf(w, "commit %q:\n", p.releaseSubject())
		for _, c := range changes {
			fmt.Fprintf(w, "\t%s\n", c)
		}
	} else {
		fmt.Fprintf(w, "no go.mod changes: the tags name %s\n", p.head)
	}
	fmt.Fprintln(w, "tags:")
	for _, m := range p.modules {
		fmt.Fprintf(w, "\t%s\t%s\n", m.Tag(p.version), m.Path)
	}
	if changes := p.changes(func(g goMod) ([]byte, []byte) { return g.release, g.dev }); len(changes) > 0 {
		fmt.Fprintf(w, "commit %q:\n", p.devSubject())
		for _, c := range changes {
			fmt.Fprintf(w, "\t%s\n", c)
		}
	}
	fmt.Fprintf(w, "push (release never does):\n\tgit push --atomic origin %s %s\n", p.branch, strings.Join(p.tags(), " "))
}

// changes describes, file by file, how each go.mod's from form differs from
// its to form.
func (p *plan) changes(forms func(goMod) (from, to []byte)) []string {
	var out []string
	for _, g := range p.goMods {
		from, to := forms(g)
		if bytes.Equal(from, to) {
			continue
		}
		for _, c := range describe(from, to) {
			out = append(out, g.path+": "+c)
		}
	}
	return out
}

// describe lists the require and replace lines that differ between two
// forms of one go.mod, both of which parse.
func describe(from, to []byte) []string {
	a, _ := modfile.Parse("from", from, nil)
	b, _ := modfile.Parse("to", to, nil)
	was := map[string]string{}
	for _, r := range a.Require {
		was[r.Mod.Path] = r.Mod.Version
	}
	var out []string
	for _, r := range b.Require {
		if v, ok := was[r.Mod.Path]; !ok {
			out = append(out, fmt.Sprintf("require %s %s", r.Mod.Path, r.Mod.Version))
		} else if v != r.Mod.Version {
			out = append(out, fmt.Sprintf("require %s %s (was %s)", r.Mod.Path, r.Mod.Version, v))
		}
	}
	replaces := func(f *modfile.File) []string {
		var rs []string
		for _, r := range f.Replace {
			rs = append(rs, strings.TrimSpace(r.Old.Path+" "+r.Old.Version)+" => "+strings.TrimSpace(r.New.Path+" "+r.New.Version))
		}
		return rs
	}
	ra, rb := replaces(a), replaces(b)
	for _, r := range ra {
		if !slices.Contains(rb, r) {
			out = append(out, "drop replace "+r)
		}
	}
	for _, r := range rb {
		if !slices.Contains(ra, r) {
			out = append(out, "replace "+r)
		}
	}
	return out
}

// apply writes the release commit (if any go.mod changes), tags it, and
// writes the commit after it (if any go.mod differs from the release's).
func (p *plan) apply(w io.Writer) error {
	commit := func(subject, body string, form func(goMod) []byte, skip func(goMod) bool) (bool, error) {
		var files []string
		for _, g := range p.goMods {
			if skip(g) {
				continue
			}
			if err := os.WriteFile(filepath.Join(p.root, filepath.FromSlash(g.path)), form(g), 0o644); err != nil {
				return false, err
			}
			files = append(files, g.path)
		}
		if len(files) == 0 {
			return false, nil
		}
		if _, err := git(p.root, append([]string{"add", "--"}, files...)...); err != nil {
			return false, err
		}
		_, err := git(p.root, "commit", "-q", "-m", subject+"\n\n"+body)
		return err == nil, err
	}
	if _, err := commit(p.releaseSubject(), fmt.Sprintf(
		"Every module requires its gatehouse siblings at %s, and each command's\n"+
			"go.mod has no replace directives, which go install path@version refuses.\n"+
			"Tagged: %s.", p.version, strings.Join(p.tags(), ", ")),
		func(g goMod) []byte { return g.release },
		func(g goMod) bool { return bytes.Equal(g.now, g.release) }); err != nil {
		return err
	}
	released, err := git(p.root, "rev-parse", "HEAD")
	if err != nil {
		return err
	}
	for _, m := range p.modules {
		if _, err := git(p.root, "tag", "-a", "-m", m.Path+" "+p.version, m.Tag(p.version), released); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "tagged %s\n", released)
	wrote, err := commit(p.devSubject(), fmt.Sprintf(
		"They build each command against the modules of this tree; the tags of\n"+
			"%s name the commit before, without them.", p.version),
		func(g goMod) []byte { return g.dev },
		func(g goMod) bool { return bytes.Equal(g.release, g.dev) })
	if err != nil {
		return err
	}
	if wrote {
		head, err := git(p.root, "rev-parse", "HEAD")
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "then committed %s\n", head)
	}
	return nil
}

// git runs git in dir and returns its output, trimmed; its error includes
// what git wrote to stderr.
func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimRight(string(out), "\n"), nil
}
