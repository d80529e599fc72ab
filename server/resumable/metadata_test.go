package resumable_test

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/server/resumable"
)

var metadataTests = []struct {
	in   string
	want map[string]string // nil: an error
}{
	{"", map[string]string{}},
	{"   ", map[string]string{}},
	{"filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==", map[string]string{"filename": "world_domination_plan.pdf"}},
	{"filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential", map[string]string{"filename": "world_domination_plan.pdf", "is_confidential": ""}},
	{"a YQ==, b Yg", map[string]string{"a": "a", "b": "b"}}, // spaces after commas; missing padding
	{"k ", map[string]string{"k": ""}},                          // trailing space
	{"ключ dmFs", map[string]string{"ключ": "val"}},             // non-ASCII keys are tolerated
	{"empty ,x eA==", map[string]string{"empty": "", "x": "x"}}, // empty value with its space
	{"bin AP8=", map[string]string{"bin": "\x00\xff"}},          // any bytes
	{"a,a", nil},          // repeated key
	{",a", nil},           // empty pair
	{"a YQ==,", nil},      // trailing comma
	{"a b c", nil},        // space in value
	{"key !!!", nil},      // not Base64
	{"ke\x01y YQ==", nil}, // control character
	{"a YQ==\tb", nil},    // tab inside the value
}

func TestParseMetadata(t *testing.T) {
	for _, tt := range metadataTests {
		got, err := resumable.ParseMetadata(tt.in)
		if tt.want == nil {
			if err == nil || !errors.Is(err, resumable.ErrMetadataSyntax) {
				t.Errorf("ParseMetadata(%q) = %v, %v; want ErrMetadataSyntax", tt.in, got, err)
			}
			continue
		}
		if err != nil || !maps.Equal(got, tt.want) {
			t.Errorf("ParseMetadata(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestFormatMetadata(t *testing.T) {
	m := map[string]string{"b": "two", "a": "", "c": "\x00"}
	if got, want := resumable.FormatMetadata(m), "a,b dHdv,c AA=="; got != want {
		t.Errorf("FormatMetadata = %q, want %q", got, want)
	}
}

// FuzzParseMetadata checks that ParseMetadata never panics, and that what
// it accepts survives formatting and parsing again unchanged.
func FuzzParseMetadata(f *testing.F) {
	for _, tt := range metadataTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		m, err := resumable.ParseMetadata(in)
		if err != nil {
			return
		}
		out := resumable.FormatMetadata(m)
		back, err := resumable.ParseMetadata(out)
		if err != nil {
			t.Fatalf("ParseMetadata(FormatMetadata(%v)) = %v (formatted %q)", m, err, out)
		}
		if !maps.Equal(back, m) {
			t.Fatalf("round trip of %q: %v, then %v", in, m, back)
		}
	})
}

func TestSanitizeFileName(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	tests := []struct{ in, want string }{
		{"report.pdf", "report.pdf"},
		{"../../etc/passwd", "passwd"},
		{`..\..\windows\system32\cmd.exe`, "cmd.exe"},
		{"/abs/path/x.txt", "x.txt"},
		{"..", resumable.DefaultFileName},
		{".", resumable.DefaultFileName},
		{"", resumable.DefaultFileName},
		{"dir/", resumable.DefaultFileName},
		{".hidden", "hidden"},
		{"  spaced name.txt  ", "spaced name.txt"},
		{"new\nline\r\x00.txt", "newline.txt"},
		{"evil\u202etxt.exe", "eviltxt.exe"},
		{"bad\xffutf8", "bad_utf8"},
		{"日本語.txt", "日本語.txt"},
		{long, strings.Repeat("é", 127)},
	}
	for _, tt := range tests {
		if got := resumable.SanitizeFileName(tt.in); got != tt.want {
			t.Errorf("SanitizeFileName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzSanitizeFileName(f *testing.F) {
	for _, s := range []string{"../../etc/passwd", `a\b`, "..", "x\u202ey", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := resumable.SanitizeFileName(in)
		if got == "" || got == "." || got == ".." || strings.ContainsAny(got, "/\\\x00") || len(got) > 255 {
			t.Fatalf("SanitizeFileName(%q) = %q: not one safe path element", in, got)
		}
		if filepath.Base(got) != got {
			t.Fatalf("SanitizeFileName(%q) = %q, base %q", in, got, filepath.Base(got))
		}
		if again := resumable.SanitizeFileName(got); again != got {
			t.Fatalf("SanitizeFileName is not idempotent: %q → %q → %q", in, got, again)
		}
	})
}

// A hostile file name is kept for display only, sanitised; nothing is ever
// written outside the store's directory under any name the client chose.
func TestFileNameStoredSafely(t *testing.T) {
	run(t, resumable.Config{}, func(t *testing.T, e *env) {
		tusURL := e.create(t, 3, "Upload-Metadata: filename "+b64("../../etc/passwd"))
		e.patch(t, tusURL, 0, []byte("abc")).expect(t, 204)
		draft := e.do(t, "POST", "/files/", "xyz", "Upload-Draft-Interop-Version: 6", "Upload-Complete: ?1",
			`Content-Disposition: attachment; filename="..\\..\\evil`+"\u202e"+`txt.exe"`).expect(t, 201).Header.Get("Location")
		// tus takes Content-Disposition too, filename* (RFC 5987) included.
		r := e.do(t, "POST", "/files/", "xyz", tus, "Upload-Length: 3", "Content-Type: application/offset+octet-stream",
			"Content-Disposition: attachment; filename*=UTF-8''..%2F..%2F%C3%A9t%C3%A9.txt").expect(t, 201)
		for url, want := range map[string]string{
			tusURL:                   "attachment; filename=passwd",
			draft:                    "attachment; filename=eviltxt.exe",
			r.Header.Get("Location"): "attachment; filename=_t_.txt; filename*=UTF-8''%C3%A9t%C3%A9.txt",
		} {
			e.do(t, "GET", url, nil).expect(t, 200).header(t, "Content-Disposition", want)
		}
		entries, _ := os.ReadDir(e.dir)
		for _, ent := range entries {
			if n := ent.Name(); !strings.HasSuffix(n, ".bin") && !strings.HasSuffix(n, ".info") {
				t.Errorf("unexpected file %q in the store", n)
			}
		}
		if _, err := os.Stat(filepath.Join(e.dir, "..", "etc")); err == nil {
			t.Error("an etc directory appeared next to the store")
		}
	})
}

// Unfinished uploads, and partial ones, expire; finished ones stay.
func TestExpiry(t *testing.T) {
	const expiry = time.Second
	e := newEnv(t, false, resumable.Config{Expiry: expiry})
	unfinished := e.create(t, 10)
	e.patch(t, unfinished, 0, []byte("12345")).expect(t, 204)
	exp, err := time.Parse(time.RFC1123, e.do(t, "HEAD", unfinished, nil, tus).Header.Get("Upload-Expires"))
	if err != nil || time.Until(exp) > expiry+time.Second {
		t.Errorf("Upload-Expires %v, %v: want within the expiry", exp, err)
	}
	finished := e.create(t, 3)
	e.patch(t, finished, 0, []byte("abc")).expect(t, 204)
	partial := e.partial(t, []byte("xy"), 2)

	time.Sleep(expiry + 200*time.Millisecond)
	fresh := e.create(t, 10)
	// The janitor may have got there first; between the two, both expired
	// uploads go and nothing else does.
	if n, err := e.h.Clean(t.Context()); err != nil || n > 2 {
		t.Errorf("Clean = %d, %v; want at most 2 (the unfinished and the partial upload)", n, err)
	}
	e.do(t, "HEAD", unfinished, nil, tus).expect(t, 404)
	e.do(t, "HEAD", partial, nil, tus).expect(t, 404)
	e.do(t, "HEAD", finished, nil, tus).expect(t, 200)
	e.do(t, "HEAD", fresh, nil, tus).expect(t, 200)

	// The janitor removes the fresh one too once it has expired.
	deadline := time.Now().Add(10 * time.Second)
	for e.do(t, "HEAD", fresh, nil, tus).StatusCode != 404 {
		if time.Now().After(deadline) {
			t.Fatal("the janitor did not remove an expired upload")
		}
		time.Sleep(100 * time.Millisecond)
	}
	mustEqual(t, "finished upload", e.download(t, finished), []byte("abc"))
}

// Metadata is bounded, and kept exactly and compactly: bytes of any value
// come back as sent, and the record on disk grows with the metadata as
// sent (Base64), not sixfold as NUL bytes escaped in JSON would.
func TestMetadataStored(t *testing.T) {
	e := newEnv(t, false, resumable.Config{})
	sent := map[string]string{"nul": strings.Repeat("\x00", 6000), "bin": "\xff\xfe\x00\x80", "filename": "a.txt"}
	field := resumable.FormatMetadata(sent)
	url := e.create(t, 1, "Upload-Metadata: "+field)
	got, err := resumable.ParseMetadata(e.do(t, "HEAD", url, nil, tus).expect(t, 200).Header.Get("Upload-Metadata"))
	for k, v := range sent {
		if got[k] != v || err != nil {
			t.Errorf("metadata %q came back as %d bytes %.16q (%v), want %d bytes %.16q", k, len(got[k]), got[k], err, len(v), v)
		}
	}
	id := url[strings.LastIndex(url, "/")+1:]
	if fi, err := os.Stat(filepath.Join(e.dir, id+".info")); err != nil || fi.Size() > int64(len(field))+1024 {
		t.Errorf("record of %d bytes for %d bytes of metadata (%v)", fi.Size(), len(field), err)
	}

	huge := resumable.FormatMetadata(map[string]string{"nul": strings.Repeat("\x00", 30000)})
	if c := e.do(t, "POST", "/files/", nil, tus, "Upload-Length: 1", "Upload-Metadata: "+huge).expect(t, 400).code(t); c != "invalid-upload-metadata" {
		t.Errorf("%d bytes of Upload-Metadata: problem %q", len(huge), c)
	}
	if c := e.do(t, "POST", "/files/", nil, "Upload-Draft-Interop-Version: 8", "Upload-Complete: ?0", "Upload-Metadata: "+huge).expect(t, 400).code(t); c != "invalid-upload-metadata" {
		t.Errorf("draft: %d bytes of Upload-Metadata: problem %q", len(huge), c)
	}
	if ids, _ := e.store.List(t.Context()); len(ids) != 1 {
		t.Errorf("%d uploads stored, want 1", len(ids))
	}
}
