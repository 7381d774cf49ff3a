package main

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// A Go snippet in README.md or docs/*.md is a ```go block of one of two kinds:
//
//   - a whole file: it has a package clause, and is compiled as it is;
//   - a fragment: statements (compiled as the body of a function) or
//     declarations (compiled as a file), optionally opened by its own import
//     declarations. The packages below are imported for it when it names them,
//     locals it declares may go unused, and the names in snippetPrelude stand for
//     what a reader already has (yourHandler, logger, mux, w, r …).
//
// Each snippet is written to a package of its own in a module of a temporary
// workspace that uses every module of this repository, and must pass go vet.
//
// A snippet that shows what it prints ends, as a Go example does, with an
// "// Output:" comment: it must be statements, and it is also run, as the
// Example of its package, with go test, which asserts that output exactly.
// A fragment that opens with the line "// (continued)" goes on from the
// fragment before it in the same file: the two are compiled, and run, as one.

// repoRoot is the repository's root, from this package's directory.
const repoRoot = "../.."

// snippetImports are the packages a fragment may name without importing them.
var snippetImports = map[string]string{
	"http": "net/http", "httptest": "net/http/httptest", "slog": "log/slog", "log": "log",
	"time": "time", "context": "context", "errors": "errors", "fmt": "fmt", "io": "io",
	"os": "os", "strings": "strings", "netip": "net/netip", "json": "encoding/json",
	"sql": "database/sql", "signal": "os/signal", "syscall": "syscall", "filepath": "path/filepath",
	"gatehouse":  "github.com/gatehouse-go/gatehouse",
	"auth":       "github.com/gatehouse-go/gatehouse/auth",
	"clientaddr": "github.com/gatehouse-go/gatehouse/clientaddr",
	"inputs":     "github.com/gatehouse-go/gatehouse/inputs",
	"ratelimit":  "github.com/gatehouse-go/gatehouse/ratelimit",
	"errorsjson": "github.com/gatehouse-go/gatehouse/errorsjson",
	"upstream":   "github.com/gatehouse-go/gatehouse/upstream",
	"redisstore": "github.com/gatehouse-go/gatehouse/ratelimit/redisstore",
	"sqlstore":   "github.com/gatehouse-go/gatehouse/auth/sqlstore",
	"redis":      "github.com/redis/go-redis/v9",
}

// snippetPrelude declares the names a fragment may use for what the reader has.
const snippetPrelude = `package snippet

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/gatehouse-go/gatehouse/auth"
)

var (
	yourHandler       http.Handler
	yourDatabaseStore auth.Store
	logger            *slog.Logger
	mux               *http.ServeMux
	w                 http.ResponseWriter
	r                 *http.Request
	rec               auth.Key
	upstreamSecret    string
	ctx               = context.Background()
)

type user struct {
	ID                string
	PerMinute, PerDay int
}

func userFrom(context.Context) (user, bool) { return user{}, false }

var (
	_, _, _, _, _, _, _, _, _ = yourHandler, yourDatabaseStore, logger, mux, w, r, rec, upstreamSecret, ctx
	_                         = userFrom
)
`

type snippet struct {
	where string // file:line of the opening fence
	src   string
}

// continued opens a fragment that goes on from the one before it.
const continued = "// (continued)"

// output returns the "// Output:" comment that ends s, as lines, or nil if s
// shows no output.
func (s snippet) output() []string {
	lines := strings.Split(strings.TrimRight(s.src, "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if strings.HasPrefix(l, "// Output:") {
			out := make([]string, 0, len(lines)-i)
			for _, o := range lines[i:] {
				out = append(out, strings.TrimSpace(o))
			}
			return out
		}
		if !strings.HasPrefix(l, "//") {
			return nil
		}
	}
	return nil
}

// goSnippets returns the ```go blocks of the Markdown files.
func goSnippets(t *testing.T, files []string) []snippet {
	t.Helper()
	var out []snippet
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cur *snippet
		var lines []string
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			switch {
			case cur == nil && strings.TrimSpace(line) == "```go":
				cur = &snippet{where: fmt.Sprintf("%s:%d", filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f), n)}
				lines = nil
			case cur != nil && strings.TrimSpace(line) == "```":
				cur.src = strings.Join(lines, "\n") + "\n"
				if len(lines) > 0 && strings.HasPrefix(strings.TrimSpace(lines[0]), continued) {
					if len(out) == 0 || !strings.HasPrefix(out[len(out)-1].where, cur.where[:strings.LastIndex(cur.where, ":")+1]) {
						t.Fatalf("%s: %q, but no snippet before it in the same file", cur.where, continued)
					}
					prev := &out[len(out)-1]
					prev.where += "+" + cur.where[strings.LastIndex(cur.where, ":")+1:]
					prev.src += cur.src
				} else {
					out = append(out, *cur)
				}
				cur = nil
			case cur != nil:
				lines = append(lines, line)
			}
		}
	}
	return out
}

// snippetFile turns a snippet into a Go file of package snippet, following
// the convention above.
func snippetFile(s snippet) (string, error) {
	if f, err := parser.ParseFile(token.NewFileSet(), "", s.src, parser.PackageClauseOnly); err == nil && f.Name != nil {
		return s.src, nil
	}
	// Split off the fragment's own import declarations.
	var imports, body []string
	lines := strings.Split(s.src, "\n")
	i := 0
	for ; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "//") {
			imports = append(imports, lines[i])
			continue
		}
		if !strings.HasPrefix(l, "import") {
			break
		}
		imports = append(imports, lines[i])
		if strings.HasPrefix(l, "import (") {
			for i++; i < len(lines); i++ {
				imports = append(imports, lines[i])
				if strings.TrimSpace(lines[i]) == ")" {
					break
				}
			}
		}
	}
	body = lines[i:]
	head := "package snippet\n\n" + strings.Join(imports, "\n") + "\n"

	// Declarations parse as a file; statements need a function around them.
	text := head + strings.Join(body, "\n")
	f, err := parser.ParseFile(token.NewFileSet(), "", text, parser.SkipObjectResolution)
	if err != nil {
		text = head + "func snippet() {\n" + strings.Join(body, "\n") + "\n}\n"
		if f, err = parser.ParseFile(token.NewFileSet(), "", text, 0); err != nil {
			return "", fmt.Errorf("neither declarations nor statements: %v", err)
		}
		// Locals the snippet declares may go unused: a reader's code uses them.
		var unused []string
		fn := f.Decls[len(f.Decls)-1].(*ast.FuncDecl)
		for _, st := range fn.Body.List {
			switch st := st.(type) {
			case *ast.AssignStmt:
				if st.Tok == token.DEFINE {
					for _, e := range st.Lhs {
						if id, ok := e.(*ast.Ident); ok && id.Name != "_" {
							unused = append(unused, id.Name)
						}
					}
				}
			case *ast.DeclStmt:
				if gd, ok := st.Decl.(*ast.GenDecl); ok && gd.Tok == token.VAR {
					for _, sp := range gd.Specs {
						for _, id := range sp.(*ast.ValueSpec).Names {
							if id.Name != "_" {
								unused = append(unused, id.Name)
							}
						}
					}
				}
			}
		}
		var uses strings.Builder
		for _, name := range unused {
			uses.WriteString("\t_ = &" + name + "\n") // &: a lock value must not be copied
		}
		text = head + "func snippet() {\n" + strings.Join(body, "\n") + "\n" + uses.String() + "}\n"
	}

	// Import the known packages the snippet names and does not import itself.
	have := map[string]bool{}
	for _, im := range f.Imports {
		p := strings.Trim(im.Path.Value, `"`)
		name := p[strings.LastIndex(p, "/")+1:]
		if im.Name != nil {
			name = im.Name.Name
		}
		have[name] = true
	}
	declared := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			if n.Tok == token.DEFINE {
				for _, e := range n.Lhs {
					if id, ok := e.(*ast.Ident); ok {
						declared[id.Name] = true
					}
				}
			}
		case *ast.ValueSpec:
			for _, id := range n.Names {
				declared[id.Name] = true
			}
		case *ast.Field:
			for _, id := range n.Names {
				declared[id.Name] = true
			}
		}
		return true
	})
	need := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok && !have[id.Name] && !declared[id.Name] && snippetImports[id.Name] != "" {
				need[snippetImports[id.Name]] = true
			}
		}
		return true
	})
	if len(need) > 0 {
		paths := make([]string, 0, len(need))
		for p := range need {
			paths = append(paths, fmt.Sprintf("import %q", p))
		}
		sort.Strings(paths)
		text = strings.Replace(text, "package snippet\n", "package snippet\n\n"+strings.Join(paths, "\n")+"\n", 1)
	}
	return text, nil
}

// TestDocsGoSnippetsCompile: every Go snippet of README.md and docs/*.md (any
// file added there later included) compiles and passes go vet against this
// repository's modules, and each that shows its output prints it.
func TestDocsGoSnippetsCompile(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	snippets := goSnippets(t, append([]string{filepath.Join(root, "README.md")}, docs...))
	if len(snippets) < 5 {
		t.Fatalf("found %d Go snippets in README.md and docs/; the README alone has five", len(snippets))
	}

	dir := t.TempDir()
	var modules []string
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.Name() == "go.mod" {
			modules = append(modules, filepath.Dir(path))
		}
		return nil
	})
	work := "go 1.26.0\n\nuse (\n\t.\n"
	for _, m := range modules {
		work += fmt.Sprintf("\t%q\n", m)
	}
	work += ")\n"
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module snippets\n\ngo 1.26.0\n")
	write("go.work", work)
	if b, err := os.ReadFile(filepath.Join(root, "go.work.sum")); err == nil {
		write("go.work.sum", string(b))
	}
	where := map[string]snippet{}
	var run []string // the packages of the snippets that show an output
	for i, s := range snippets {
		text, err := snippetFile(s)
		if err != nil {
			t.Errorf("%s: %v", s.where, err)
			continue
		}
		pkg := fmt.Sprintf("s%02d", i)
		where[pkg] = s
		write(filepath.Join(pkg, "prelude.go"), snippetPrelude)
		write(filepath.Join(pkg, "snippet.go"), fmt.Sprintf("// %s\n%s", s.where, text))
		if out := s.output(); out != nil {
			if !strings.Contains(text, "\nfunc snippet() {\n") {
				t.Errorf("%s: shows an output, but is not statements that can run", s.where)
				continue
			}
			write(filepath.Join(pkg, "snippet_test.go"), fmt.Sprintf("package snippet\n\n// %s\nfunc Example() {\n\tsnippet()\n\t%s\n}\n", s.where, strings.Join(out, "\n\t")))
			run = append(run, "./"+pkg)
		}
	}
	if len(run) < 3 {
		t.Errorf("%d snippets show their output; the README alone has two, docs/adopting.md one", len(run))
	}

	env := append(os.Environ(), "GOWORK="+filepath.Join(dir, "go.work"), "GOFLAGS=", "TMPDIR="+t.TempDir())
	failed := func(what string, out []byte) {
		t.Errorf("%s of the docs' Go snippets failed:\n%s", what, out)
		// Name each failing snippet's origin, with the file it was compiled as.
		for pkg, s := range where {
			if strings.Contains(string(out), pkg+"/snippet") || strings.Contains(string(out), "snippets/"+pkg) {
				b, _ := os.ReadFile(filepath.Join(dir, pkg, "snippet.go"))
				t.Errorf("snippet at %s, compiled as %s/snippet.go:\n%s", s.where, pkg, b)
			}
		}
	}
	cmd := exec.Command(goBin, "vet", "./...")
	cmd.Dir, cmd.Env = dir, env
	if out, err := cmd.CombinedOutput(); err != nil {
		failed("go vet", out)
		return
	}
	// Each snippet that shows an output runs, and prints what it shows.
	cmd = exec.Command(goBin, append([]string{"test", "-count=1", "-run", "^Example$"}, run...)...)
	cmd.Dir, cmd.Env = dir, env
	if out, err := cmd.CombinedOutput(); err != nil {
		failed("go test", out)
	}
}

// markdownLink matches a Markdown link's target: [text](target).
var markdownLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestDocsLinksResolve: every relative link of README.md and docs/*.md names
// a file or folder of the repository, relative to the page it is on (a link
// in docs/ to docs/x.md would be docs/docs/x.md). Web addresses and links
// within a page are not followed.
func TestDocsLinksResolve(t *testing.T) {
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	pages := append([]string{filepath.Join(root, "README.md")}, docs...)
	links := 0
	for _, page := range pages {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range markdownLink.FindAllStringSubmatch(string(b), -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			links++
			if _, err := os.Stat(filepath.Join(filepath.Dir(page), target)); err != nil {
				rel, _ := filepath.Rel(root, page)
				t.Errorf("%s links to %s, which is not there", rel, m[1])
			}
		}
	}
	if links < 20 {
		t.Errorf("found %d relative links in README.md and docs/; the README alone has more", links)
	}
}

// TestContractMessages: docs/contract.md, the contract's reference, holds
// every message the API can answer with, byte for byte: the value of each Msg
// or msg string constant of the core module's Go files (tests and nested
// modules aside), and, for an exported one, its name as a caller writes it
// (inputs.MsgNoInputs). A message changed or added in the code without the page
// fails here.
func TestContractMessages(t *testing.T) {
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "contract.md"))
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil && path != root {
				return filepath.SkipDir // a nested module: not the API's
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Msg") && !strings.HasPrefix(name.Name, "msg") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					msg, err := strconv.Unquote(lit.Value)
					if err != nil {
						return err
					}
					found++
					if !strings.Contains(string(doc), msg) {
						t.Errorf("docs/contract.md does not hold %s's message %q (%s)", name.Name, msg, rel)
					}
					if qualified := f.Name.Name + "." + name.Name; name.IsExported() && !strings.Contains(string(doc), "`"+qualified) {
						t.Errorf("docs/contract.md does not name %s (%s)", qualified, rel)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 25 {
		t.Errorf("found %d message constants, fewer than the 25 of errorsjson and inputs alone", found)
	}
}

// TestDocsFlagTable: the flag table of docs/configuration.md, "Flags, reload
// and shutdown", names every flag of gatehouse -h, and no flag that gatehouse
// does not define. A flag is named by its first column: each -name that opens
// a word there.
func TestDocsFlagTable(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Flags, reload and shutdown\n")
	section, _, _ = strings.Cut(section, "\n## ")
	if !ok {
		t.Fatal(`docs/configuration.md has no section "## Flags, reload and shutdown"`)
	}
	inTable := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `-") {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " | ")
		for _, m := range flagWord.FindAllStringSubmatch(first, -1) {
			inTable[m[1]] = true
		}
	}

	var usage strings.Builder
	if _, err := parseFlags([]string{"-h"}, &usage); err == nil {
		t.Fatal("parseFlags -h: no error, want flag.ErrHelp")
	}
	defined := map[string]bool{}
	for _, line := range strings.Split(usage.String(), "\n") {
		if name, ok := strings.CutPrefix(line, "  -"); ok {
			name, _, _ = strings.Cut(name, " ")
			name, _, _ = strings.Cut(name, "\t")
			defined[name] = true
		}
	}
	if len(defined) < 10 {
		t.Fatalf("found %d flags in gatehouse -h, it has more:\n%s", len(defined), usage.String())
	}
	for name := range defined {
		if !inTable[name] {
			t.Errorf("docs/configuration.md's flag table does not name -%s, which gatehouse -h lists", name)
		}
	}
	for name := range inTable {
		if !defined[name] {
			t.Errorf("docs/configuration.md's flag table names -%s, which gatehouse does not define", name)
		}
	}
}

// flagWord matches a flag, -name, where it opens a word or a code span.
var flagWord = regexp.MustCompile("(?:^|[\\s`])-([a-z][a-z0-9-]*)")
