package api

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/build"
	"go/doc"
	"go/parser"
	"go/printer"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// ListModule returns the exported API of every package of the module m that
// a user can import (neither internal nor main, nor in testdata or a nested
// module), read from the files the default build context compiles under
// root, the repository root: one line per name, sorted, as [ListPackage]
// gives them.
func ListModule(root string, m Module) ([]string, error) {
	var lines []string
	for _, p := range packageDirs(root, m) {
		l, err := ListPackage(p.dir, p.importPath)
		if err != nil {
			return nil, err
		}
		lines = append(lines, l...)
	}
	sort.Strings(lines)
	return lines, nil
}

// CountModule returns, for each package of the module m (as [ListModule]
// reads them), the number of its exported names: top-level funcs, types,
// consts and vars, and the methods of exported types; fields and
// interface methods are not counted.
func CountModule(root string, m Module) (map[string]int, error) {
	counts := map[string]int{}
	for _, p := range packageDirs(root, m) {
		l, err := listPackage(p.dir, p.importPath)
		if err != nil {
			return nil, err
		}
		if l != nil {
			counts[p.importPath] = l.names
		}
	}
	return counts, nil
}

type pkgDir struct{ dir, importPath string }

// Synopses returns, for each package of the module m (as [ListModule] reads
// them), the first sentence of its doc comment as pkg.go.dev shows it,
// or "" for a package without one.
func Synopses(root string, m Module) (map[string]string, error) {
	synopses := map[string]string{}
	for _, p := range packageDirs(root, m) {
		bp, err := build.Default.ImportDir(p.dir, 0)
		if _, ok := err.(*build.NoGoError); ok {
			continue
		}
		if err != nil {
			return nil, err
		}
		if bp.Name == "main" {
			continue
		}
		fset := token.NewFileSet()
		var files []*ast.File
		for _, name := range append(append([]string(nil), bp.GoFiles...), bp.CgoFiles...) {
			f, err := parser.ParseFile(fset, filepath.Join(p.dir, name), nil, parser.ParseComments|parser.PackageClauseOnly)
			if err != nil {
				return nil, err
			}
			files = append(files, f)
		}
		dp, err := doc.NewFromFiles(fset, files, p.importPath)
		if err != nil {
			return nil, err
		}
		synopses[p.importPath] = dp.Synopsis(dp.Doc)
	}
	return synopses, nil
}

// packageDirs returns the directories of m's importable packages: those
// below its directory that hold Go files, skipping nested modules,
// testdata, internal, and directories whose names begin with "." or "_",
// as the go command does.
func packageDirs(root string, m Module) []pkgDir {
	base := filepath.Join(root, filepath.FromSlash(m.Dir))
	var dirs []pkgDir
	filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		name := d.Name()
		if p != base {
			if name == "testdata" || name == "internal" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
				return filepath.SkipDir
			}
		}
		rel, err := filepath.Rel(base, p)
		if err != nil {
			return err
		}
		ip := m.Path
		if rel != "." {
			ip = path.Join(m.Path, filepath.ToSlash(rel))
		}
		dirs = append(dirs, pkgDir{p, ip})
		return nil
	})
	return dirs
}

// ListPackage returns the exported API of the package in dir, whose import
// path is importPath, as the Go project's api/*.txt lists it: one line per
// exported name, each "pkg <importPath>, <declaration>", sorted. Funcs and
// methods are listed with the types of their parameters and results,
// structs with a line for each exported field, interfaces with a line for
// each method, consts and vars with their types where the source gives them
// (byte and rune read as uint8 and int32). Only the files the default build
// context compiles are read; a directory that holds no such files, or only
// a main package, lists nothing.
func ListPackage(dir, importPath string) ([]string, error) {
	l, err := listPackage(dir, importPath)
	if l == nil {
		return nil, err
	}
	return l.lines, nil
}

// listPackage lists the package in dir; it returns nil for a directory
// that holds no package a user can import.
func listPackage(dir, importPath string) (*lister, error) {
	bp, err := build.Default.ImportDir(dir, 0)
	if _, ok := err.(*build.NoGoError); ok {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if bp.Name == "main" {
		return nil, nil
	}
	fset := token.NewFileSet()
	l := &lister{fset: fset, prefix: "pkg " + importPath + ", "}
	files := append(append([]string(nil), bp.GoFiles...), bp.CgoFiles...)
	for _, name := range files {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, d := range f.Decls {
			l.decl(d)
		}
	}
	sort.Strings(l.lines)
	return l, nil
}

// lister gathers the lines of one package's listing.
type lister struct {
	fset   *token.FileSet
	prefix string
	lines  []string
	names  int // the lines that are names, not members (see CountModule)
}

// add adds the line of a top-level name or a method.
func (l *lister) add(format string, args ...any) {
	l.names++
	l.member(format, args...)
}

// member adds the line of a struct field or an interface's method or
// embedded type, which follows its type's own line.
func (l *lister) member(format string, args ...any) {
	l.lines = append(l.lines, l.prefix+fmt.Sprintf(format, args...))
}

func (l *lister) decl(d ast.Decl) {
	switch d := d.(type) {
	case *ast.FuncDecl:
		if !d.Name.IsExported() {
			return
		}
		if d.Recv == nil {
			l.add("func %s%s%s", d.Name.Name, l.typeParams(d.Type.TypeParams), l.signature(d.Type))
			return
		}
		recv := d.Recv.List[0].Type
		if !ast.IsExported(baseTypeName(recv)) {
			return
		}
		l.add("method (%s) %s%s", l.expr(recv), d.Name.Name, l.signature(d.Type))
	case *ast.GenDecl:
		switch d.Tok {
		case token.TYPE:
			for _, s := range d.Specs {
				l.typeSpec(s.(*ast.TypeSpec))
			}
		case token.CONST, token.VAR:
			// In a const group, a spec with neither type nor values
			// repeats the previous one's.
			var typ ast.Expr
			for _, s := range d.Specs {
				vs := s.(*ast.ValueSpec)
				if d.Tok == token.VAR || vs.Type != nil || len(vs.Values) > 0 {
					typ = vs.Type
				}
				for _, n := range vs.Names {
					if !n.IsExported() {
						continue
					}
					if typ == nil {
						l.add("%s %s", d.Tok, n.Name)
					} else {
						l.add("%s %s %s", d.Tok, n.Name, l.expr(typ))
					}
				}
			}
		}
	}
}

func (l *lister) typeSpec(s *ast.TypeSpec) {
	if !s.Name.IsExported() {
		return
	}
	name := s.Name.Name + l.typeParams(s.TypeParams)
	if s.Assign.IsValid() {
		l.add("type %s = %s", name, l.expr(s.Type))
		return
	}
	switch t := s.Type.(type) {
	case *ast.StructType:
		l.add("type %s struct", name)
		for _, f := range t.Fields.List {
			typ := l.expr(f.Type)
			if len(f.Names) == 0 {
				if ast.IsExported(baseTypeName(f.Type)) {
					l.member("type %s struct, embedded %s", name, typ)
				}
				continue
			}
			for _, n := range f.Names {
				if n.IsExported() {
					l.member("type %s struct, %s %s", name, n.Name, typ)
				}
			}
		}
	case *ast.InterfaceType:
		var methods []string
		for _, f := range t.Methods.List {
			if len(f.Names) == 0 {
				// An embedded interface or a type constraint.
				l.member("type %s interface, embedded %s", name, l.expr(f.Type))
				continue
			}
			for _, n := range f.Names {
				if n.IsExported() {
					methods = append(methods, n.Name)
					l.member("type %s interface, %s%s", name, n.Name, l.signature(f.Type.(*ast.FuncType)))
				}
			}
		}
		sort.Strings(methods)
		l.add("type %s interface { %s }", name, strings.Join(methods, ", "))
	default:
		l.add("type %s %s", name, l.expr(s.Type))
	}
}

// signature prints a function type's parameters and results, types only.
func (l *lister) signature(f *ast.FuncType) string {
	s := "(" + strings.Join(l.fieldTypes(f.Params), ", ") + ")"
	results := l.fieldTypes(f.Results)
	switch {
	case len(results) == 1:
		s += " " + results[0]
	case len(results) > 1:
		s += " (" + strings.Join(results, ", ") + ")"
	}
	return s
}

// fieldTypes lists the type of each name of a field list (a parameter
// list's "a, b int" is "int, int").
func (l *lister) fieldTypes(fl *ast.FieldList) []string {
	if fl == nil {
		return nil
	}
	var types []string
	for _, f := range fl.List {
		typ := l.expr(f.Type)
		for range max(1, len(f.Names)) {
			types = append(types, typ)
		}
	}
	return types
}

// typeParams prints type parameters as the source declares them.
func (l *lister) typeParams(fl *ast.FieldList) string {
	if fl == nil {
		return ""
	}
	var params []string
	for _, f := range fl.List {
		names := make([]string, len(f.Names))
		for i, n := range f.Names {
			names[i] = n.Name
		}
		params = append(params, strings.Join(names, ", ")+" "+l.expr(f.Type))
	}
	return "[" + strings.Join(params, ", ") + "]"
}

// expr prints a type expression on one line, with byte and rune as the
// types they alias, so that a listing does not change with the spelling.
func (l *lister) expr(e ast.Expr) string {
	ast.Inspect(e, func(n ast.Node) bool {
		if f, ok := n.(*ast.FuncType); ok {
			unname(f.Params)
			unname(f.Results)
		}
		return true
	})
	var b bytes.Buffer
	printer.Fprint(&b, l.fset, e)
	s := strings.Join(strings.Fields(b.String()), " ")
	return replaceIdent(replaceIdent(s, "byte", "uint8"), "rune", "int32")
}

// unname drops the names of a func type's parameters or results, a field
// for each ("a, b int" becomes "int, int"), as a listing gives types only.
func unname(fl *ast.FieldList) {
	if fl == nil {
		return
	}
	var list []*ast.Field
	for _, f := range fl.List {
		for range max(1, len(f.Names)) {
			list = append(list, &ast.Field{Type: f.Type})
		}
	}
	fl.List = list
}

// replaceIdent replaces the identifier old, where it stands alone (not as
// part of another identifier or after a package name), with new.
func replaceIdent(s, old, new string) string {
	isIdent := func(c byte) bool {
		return c == '_' || c == '.' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
	}
	var b strings.Builder
	for {
		i := strings.Index(s, old)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := i + len(old)
		if (i == 0 || !isIdent(s[i-1])) && (j == len(s) || !isIdent(s[j])) {
			b.WriteString(s[:i] + new)
		} else {
			b.WriteString(s[:j])
		}
		s = s[j:]
	}
}

// baseTypeName returns the name of the type a receiver or embedded field
// names, without pointer, package or type arguments.
func baseTypeName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.Ident:
		return t.Name
	case *ast.StarExpr:
		return baseTypeName(t.X)
	case *ast.SelectorExpr:
		return t.Sel.Name
	case *ast.IndexExpr:
		return baseTypeName(t.X)
	case *ast.IndexListExpr:
		return baseTypeName(t.X)
	case *ast.ParenExpr:
		return baseTypeName(t.X)
	}
	return ""
}
