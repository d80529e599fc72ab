package daemon

import (
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"regexp"
	"testing"
)

// The daemon exports two types of internal packages by alias, whose
// fields its godoc does not show: their doc comments name every field.
func TestAliasDocsNameFields(t *testing.T) {
	fset := token.NewFileSet()
	docs := map[string]string{}
	for _, name := range []string{"daemon.go", "socket.go"} {
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.TYPE && g.Doc != nil {
				docs[g.Specs[0].(*ast.TypeSpec).Name.Name] = g.Doc.Text()
			}
		}
	}
	for name, v := range map[string]any{"RecoveryReport": RecoveryReport{}, "UnsafeError": UnsafeError{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			if f := typ.Field(i); f.IsExported() && !regexp.MustCompile(`\b`+f.Name+`\b`).MatchString(docs[name]) {
				t.Errorf("the doc comment of %s does not name its field %s", name, f.Name)
			}
		}
	}
}
