package api

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

// TestCheckVersion: a release version is canonical vMAJOR.MINOR.PATCH, with
// an optional pre-release, of major version 0 or 1.
func TestCheckVersion(t *testing.T) {
	for _, v := range []string{"v0.1.0", "v0.10.2", "v1.0.0", "v1.2.3-rc.1"} {
		if err := CheckVersion(v); err != nil {
			t.Errorf("CheckVersion(%q) = %v, want nil", v, err)
		}
	}
	for v, want := range map[string]string{
		"0.1.0":                                `"0.1.0" is not a release version: want vMAJOR.MINOR.PATCH, such as v0.1.0`,
		"v0.1":                                 `"v0.1" is not a release version: want vMAJOR.MINOR.PATCH, such as v0.1.0`,
		"v0.1.0+build":                         `"v0.1.0+build" is not a release version: want vMAJOR.MINOR.PATCH, such as v0.1.0`,
		"v01.0.0":                              `"v01.0.0" is not a release version: want vMAJOR.MINOR.PATCH, such as v0.1.0`,
		"":                                     `"" is not a release version: want vMAJOR.MINOR.PATCH, such as v0.1.0`,
		"v2.0.0":                               "v2.0.0 would need module paths ending in /v2",
		"v0.0.0-00010101000000-000000000000":   "v0.0.0-00010101000000-000000000000 is a pseudo-version, which names a commit, not a release",
		"v0.1.1-0.20261204172406-4c39dcf961fb": "v0.1.1-0.20261204172406-4c39dcf961fb is a pseudo-version, which names a commit, not a release",
	} {
		if err := CheckVersion(v); err == nil || err.Error() != want {
			t.Errorf("CheckVersion(%q) = %v, want %s", v, err, want)
		}
	}
}

// nestedGoMod is a go.mod of a nested library module, as in this tree.
const nestedGoMod = `module github.com/gatehouse-go/gatehouse/auth/sqlstore

go 1.26.0

replace github.com/gatehouse-go/gatehouse => ../..

require (
	github.com/gatehouse-go/gatehouse v0.0.0-00010101000000-000000000000
	github.com/jackc/pgx/v5 v5.12.0 // the PostgreSQL driver
)

require github.com/google/uuid v1.6.0 // indirect
`

// commandGoMod is a go.mod of a command module, as in this tree.
const commandGoMod = `module github.com/gatehouse-go/gatehouse/cmd/gatehouse

go 1.26.0

replace github.com/gatehouse-go/gatehouse => ../../

require (
	github.com/gatehouse-go/gatehouse v0.1.0
	github.com/gatehouse-go/gatehouse/ratelimit/redisstore v0.1.0
	github.com/prometheus/client_golang v1.25.0
)

require github.com/google/uuid v1.6.0 // indirect

replace github.com/gatehouse-go/gatehouse/ratelimit/redisstore => ../../ratelimit/redisstore
`

// TestDevGoMod: the development form of a go.mod requires each sibling at the
// version and changes nothing else: replace lines, other requirements and
// comments stay as they are, for a library and for a command.
func TestDevGoMod(t *testing.T) {
	got, err := DevGoMod("auth/sqlstore/go.mod", []byte(nestedGoMod), "v0.2.0")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(nestedGoMod, "v0.0.0-00010101000000-000000000000", "v0.2.0", 1)
	if string(got) != want {
		t.Errorf("DevGoMod of a library:\n%s\nwant:\n%s", got, want)
	}

	got, err = DevGoMod("cmd/gatehouse/go.mod", []byte(commandGoMod), "v0.2.0")
	if err != nil {
		t.Fatal(err)
	}
	want = strings.ReplaceAll(commandGoMod, "v0.1.0", "v0.2.0")
	if string(got) != want {
		t.Errorf("DevGoMod of a command:\n%s\nwant:\n%s", got, want)
	}
}

// TestReleaseGoMod: the release form of a command's go.mod has no replace
// directive; a library's keeps them (users never see them, and this tree
// builds by them at the tag too).
func TestReleaseGoMod(t *testing.T) {
	got, err := ReleaseGoMod("cmd/gatehouse/go.mod", []byte(commandGoMod), "v0.2.0")
	if err != nil {
		t.Fatal(err)
	}
	want := `module github.com/gatehouse-go/gatehouse/cmd/gatehouse

go 1.26.0

require (
	github.com/gatehouse-go/gatehouse v0.2.0
	github.com/gatehouse-go/gatehouse/ratelimit/redisstore v0.2.0
	github.com/prometheus/client_golang v1.25.0
)

require github.com/google/uuid v1.6.0 // indirect
`
	if string(got) != want {
		t.Errorf("ReleaseGoMod of a command:\n%s\nwant:\n%s", got, want)
	}

	got, err = ReleaseGoMod("auth/sqlstore/go.mod", []byte(nestedGoMod), "v0.2.0")
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(nestedGoMod, "v0.0.0-00010101000000-000000000000", "v0.2.0", 1); string(got) != want {
		t.Errorf("ReleaseGoMod of a library:\n%s\nwant:\n%s", got, want)
	}
}

// TestGoModRefusals: a go.mod that requires a module of this repository that
// is not published, a command that replaces a module of another repository,
// and a version that is not a release's are errors.
func TestGoModRefusals(t *testing.T) {
	unpublished := strings.Replace(nestedGoMod, "github.com/jackc/pgx/v5 v5.12.0", "github.com/gatehouse-go/gatehouse/benchmarks v0.1.0", 1)
	_, err := DevGoMod("auth/sqlstore/go.mod", []byte(unpublished), "v0.2.0")
	if want := "auth/sqlstore/go.mod: requires github.com/gatehouse-go/gatehouse/benchmarks, which is not published: nothing outside this repository can have it"; err == nil || err.Error() != want {
		t.Errorf("DevGoMod of a go.mod requiring benchmarks: %v, want %s", err, want)
	}

	foreign := commandGoMod + "replace github.com/google/uuid => ../uuid\n"
	_, err = ReleaseGoMod("cmd/gatehouse/go.mod", []byte(foreign), "v0.2.0")
	if want := "cmd/gatehouse/go.mod: replaces github.com/google/uuid, which is not a module of this repository; go install refuses any replace directive"; err == nil || err.Error() != want {
		t.Errorf("ReleaseGoMod of a command replacing uuid: %v, want %s", err, want)
	}
	if _, err := DevGoMod("cmd/gatehouse/go.mod", []byte(foreign), "v0.2.0"); err != nil {
		t.Errorf("DevGoMod of a command replacing uuid: %v; in the tree it may", err)
	}

	_, err = ReleaseGoMod("cmd/gatehouse/go.mod", []byte(commandGoMod), "v0.2")
	if want := `"v0.2" is not a release version: want vMAJOR.MINOR.PATCH, such as v0.1.0`; err == nil || err.Error() != want {
		t.Errorf("ReleaseGoMod at v0.2: %v, want %s", err, want)
	}
}

// TestTag: the core's tag is the version; a nested module's is prefixed with
// its directory, which is where the go command looks for it.
func TestTag(t *testing.T) {
	var tags []string
	for _, m := range Published() {
		tags = append(tags, m.Tag("v0.1.0"))
	}
	want := []string{"v0.1.0", "auth/sqlstore/v0.1.0", "ratelimit/redisstore/v0.1.0", "promgatehouse/v0.1.0", "cmd/gatehouse/v0.1.0"}
	if !slices.Equal(tags, want) {
		t.Errorf("tags %q, want %q", tags, want)
	}
}

// treeModule is a module of this repository, as found in the tree.
type treeModule struct {
	dir  string // relative to the repository's root, slash-separated
	file string // its go.mod, as a path from this directory
	data []byte // its go.mod
	mod  *modfile.File
}

// treeModules returns every module of this tree: each go.mod below the
// repository's root that is not in testdata or a hidden directory.
func treeModules(t *testing.T) []treeModule {
	t.Helper()
	var mods []treeModule
	err := filepath.WalkDir("..", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != ".." && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_")) {
			return filepath.SkipDir
		}
		if d.IsDir() || d.Name() != "go.mod" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		mod, err := modfile.Parse(p, data, nil)
		if err != nil {
			return err
		}
		dir, _ := filepath.Rel("..", filepath.Dir(p))
		mods = append(mods, treeModule{filepath.ToSlash(dir), p, data, mod})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return mods
}

// treeVersion returns the version at which every module of the tree requires
// its siblings: the version the next release tags. It fails the test unless
// they all require one version, a release's.
func treeVersion(t *testing.T) string {
	t.Helper()
	version := ""
	for _, m := range treeModules(t) {
		for _, r := range m.mod.Require {
			if !inRepo(r.Mod.Path) {
				continue
			}
			if version == "" {
				version = r.Mod.Version
			} else if r.Mod.Version != version {
				t.Fatalf("%s requires %s %s; another go.mod requires a sibling at %s: a release has one version", m.file, r.Mod.Path, r.Mod.Version, version)
			}
		}
	}
	if err := CheckVersion(version); err != nil {
		t.Fatalf("the modules require their siblings at a version no release has: %v", err)
	}
	return version
}

// TestTreeReadyForRelease: every go.mod of the tree requires its gatehouse
// siblings at one release version and is in the form the release tool leaves
// it in (DevGoMod changes nothing), each published module's directory holds
// its go.mod, for its path, and a LICENSE, and every module is published or
// known to be not.
func TestTreeReadyForRelease(t *testing.T) {
	version := treeVersion(t)
	dirs := map[string]string{}
	for _, m := range treeModules(t) {
		dirs[m.dir] = m.mod.Module.Mod.Path
		dev, err := DevGoMod(m.file, m.data, version)
		if err != nil {
			t.Error(err)
		} else if string(dev) != string(m.data) {
			t.Errorf("%s is not as the release tool writes it:\n%s\nwant:\n%s", m.file, m.data, dev)
		}
	}
	for _, m := range Published() {
		if got := dirs[m.Dir]; got != m.Path {
			t.Errorf("%s/go.mod is module %q, want %s", m.Dir, got, m.Path)
		}
		if _, err := os.Stat(filepath.Join("..", m.Dir, "LICENSE")); err != nil {
			t.Errorf("published module %s has no LICENSE in %s: %v", m.Path, m.Dir, err)
		}
		delete(dirs, m.Dir)
	}
	unpublished := map[string]string{
		"api":          CorePath + "/api",
		"benchmarks":   CorePath + "/benchmarks",
		"docs/routers": CorePath + "/docs/routers",
		"interop":      CorePath + "/interop",
	}
	for dir, path := range dirs {
		if unpublished[dir] != path {
			t.Errorf("module %s in %s is neither published (api.Published) nor known to be not", path, dir)
		}
	}
}
