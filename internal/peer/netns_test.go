package peer

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestNetnsExec(t *testing.T) {
	argv := []string{"curl", "-o", "x", "http://h/"}
	if got := NetnsExec("", argv); !slices.Equal(got, argv) {
		t.Errorf("no namespace: %q", got)
	}
	got := NetnsExec("ns1", argv)
	if len(got) != len(argv)+4 || !strings.HasSuffix(got[0], "ip") || !slices.Equal(got[1:4], []string{"netns", "exec", "ns1"}) || !slices.Equal(got[4:], argv) {
		t.Errorf("in ns1: %q", got)
	}
}

func TestNetnsPath(t *testing.T) {
	if p := NetnsPath("a"); p != "/run/netns/a" {
		t.Errorf("NetnsPath(a) = %s", p)
	}
	if p := NetnsPath("/proc/1/ns/net"); p != "/proc/1/ns/net" {
		t.Errorf("absolute path changed to %s", p)
	}
}

func TestInNetnsHere(t *testing.T) {
	// No namespace: fn runs here, and its error comes back.
	want := errors.New("x")
	if err := InNetns("", func() error { return want }); err != want {
		t.Errorf("InNetns(\"\") = %v", err)
	}
	if err := InNetns("ferry-no-such-namespace", func() error { return nil }); err == nil {
		t.Error("a namespace that does not exist: no error")
	}
}
