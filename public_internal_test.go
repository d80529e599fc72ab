package ferry

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/hlsdownload"
	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/upload"
)

// The public API defines its types, so that go doc shows their fields: no
// exported name of the root package is an alias of another package's type.
func TestNoExportedAliases(t *testing.T) {
	names, _ := filepath.Glob("*.go")
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.TYPE {
				continue
			}
			for _, sp := range g.Specs {
				if ts := sp.(*ast.TypeSpec); ts.Assign.IsValid() && ts.Name.IsExported() {
					t.Errorf("type %s is an alias; define it here so that go doc shows it", ts.Name)
				}
			}
		}
	}
}

// A public type whose engine twin cannot be converted to it (an unexported
// field, a field of another public type) has the same exported fields, so
// that nothing the engine reports is lost on the way to the caller.
func TestPublicTypesMirrorEngines(t *testing.T) {
	for _, p := range []struct{ public, engine any }{
		{StatusError{}, transfer.StatusError{}},
		{HLSHolesError{}, hlsdownload.HolesError{}},
		{ProgressEvent{}, transfer.ProgressEvent{}},
		{MetricsEvent{}, transfer.MetricsEvent{}},
	} {
		pub, eng := fields(reflect.TypeOf(p.public)), fields(reflect.TypeOf(p.engine))
		if !reflect.DeepEqual(pub, eng) {
			t.Errorf("%T has fields %v; its engine twin %T has %v", p.public, pub, p.engine, eng)
		}
	}
}

func fields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		if f.IsExported() {
			out = append(out, f.Name+" "+f.Type.Kind().String())
		}
	}
	return out
}

func TestProtocolsMatchTheEngine(t *testing.T) {
	for pub, eng := range map[Protocol]upload.Protocol{
		ProtocolAuto: upload.Auto, ProtocolTus: upload.Tus, ProtocolIETF: upload.IETF, ProtocolMultipart: upload.Multipart,
	} {
		if upload.Protocol(pub) != eng {
			t.Errorf("%s is %s in the engine", pub, eng)
		}
	}
}
