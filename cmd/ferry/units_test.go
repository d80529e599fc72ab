package main

import "testing"

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1048576", 1 << 20, true},
		{"500k", 500 << 10, true},
		{"2M", 2 << 20, true},
		{"1.5G", 3 << 29, true},
		{"64KiB", 64 << 10, true},
		{"1T", 1 << 40, true},
		{"", 0, false},
		{"-1", 0, false},
		{"fast", 0, false},
		{"NaN", 0, false},
		{"Inf", 0, false},
		{"1e30", 0, false},
		{"9999999T", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d (ok %v)", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// parseSize never returns a negative size or one past maxSize.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1048576", "500k", "2M", "1.5G", "NaN", "1e30", "-0", "0x10", "1e-400"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := parseSize(s); err == nil && (n < 0 || n > maxSize) {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
	})
}
