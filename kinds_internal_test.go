package ferry

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// foregroundOnly are the request fields a background session refuses or
// cannot carry, and Schedule, which travels beside the spec (see
// TestBackgroundSchedule): everything else must reach the daemon's engine.
var foregroundOnly = map[string]bool{"Writer": true, "Continue": true, "ResumeData": true, "StopLive": true, "Schedule": true}

// fill sets every field of the struct v points to that travels to the
// daemon to a value that is not its zero.
func fill(t *testing.T, v any) {
	t.Helper()
	rv := reflect.ValueOf(v).Elem()
	for i := range rv.NumField() {
		f, name := rv.Field(i), rv.Type().Field(i).Name
		if foregroundOnly[name] {
			continue
		}
		switch f.Kind() {
		case reflect.String:
			f.SetString("/abs/" + name)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int64:
			if f.Type() == reflect.TypeFor[time.Duration]() {
				f.SetInt(int64(90 * time.Second))
			} else {
				f.SetInt(int64(3 + i))
			}
		case reflect.Slice:
			if f.Type() == reflect.TypeFor[[]FormPart]() {
				f.Set(reflect.ValueOf([]FormPart{{Name: "k", Value: name}, {Name: "f", Path: "/abs/" + name, FileName: "n", ContentType: "text/plain"}}))
			}
		case reflect.Map:
			switch f.Type() {
			case reflect.TypeFor[http.Header]():
				f.Set(reflect.ValueOf(http.Header{"X-Field": {name}}))
			case reflect.TypeFor[map[string]string]():
				f.Set(reflect.ValueOf(map[string]string{"k": name}))
			}
		}
		if f.IsZero() {
			t.Fatalf("the test cannot fill %s (%s): teach it", name, f.Type())
		}
	}
}

// Every field a background request carries arrives in the request the
// daemon runs: a field a row of the table forgets fails here.
func TestKindsCarryEveryField(t *testing.T) {
	var dl DownloadRequest
	fill(t, &dl)
	var ul UploadRequest
	fill(t, &ul)
	var hl HLSRequest
	fill(t, &hl)
	ul.Protocol = ProtocolTus
	hl.Variant = "best"

	check := func(kind string, spec any, run func(storedRequest) any, want any) {
		t.Helper()
		b, err := json.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		r, err := StoredTask{Kind: kind, Spec: b}.request()
		if err != nil {
			t.Fatal(err)
		}
		if got := run(r); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the daemon runs\n%+v\nwant\n%+v", kind, got, want)
		}
	}
	spec, err := downloadSpec(dl, dl.Header)
	if err != nil {
		t.Fatal(err)
	}
	check("get", spec, func(r storedRequest) any { return r.(*storedDownload).spec }, *spec)
	check("get", spec, func(r storedRequest) any { return r.(*storedDownload).req }, dl)

	uspec, err := uploadSpec(ul, ul.Header)
	if err != nil {
		t.Fatal(err)
	}
	check("put", uspec, func(r storedRequest) any { return r.(*storedUpload).req }, ul)

	hspec, err := hlsSpec(hl, hl.Header)
	if err != nil {
		t.Fatal(err)
	}
	check("hls", hspec, func(r storedRequest) any { return r.(*storedHLS).req }, hl)
	if !filepath.IsAbs(hspec.Concat) || !filepath.IsAbs(hspec.Dir) {
		t.Errorf("paths not absolute: %+v", hspec)
	}
}

// A form's upload without a file of its own goes to the daemon without
// one: an empty Path is not made the working directory.
func TestFormUploadSpecHasNoPath(t *testing.T) {
	spec, err := uploadSpec(UploadRequest{URL: "http://example.com/", Form: []FormPart{{Name: "a", Value: "b"}}}, nil)
	if err != nil || spec.Path != "" {
		t.Errorf("spec path %q, %v; want none", spec.Path, err)
	}
}
