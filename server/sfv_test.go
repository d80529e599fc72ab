package server

import (
	"slices"
	"strings"
	"testing"
)

var wantDigestTests = []struct {
	name  string
	in    string
	prefs []digestPref
	ok    bool
}{
	{"one", "sha-256=10", []digestPref{{"sha-256", 10}}, true},
	{"two", "sha-256=10, sha-512=3", []digestPref{{"sha-256", 10}, {"sha-512", 3}}, true},
	{"leading spaces", "  sha-256=1,sha-512=2", []digestPref{{"sha-256", 1}, {"sha-512", 2}}, true},
	{"optional whitespace", "sha-256=1 ,\tsha-512=2", []digestPref{{"sha-256", 1}, {"sha-512", 2}}, true},
	{"empty", "", nil, true},
	{"duplicate keeps last value", "sha-256=1, sha-256=5", []digestPref{{"sha-256", 5}}, true},
	{"duplicate keeps first place", "sha-512=3, sha-256=1, sha-512=0", []digestPref{{"sha-512", 0}, {"sha-256", 1}}, true},
	{"zero", "sha-256=0", []digestPref{{"sha-256", 0}}, true},
	{"above 10 ignored", "sha-256=11, sha-512=1", []digestPref{{"sha-512", 1}}, true},
	{"negative ignored", "sha-256=-1", nil, true},
	{"decimal ignored", "sha-256=1.5", nil, true},
	{"boolean ignored", "sha-256, sha-512=2", []digestPref{{"sha-512", 2}}, true},
	{"parameters", "sha-256=10;q=1;x", []digestPref{{"sha-256", 10}}, true},
	{"every item type", `a=?1, b=:AAAA:, c="s\"q", d=tok/en:x, e=(1 "b" t);p=1, f=-0.25, *g=2`, []digestPref{{"*g", 2}}, true},
	{"empty inner list", "a=(), sha-256=2", []digestPref{{"sha-256", 2}}, true},
	{"unknown algorithms kept", "md5=9", []digestPref{{"md5", 9}}, true},

	{"uppercase key", "SHA-256=10", nil, false},
	{"trailing comma", "sha-256=10,", nil, false},
	{"leading comma", ",sha-256=1", nil, false},
	{"missing comma", "sha-256=10 sha-512=3", nil, false},
	{"missing value", "sha-256=", nil, false},
	{"sixteen digits", "sha-256=1234567890123456", nil, false},
	{"decimal too long", "a=1234567890123.5", nil, false},
	{"decimal no fraction", "a=1.", nil, false},
	{"minus alone", "a=-", nil, false},
	{"minus dot", "a=-.5", nil, false},
	{"unterminated string", `a="abc`, nil, false},
	{"bad escape", `a="\n"`, nil, false},
	{"unterminated list", "a=(1 2", nil, false},
	{"list without space", "a=(1\"x\")", nil, false},
	{"bad boolean", "a=?2", nil, false},
	{"empty parameter", "sha-256=1;", nil, false},
	{"bad byte sequence", "a=:AB$:", nil, false},
	{"trailing tab", "sha-256=1\t", []digestPref{{"sha-256", 1}}, true},
	{"control character", "sha-256=1\x00", nil, false},
}

func TestParseWantDigest(t *testing.T) {
	for _, tt := range wantDigestTests {
		t.Run(tt.name, func(t *testing.T) {
			prefs, ok := parseWantDigest(tt.in)
			if ok != tt.ok || !slices.Equal(prefs, tt.prefs) {
				t.Errorf("parseWantDigest(%q) = %v, %v, want %v, %v", tt.in, prefs, ok, tt.prefs, tt.ok)
			}
		})
	}
}

func TestWantedDigest(t *testing.T) {
	tests := []struct {
		lines []string
		want  string // "": none
	}{
		{nil, ""},
		{[]string{""}, ""},
		{[]string{"sha-256=10"}, "sha-256"},
		{[]string{"sha-512=3"}, "sha-512"},
		{[]string{"sha-256=1, sha-512=3"}, "sha-512"},
		{[]string{"sha-512=5, sha-256=5"}, "sha-256"},
		{[]string{"sha-256=0, sha-512=0"}, ""},
		{[]string{"sha-256=0, sha-512=1"}, "sha-512"},
		{[]string{"md5=10, sha=10, unixsum=10"}, ""},
		{[]string{"sha-256=1", "sha-512=2"}, "sha-512"},
		{[]string{"sha-256=10", "bad,"}, ""},
		{[]string{"sha-256=10, sha-256=0"}, ""},
	}
	for _, tt := range tests {
		alg, ok := wantedDigest(tt.lines)
		if got := alg.name; ok != (tt.want != "") || got != tt.want {
			t.Errorf("wantedDigest(%q) = %q, %v, want %q", tt.lines, got, ok, tt.want)
		}
	}
}

// FuzzParseWantDigest checks that the parser never panics, keeps only
// preferences RFC 9530 allows, and reads back what formatWantDigest writes
// of its result.
func FuzzParseWantDigest(f *testing.F) {
	for _, tt := range wantDigestTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		prefs, ok := parseWantDigest(in)
		if !ok {
			if prefs != nil {
				t.Fatalf("parseWantDigest(%q) = %v, false; want no preferences", in, prefs)
			}
			return
		}
		seen := map[string]bool{}
		for _, p := range prefs {
			if p.weight < 0 || p.weight > 10 {
				t.Fatalf("parseWantDigest(%q): weight %d out of 0-10", in, p.weight)
			}
			if seen[p.alg] {
				t.Fatalf("parseWantDigest(%q): key %q twice", in, p.alg)
			}
			seen[p.alg] = true
		}
		out := formatWantDigest(prefs)
		again, ok := parseWantDigest(out)
		if !ok || !slices.Equal(again, prefs) {
			t.Fatalf("parseWantDigest(%q) = %v, %v after formatting %v from %q", out, again, ok, prefs, in)
		}
		if alg, ok := wantedDigest([]string{in}); ok && !strings.HasPrefix(alg.name, "sha-") {
			t.Fatalf("wantedDigest(%q) = %q", in, alg.name)
		}
	})
}
