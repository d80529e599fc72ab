package clientaddr

import "testing"

func TestKey(t *testing.T) {
	same := [][2]string{
		{"192.0.2.1:1234", "192.0.2.1:5678"},
		{"192.0.2.1:1234", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:1", "192.0.2.1:2"},
		{"[2001:db8:1:2:aaaa::1]:1", "[2001:db8:1:2:bbbb::9]:2"}, // one /64
		{"[fe80::1%eth0]:1", "[fe80::2%eth1]:1"},
		{"@", "@"},
		{"", ""},
	}
	for _, p := range same {
		if a, b := Key(p[0]), Key(p[1]); a != b {
			t.Errorf("Key(%q) = %q, Key(%q) = %q; want one client", p[0], a, p[1], b)
		}
	}
	differ := [][2]string{
		{"192.0.2.1:1", "192.0.2.2:1"},
		{"[2001:db8:1:2::1]:1", "[2001:db8:1:3::1]:1"},
		{"192.0.2.1:1", "[2001:db8::1]:1"},
		{"@", ""},
		{"not an address", "another"},
		{"not an address", "192.0.2.1:1"},
	}
	for _, p := range differ {
		if a, b := Key(p[0]), Key(p[1]); a == b {
			t.Errorf("Key(%q) = Key(%q) = %q; want two clients", p[0], p[1], a)
		}
	}
}

func FuzzKey(f *testing.F) {
	for _, s := range []string{"192.0.2.1:1", "[2001:db8::1%eth0]:80", "[::ffff:10.0.0.1]:1", "@", "", "[::1", "1.2.3.4:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, remote string) {
		k := Key(remote)
		if Key(remote) != k {
			t.Fatalf("Key(%q) is not stable", remote)
		}
	})
}
