package api

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

// TestModulesFromProxy gets the published modules as a user does after a
// release. It builds a file-based module proxy from this tree, each module at
// the version its siblings require, zipped as the go command zips a tagged
// module (nested modules and files git ignores left out) with go.mod as the
// release commit has it (ReleaseGoMod). Then, in a fresh module with that
// proxy first, no replace directive, no workspace and an empty module cache,
// it gets every module, builds a program that imports every public package,
// installs cmd/gatehouse with go install path@version and runs `gatehouse -h`
// and `gatehouse version`. Each zip must hold the Apache-2.0 LICENSE, nothing
// of a nested module and no file over 1 MiB. Modules of other repositories
// come from the local module cache first, then from the machine's GOPROXY;
// their checksums from the published modules' go.sum files, and for go
// install from the checksum database, unless GOPROXY=off says the machine is
// offline.
func TestModulesFromProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module proxy, a program of every package and the gateway: not with -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	version := treeVersion(t)
	goenv := func(name string) string {
		out, err := exec.Command(goBin, "env", name).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	cache, upstream, goVersion := goenv("GOMODCACHE"), goenv("GOPROXY"), goenv("GOVERSION")

	proxy := t.TempDir()
	var sums []string // the published modules' go.sum lines
	for _, m := range Published() {
		files := moduleFiles(t, root, m, version)
		var zipped bytes.Buffer
		if err := modzip.Create(&zipped, module.Version{Path: m.Path, Version: version}, files); err != nil {
			t.Fatalf("zip of %s: %v", m.Path, err)
		}
		checkZip(t, m, version, zipped.Bytes())
		escaped, err := module.EscapePath(m.Path)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(proxy, filepath.FromSlash(escaped), "@v")
		info, _ := json.Marshal(map[string]any{"Version": version, "Time": time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
		goMod, err := readFile(files, "go.mod")
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string][]byte{
			version + ".zip":  zipped.Bytes(),
			version + ".mod":  goMod,
			version + ".info": info,
			"list":            []byte(version + "\n"),
		} {
			write(t, filepath.Join(dir, name), data)
		}
		if sum, err := os.ReadFile(filepath.Join(root, m.Dir, "go.sum")); err == nil {
			sums = append(sums, strings.Split(strings.TrimSpace(string(sum)), "\n")...)
		}
	}

	// The user's module: no requirement yet, and the checksums the published
	// modules' go.sum files hold for modules of other repositories, so that
	// `go get` needs the checksum database for none of them.
	user := t.TempDir()
	write(t, filepath.Join(user, "go.mod"), []byte("module example.com/user\n\ngo 1.26.0\n"))
	slices.Sort(sums)
	write(t, filepath.Join(user, "go.sum"), []byte(strings.Join(slices.Compact(sums), "\n")+"\n"))
	bin := t.TempDir()
	env := append(os.Environ(),
		"GOPROXY=file://"+filepath.ToSlash(proxy)+",file://"+filepath.ToSlash(filepath.Join(cache, "cache", "download"))+","+upstream,
		"GONOSUMDB=github.com/gatehouse-go",      // ours are in no checksum database yet
		"GOMODCACHE="+t.TempDir(),                // nothing of ours cached before
		"GOFLAGS=-mod=mod -modcacherw -trimpath", // -modcacherw: t.TempDir can remove it; -trimpath: builds cached across runs
		"GOWORK=off", "GOTOOLCHAIN=local", "GOBIN="+bin)
	if upstream == "off" {
		// Offline: modules of other repositories come from the local cache,
		// and go install (whose go.sum is empty) cannot reach the checksum
		// database to verify them.
		env = append(env, "GOSUMDB=off")
	}
	gocmd := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command(goBin, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	var get []string
	for _, m := range Published() {
		get = append(get, m.Path+"@"+version)
	}
	gocmd(user, append([]string{"get"}, get...)...)

	program := "// Command user imports every public package of gatehouse's published modules.\npackage main\n\nimport (\n"
	for _, p := range publicPackages(t, goBin, root) {
		program += "\t_ \"" + p + "\"\n"
	}
	program += ")\n\nfunc main() {}\n"
	write(t, filepath.Join(user, "main.go"), []byte(program))
	gocmd(user, "build", "-o", filepath.Join(t.TempDir(), "user"), ".")

	gocmd(user, "install", CorePath+"/cmd/gatehouse@"+version)
	gatehouse := filepath.Join(bin, "gatehouse")
	out, err := exec.Command(gatehouse, "-h").CombinedOutput()
	if err != nil {
		t.Errorf("gatehouse -h: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "Usage of gatehouse:\n") {
		t.Errorf("gatehouse -h does not start with its name:\n%s", out)
	}
	for _, flag := range []string{"\n  -addr string\n", "\n  -admin-addr string\n", "\n  -config string\n"} {
		if !strings.Contains(string(out), flag) {
			t.Errorf("gatehouse -h does not show %q:\n%s", flag, out)
		}
	}
	out, err = exec.Command(gatehouse, "version").CombinedOutput()
	if want := "gatehouse " + version + " " + goVersion + "\n"; err != nil || string(out) != want {
		t.Errorf("gatehouse version: %v, printed %q, want %q", err, out, want)
	}
}

// moduleFiles returns the files of module m's zip at version: the files of
// its directory that git tracks or would (not ignored), those of nested
// modules included (zip.Create leaves them out), with go.mod as ReleaseGoMod
// writes it.
func moduleFiles(t *testing.T, root string, m Module, version string) []modzip.File {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", ".")
	cmd.Dir = filepath.Join(root, filepath.FromSlash(m.Dir))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files in %s: %v", m.Dir, err)
	}
	var files []modzip.File
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		p := filepath.Join(cmd.Dir, filepath.FromSlash(name))
		info, err := os.Lstat(p)
		if os.IsNotExist(err) {
			continue // deleted, not yet committed
		} else if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(p)
		if err != nil && info.Mode().IsRegular() {
			t.Fatal(err)
		}
		if name == "go.mod" {
			if data, err = ReleaseGoMod(path.Join(m.Dir, "go.mod"), data, version); err != nil {
				t.Fatal(err)
			}
			info = sizedInfo{info, int64(len(data))}
		}
		files = append(files, memFile{name, info, data})
	}
	return files
}

// checkZip fails the test unless module m's zip holds the Apache-2.0 LICENSE
// at its root, no file of a nested published module and no file over 1 MiB
// (a module zip is source: a build committed by mistake would be in it).
func checkZip(t *testing.T, m Module, version string, data []byte) {
	t.Helper()
	z, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	prefix := m.Path + "@" + version + "/"
	license := false
	for _, f := range z.File {
		name := strings.TrimPrefix(f.Name, prefix)
		if f.UncompressedSize64 > 1<<20 {
			t.Errorf("%s's zip holds %s, of %d bytes: over 1 MiB", m.Path, name, f.UncompressedSize64)
		}
		for _, n := range Published() {
			if n.Path != m.Path && strings.HasPrefix(n.Path+"/", m.Path+"/") && strings.HasPrefix(f.Name, n.Path+"/") {
				t.Errorf("%s's zip holds %s, a file of module %s", m.Path, name, n.Path)
			}
		}
		if name != "LICENSE" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		text, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		license = bytes.Contains(text, []byte("Apache License")) && bytes.Contains(text, []byte("Version 2.0, January 2004"))
		if !license {
			t.Errorf("%s's LICENSE is not the Apache License 2.0", m.Path)
		}
	}
	if !license {
		t.Errorf("%s's zip holds no LICENSE: pkg.go.dev shows no documentation without one (add %s/LICENSE)", m.Path, m.Dir)
	}
}

// publicPackages returns the import paths of the packages a user may import
// from the published modules: all but internal and main packages, as the
// tree's go list sees them.
func publicPackages(t *testing.T, goBin, root string) []string {
	t.Helper()
	var pkgs []string
	for _, m := range Published() {
		cmd := exec.Command(goBin, "list", "-f", "{{.Name}} {{.ImportPath}}", "./...")
		cmd.Dir = filepath.Join(root, filepath.FromSlash(m.Dir))
		cmd.Env = append(os.Environ(), "GOWORK=off")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list ./... in %s: %v", m.Dir, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			name, p, _ := strings.Cut(line, " ")
			if name == "main" || slices.Contains(strings.Split(p, "/"), "internal") {
				continue
			}
			pkgs = append(pkgs, p)
		}
	}
	if len(pkgs) < len(Published())-1 {
		t.Fatalf("found %d public packages: %q; each library module has one at least", len(pkgs), pkgs)
	}
	return pkgs
}

// write writes data to the file at p, making its directory.
func write(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// readFile returns the contents of the file named name among files.
func readFile(files []modzip.File, name string) ([]byte, error) {
	for _, f := range files {
		if f.Path() == name {
			rc, err := f.Open()
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return io.ReadAll(rc)
		}
	}
	return nil, fs.ErrNotExist
}

// memFile is a file of a module zip, read into memory.
type memFile struct {
	path string
	info fs.FileInfo
	data []byte
}

func (f memFile) Path() string                 { return f.path }
func (f memFile) Lstat() (fs.FileInfo, error)  { return f.info, nil }
func (f memFile) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(f.data)), nil }

// sizedInfo is a file's information with the size of its rewritten data.
type sizedInfo struct {
	fs.FileInfo
	size int64
}

func (i sizedInfo) Size() int64 { return i.size }
