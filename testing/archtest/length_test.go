package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const (
	maxFileLines = 600
	maxFuncLines = 80
)

// A function's doc comment line "// long: <why>", or the file's first
// comment line "// long-file: <why>", lets it grow past the limit; the reason
// must be given.
var (
	longFunc = regexp.MustCompile(`(?m)^//\s*long:\s*\S`)
	longFile = regexp.MustCompile(`(?m)^//\s*long-file:\s*\S`)
)

// goSources are the repository's non-test Go files, module-relative; testdata
// is not Go code of the module.
func goSources(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	for _, f := range repoFiles(t, root) {
		if !strings.HasSuffix(f, ".go") || strings.HasSuffix(f, "_test.go") || strings.Contains("/"+f, "/testdata/") {
			continue
		}
		out = append(out, f)
	}
	return out
}

// hasMarker reports whether a comment group has a line matching re. The
// comments' raw text is read: CommentGroup.Text drops directive-like lines.
func hasMarker(g *ast.CommentGroup, re *regexp.Regexp) bool {
	if g == nil {
		return false
	}
	for _, c := range g.List {
		if re.MatchString(c.Text) {
			return true
		}
	}
	return false
}

func TestFileAndFunctionLength(t *testing.T) {
	root := repoRoot(t)
	files := goSources(t, root)
	if len(files) == 0 {
		t.Fatal("no Go source file found")
	}
	for _, name := range files {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, filepath.Join(root, name), nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		lines := fset.File(f.Pos()).LineCount()
		if lines > maxFileLines && (len(f.Comments) == 0 || !hasMarker(f.Comments[0], longFile)) {
			t.Errorf("%s: %d lines (limit %d): split it, or give the reason in a first comment line // long-file: <why>", name, lines, maxFileLines)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			start, end := fset.Position(fn.Pos()), fset.Position(fn.End())
			n := end.Line - start.Line + 1
			if n > maxFuncLines && !hasMarker(fn.Doc, longFunc) {
				t.Errorf("%s:%d: %s is %d lines (limit %d): split it, or give the reason in a doc comment line // long: <why>", name, start.Line, funcName(fn), n, maxFuncLines)
			}
		}
	}
}

// funcName is Recv.Name for a method, Name for a function.
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	typ := fn.Recv.List[0].Type
	for {
		switch x := typ.(type) {
		case *ast.StarExpr:
			typ = x.X
			continue
		case *ast.IndexExpr:
			typ = x.X
			continue
		case *ast.IndexListExpr:
			typ = x.X
			continue
		case *ast.Ident:
			return x.Name + "." + fn.Name.Name
		}
		return fn.Name.Name
	}
}
