package sfv

import (
	"errors"
	"testing"
)

func TestFormatDictionaryRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		members []Member
		want    string
	}{
		{"limits", []Member{{"max-size", Item{Kind: Integer, Int: 1000}}, {"max-age", Item{Kind: Integer, Int: 3600}}}, "max-size=1000, max-age=3600"},
		{"bare true", []Member{{"a", Item{Kind: Boolean, Bool: true}}, {"b", Item{Kind: Boolean}}}, "a, b=?0"},
		{"string", []Member{{"s", Item{Kind: String, Str: `say "hi" \o/`}}}, `s="say \"hi\" \\o/"`},
		{"token and bytes", []Member{{"t", Item{Kind: Token, Str: "text/plain"}}, {"sha-256", Item{Kind: ByteSequence, Bytes: []byte{1, 2, 3}}}}, "t=text/plain, sha-256=:AQID:"},
		{"empty", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FormatDictionary(tt.members)
			if err != nil || got != tt.want {
				t.Fatalf("FormatDictionary = %q, %v; want %q", got, err, tt.want)
			}
			back, err := ParseDictionary(got)
			if err != nil || len(back) != len(tt.members) {
				t.Fatalf("ParseDictionary(%q) = %v, %v", got, back, err)
			}
			for i, m := range back {
				w := tt.members[i]
				if m.Key != w.Key || m.Value.Kind != w.Value.Kind || m.Value.Int != w.Value.Int || m.Value.Str != w.Value.Str || m.Value.Bool != w.Value.Bool || string(m.Value.Bytes) != string(w.Value.Bytes) {
					t.Errorf("member %d = %+v, want %+v", i, m, w)
				}
			}
		})
	}
}

func TestFormatErrors(t *testing.T) {
	for _, m := range [][]Member{
		{{"Upper", Item{Kind: Integer}}},
		{{"", Item{Kind: Integer}}},
		{{"k", Item{Kind: String, Str: "tab\t"}}},
		{{"k", Item{Kind: Token, Str: "1abc"}}},
		{{"k", Item{Kind: InnerList}}},
		{{"k", Item{Kind: Integer, Int: MaxInteger + 1}}},
	} {
		if got, err := FormatDictionary(m); err == nil {
			t.Errorf("FormatDictionary(%+v) = %q, want an error", m, got)
		}
	}
	if _, err := FormatInteger(-MaxInteger - 1); !errors.Is(err, ErrRange) {
		t.Errorf("FormatInteger(-MaxInteger-1) = %v, want ErrRange", err)
	}
}

func TestParseBooleanInteger(t *testing.T) {
	for _, tt := range []struct {
		in   string
		b    bool
		bErr bool
	}{{"?1", true, false}, {"?0", false, false}, {" ?1 ", true, false}, {"?1;a=1", true, false}, {"1", false, true}, {"?2", false, true}, {"", false, true}, {"true", false, true}} {
		b, err := ParseBoolean(tt.in)
		if b != tt.b || (err != nil) != tt.bErr {
			t.Errorf("ParseBoolean(%q) = %v, %v", tt.in, b, err)
		}
	}
	for _, tt := range []struct {
		in   string
		n    int64
		nErr bool
	}{{"0", 0, false}, {"42", 42, false}, {"-3", -3, false}, {"999999999999999", MaxInteger, false}, {"1000000000000000", 0, true}, {"1.5", 0, true}, {"0x10", 0, true}, {"", 0, true}, {"1 2", 0, true}} {
		n, err := ParseInteger(tt.in)
		if n != tt.n || (err != nil) != tt.nErr {
			t.Errorf("ParseInteger(%q) = %v, %v", tt.in, n, err)
		}
	}
	if got := FormatBoolean(true) + FormatBoolean(false); got != "?1?0" {
		t.Errorf("FormatBoolean = %q", got)
	}
}
