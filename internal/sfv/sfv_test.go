package sfv

import (
	"bytes"
	"testing"
)

func TestParseDictionary(t *testing.T) {
	tests := []struct {
		in   string
		want []Member
		err  bool
	}{
		{in: "sha-256=10, sha-512=3", want: []Member{{"sha-256", Item{Kind: Integer, Int: 10}}, {"sha-512", Item{Kind: Integer, Int: 3}}}},
		{in: "sha-256=:AAEC:", want: []Member{{"sha-256", Item{Kind: ByteSequence, Bytes: []byte{0, 1, 2}}}}},
		{in: "a, b=?0;x=1", want: []Member{{"a", Item{Kind: Boolean, Bool: true}}, {"b", Item{Kind: Boolean}}}},
		{in: `a="x\"y", b=tok/en, c=1.5, d=(1 2);p`, want: []Member{
			{"a", Item{Kind: String, Str: `x"y`}}, {"b", Item{Kind: Token, Str: "tok/en"}},
			{"c", Item{Kind: Decimal, Str: "1.5"}}, {"d", Item{Kind: InnerList}}}},
		{in: "a=1, a=2", want: []Member{{"a", Item{Kind: Integer, Int: 2}}}},
		{in: "", want: nil},
		{in: "A=1", err: true},
		{in: "a=1,", err: true},
		{in: "a=:not base64!:", err: true},
		{in: "a=?2", err: true},
		{in: "a=1 b=2", err: true},
		{in: "a=1.2345", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDictionary(tt.in)
			if tt.err {
				if err == nil {
					t.Fatalf("ParseDictionary(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil || len(got) != len(tt.want) {
				t.Fatalf("ParseDictionary(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.Key != w.Key || g.Value.Kind != w.Value.Kind || g.Value.Int != w.Value.Int ||
					g.Value.Str != w.Value.Str || g.Value.Bool != w.Value.Bool || !bytes.Equal(g.Value.Bytes, w.Value.Bytes) {
					t.Errorf("member %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestParseItem(t *testing.T) {
	if it, err := ParseItem("?1"); err != nil || it.Kind != Boolean || !it.Bool {
		t.Errorf("ParseItem(?1) = %+v, %v", it, err)
	}
	if it, err := ParseItem("42"); err != nil || it.Int != 42 {
		t.Errorf("ParseItem(42) = %+v, %v", it, err)
	}
	for _, bad := range []string{"?", "1 2", "", "?1,"} {
		if _, err := ParseItem(bad); err == nil {
			t.Errorf("ParseItem(%q) accepted", bad)
		}
	}
}

func FuzzParseDictionary(f *testing.F) {
	for _, s := range []string{"sha-256=10, sha-512=3", "sha-256=:AAEC:", `a="x", b=?1;p=2`, "d=(1 2)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseDictionary(s)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, m := range ms {
			if seen[m.Key] {
				t.Fatalf("%q: key %q twice", s, m.Key)
			}
			seen[m.Key] = true
		}
	})
}
