package api

import (
	"fmt"
	"path"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// Command reports whether m is a command, which users install with
// `go install m.Path@version`. That command refuses a module whose go.mod has
// replace directives, so a release writes a command's go.mod without them. By
// this repository's layout, the commands are the modules under cmd/.
func (m Module) Command() bool {
	return path.Dir(m.Dir) == "cmd"
}

// CorePath is the path of the core module; every module of this repository,
// published or not, has a path below it.
const CorePath = "github.com/gatehouse-go/gatehouse"

// CheckVersion returns an error unless version is one a release can tag:
// canonical semantic version (vX.Y.Z, with an optional pre-release, without
// build metadata), not a pseudo-version, of major version 0 or 1, since no
// module path of this repository ends in /vN.
func CheckVersion(version string) error {
	if !semver.IsValid(version) || semver.Canonical(version) != version {
		return fmt.Errorf("%q is not a release version: want vMAJOR.MINOR.PATCH, such as v0.1.0", version)
	}
	if module.IsPseudoVersion(version) {
		return fmt.Errorf("%s is a pseudo-version, which names a commit, not a release", version)
	}
	if m := semver.Major(version); m != "v0" && m != "v1" {
		return fmt.Errorf("%s would need module paths ending in /%s", version, m)
	}
	return nil
}

// DevGoMod returns the go.mod file data (named file in errors) with each
// requirement of a module of this repository set to version: the form every
// go.mod has in the tree, so that a user who gets a module from the proxy
// gets its siblings at the version released with it. The replace directives
// stay: they build this tree against itself, and the go command ignores them
// in every module but the main one. A requirement of a module that is not
// published is an error, since no release of it exists.
func DevGoMod(file string, data []byte, version string) ([]byte, error) {
	f, err := siblingsAt(file, data, version)
	if err != nil {
		return nil, err
	}
	return modfile.Format(f.Syntax), nil
}

// ReleaseGoMod returns the go.mod file data as the release commit at version
// has it: DevGoMod's, and for a command (see Module.Command) without replace
// directives, which `go install path@version` refuses. A command's replace of
// a module that is not of this repository is an error: dropping it would
// change what the command is built from.
func ReleaseGoMod(file string, data []byte, version string) ([]byte, error) {
	f, err := siblingsAt(file, data, version)
	if err != nil {
		return nil, err
	}
	if m, ok := published(f.Module.Mod.Path); ok && m.Command() {
		for _, r := range append([]*modfile.Replace(nil), f.Replace...) {
			if !inRepo(r.Old.Path) {
				return nil, fmt.Errorf("%s: replaces %s, which is not a module of this repository; go install refuses any replace directive", file, r.Old.Path)
			}
			if err := f.DropReplace(r.Old.Path, r.Old.Version); err != nil {
				return nil, err
			}
		}
		f.Cleanup()
	}
	return modfile.Format(f.Syntax), nil
}

// siblingsAt parses data and sets each requirement of a module of this
// repository to version.
func siblingsAt(file string, data []byte, version string) (*modfile.File, error) {
	if err := CheckVersion(version); err != nil {
		return nil, err
	}
	f, err := modfile.Parse(file, data, nil)
	if err != nil {
		return nil, err
	}
	if f.Module == nil {
		return nil, fmt.Errorf("%s: no module directive", file)
	}
	for _, r := range f.Require {
		if !inRepo(r.Mod.Path) {
			continue
		}
		if _, ok := published(r.Mod.Path); !ok {
			return nil, fmt.Errorf("%s: requires %s, which is not published: nothing outside this repository can have it", file, r.Mod.Path)
		}
		if err := f.AddRequire(r.Mod.Path, version); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// inRepo reports whether modPath is the path of a module of this repository.
func inRepo(modPath string) bool {
	return modPath == CorePath || strings.HasPrefix(modPath, CorePath+"/")
}

// published returns the published module whose path is modPath.
func published(modPath string) (Module, bool) {
	for _, m := range Published() {
		if m.Path == modPath {
			return m, true
		}
	}
	return Module{}, false
}

// Tag returns the Git tag of m at version: the version for the module at the
// repository's root, DIR/version for the one in DIR, as the go command looks
// them up.
func (m Module) Tag(version string) string {
	if m.Dir == "." {
		return version
	}
	return m.Dir + "/" + version
}
