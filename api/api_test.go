package api

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite each module's listing from the tree")

// root is the repository root, from this package's directory.
const root = ".."

// TestListings: each published module's listing file is its exported API as
// the tree has it, line for line. With -update it rewrites the listings.
func TestListings(t *testing.T) {
	for _, m := range Published() {
		if m.Listing == "" {
			continue
		}
		t.Run(m.Listing, func(t *testing.T) {
			got, err := ListModule(root, m)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(m.Listing, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := readListing(m.Listing)
			if err != nil {
				t.Fatal(err)
			}
			if d := diff(want, got); d != "" {
				t.Errorf("the exported API of %s differs from api/%s (review it, then `go test ./ -update` in api/ rewrites the listing):\n%s", m.Path, m.Listing, d)
			}
		})
	}
}

// TestPackageDocs: the doc comment of every package a user can import opens
// with one sentence, "Package <name> …", that says what it is for: the
// synopsis pkg.go.dev shows beside the package's name.
func TestPackageDocs(t *testing.T) {
	for _, m := range Published() {
		synopses, err := Synopses(root, m)
		if err != nil {
			t.Fatal(err)
		}
		for path, s := range synopses {
			if p := synopsisProblem(path, s); p != "" {
				t.Errorf("%s: %s", path, p)
			}
		}
	}
}

// synopsisProblem says what is wrong with s as the synopsis of the package
// path, or "" if nothing is.
func synopsisProblem(path, s string) string {
	name := path[strings.LastIndex(path, "/")+1:]
	if !strings.HasPrefix(s, "Package "+name+" ") || !strings.HasSuffix(s, ".") {
		return fmt.Sprintf("synopsis %q: want one sentence \"Package %s …\" ending with a period", s, name)
	}
	return ""
}

// TestSynopses: testdata/lister's packages have the synopses of their doc
// comments, and the check of TestPackageDocs refuses a missing doc, one that
// does not open with the package's name, and one whose first sentence ends
// in a colon (go/doc then gives the whole paragraph).
func TestSynopses(t *testing.T) {
	got, err := Synopses(".", testModule)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"example.com/lister/p":     "Package p is a package for the lister's test: a name of each kind, and names that a listing leaves out.",
		"example.com/lister/p/sub": "Package sub is a package below p.",
	}
	if len(got) != len(want) || got["example.com/lister/p"] != want["example.com/lister/p"] || got["example.com/lister/p/sub"] != want["example.com/lister/p/sub"] {
		t.Errorf("Synopses = %q, want %q", got, want)
	}
	for s, ok := range map[string]bool{
		"Package sub is a package below p.": true,
		"":                                  false,
		"Sub is a package below p.":         false,
		"Package subtle is a package.":      false,
		"Package sub composes four packages that work alone:": false,
	} {
		if p := synopsisProblem("example.com/lister/p/sub", s); (p == "") != ok {
			t.Errorf("synopsisProblem(%q) = %q, want ok %v", s, p, ok)
		}
	}
}

func readListing(name string) ([]string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"), nil
}

// diff describes how the sorted listings want (the file) and got (the
// tree) differ: a line "+ name" for each line only the tree has, "- name"
// for each only the file has, in order; "" when they are equal.
func diff(want, got []string) string {
	var b strings.Builder
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j == len(got) || i < len(want) && want[i] < got[j]:
			fmt.Fprintf(&b, "- %s\n", want[i])
			i++
		case i == len(want) || got[j] < want[i]:
			fmt.Fprintf(&b, "+ %s\n", got[j])
			j++
		default:
			i++
			j++
		}
	}
	return b.String()
}

// testModule is the module of testdata/lister: package p, its subpackage, and
// an internal and a main package that are not listed.
var testModule = Module{Path: "example.com/lister", Dir: "testdata/lister"}

// TestListPackage: the listing of testdata/testModule/p, a name of every kind,
// is exactly the one below: types only in signatures, byte and rune as
// uint8 and int32, a const group's repeated type, struct fields and
// interface methods, generics; no unexported name, no method of an
// unexported type, nothing of a file the build excludes or of a test file,
// nothing of an internal or a main package.
func TestListPackage(t *testing.T) {
	got, err := ListModule(".", testModule)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"pkg example.com/lister/p, const A Kind",
		"pkg example.com/lister/p, const B Kind",
		"pkg example.com/lister/p, const C Kind",
		"pkg example.com/lister/p, const Untyped",
		"pkg example.com/lister/p, func Map[T, U any]([]T, func(T) U) []U",
		"pkg example.com/lister/p, func New() *T",
		"pkg example.com/lister/p, method (*Set[K, V]) Get(K) (V, bool)",
		"pkg example.com/lister/p, method (*T) Method(context.Context, int32) (int, error)",
		"pkg example.com/lister/p, method (T) Value() string",
		"pkg example.com/lister/p, type Alias = map[string]int",
		"pkg example.com/lister/p, type Func func(io.Writer, []uint8) error",
		"pkg example.com/lister/p, type I interface { Do }",
		"pkg example.com/lister/p, type I interface, Do(int, ...string) bool",
		"pkg example.com/lister/p, type I interface, embedded io.Closer",
		"pkg example.com/lister/p, type Kind uint8",
		"pkg example.com/lister/p, type Set[K comparable, V any] struct",
		"pkg example.com/lister/p, type Set[K comparable, V any] struct, M map[K]V",
		"pkg example.com/lister/p, type T struct",
		"pkg example.com/lister/p, type T struct, Alias string",
		"pkg example.com/lister/p, type T struct, Handler func(context.Context, []uint8) (int, error)",
		"pkg example.com/lister/p, type T struct, Name string",
		"pkg example.com/lister/p, type T struct, embedded io.Reader",
		"pkg example.com/lister/p, var Default",
		"pkg example.com/lister/p, var ErrX error",
		"pkg example.com/lister/p, var Sum [32]uint8",
		"pkg example.com/lister/p/sub, var S string",
	}
	if d := diff(want, got); d != "" {
		t.Errorf("listing of testdata/testModule differs (- want, + got):\n%s", d)
	}
	counts, err := CountModule(".", testModule)
	if err != nil {
		t.Fatal(err)
	}
	// p: A B C Untyped Map New Get Method Value Alias Func I Kind Set T
	// Default ErrX Sum; sub: S.
	if want := map[string]int{"example.com/lister/p": 18, "example.com/lister/p/sub": 1}; !mapsEqual(counts, want) {
		t.Errorf("counts = %v, want %v", counts, want)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestListingCatchesChange: a copy of testdata/testModule whose exported API
// changed (a function renamed, a parameter's type changed, a field added,
// a name unexported) no longer matches the listing of the original, and
// the diff names exactly what changed; a change to unexported code or to a
// doc comment does not.
func TestListingCatchesChange(t *testing.T) {
	before, err := ListModule(".", testModule)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join("testdata", "lister", "p", "p.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, old, new, diff string
	}{
		{
			name: "renamed",
			old:  "func New() *T",
			new:  "func Make() *T",
			diff: "+ pkg example.com/lister/p, func Make() *T\n" +
				"- pkg example.com/lister/p, func New() *T\n",
		},
		{
			name: "parameter type",
			old:  "func (t *T) Method(ctx context.Context, r rune)",
			new:  "func (t *T) Method(ctx context.Context, r int64)",
			diff: "- pkg example.com/lister/p, method (*T) Method(context.Context, int32) (int, error)\n" +
				"+ pkg example.com/lister/p, method (*T) Method(context.Context, int64) (int, error)\n",
		},
		{
			name: "field added",
			old:  "\tcount       int\n",
			new:  "\tcount       int\n\tCount       int\n",
			diff: "+ pkg example.com/lister/p, type T struct, Count int\n",
		},
		{
			name: "unexported",
			old:  "const Untyped = 3",
			new:  "const untyped = 3",
			diff: "- pkg example.com/lister/p, const Untyped\n",
		},
		{
			name: "unexported code and docs",
			old:  "// New returns a T.\nfunc New() *T { return nil }",
			new:  "// New returns nil.\nfunc New() *T { return newT() }\n\nfunc newT() *T { return nil }",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(src), tc.old) {
				t.Fatalf("p.go has no %q", tc.old)
			}
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "p"), 0o755); err != nil {
				t.Fatal(err)
			}
			altered := strings.Replace(string(src), tc.old, tc.new, 1)
			if err := os.WriteFile(filepath.Join(dir, "p", "p.go"), []byte(altered), 0o644); err != nil {
				t.Fatal(err)
			}
			after, err := ListModule(dir, Module{Path: testModule.Path, Dir: "."})
			if err != nil {
				t.Fatal(err)
			}
			// The copy has p only: compare p's lines.
			var beforeP []string
			for _, l := range before {
				if strings.HasPrefix(l, "pkg example.com/lister/p, ") {
					beforeP = append(beforeP, l)
				}
			}
			if got := diff(beforeP, after); got != tc.diff {
				t.Errorf("diff =\n%s\nwant\n%s", got, tc.diff)
			}
		})
	}
}

// TestListingsSorted: every listing file is sorted, without duplicates, and
// ends with a newline, as -update writes it.
func TestListingsSorted(t *testing.T) {
	for _, m := range Published() {
		if m.Listing == "" {
			continue
		}
		b, err := os.ReadFile(m.Listing)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if !slices.IsSorted(lines) || len(slices.Compact(slices.Clone(lines))) != len(lines) || !strings.HasSuffix(string(b), "\n") {
			t.Errorf("%s is not sorted, unique and newline-terminated", m.Listing)
		}
	}
}
