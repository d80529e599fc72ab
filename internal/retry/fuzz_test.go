package retry

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParseRetryAfter checks that no Retry-After a server sends yields a
// negative wait, that delay-seconds are read exactly, and that the policy
// never waits past MaxRetryAfter, however long the server asks for.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"120", " 3 ", "0", "", "-1", "1e9", "+5", "4294967295", "4294967296",
		"99999999999999999999999", "Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT",
		"Mon, 01 Jan 0001 00:00:00 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "soon"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d := ParseRetryAfter(v, now)
		if d < 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v", v, d)
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil && d != time.Duration(n)*time.Second {
			t.Fatalf("ParseRetryAfter(%q) = %v, want %ds", v, d, n)
		}
		p := Policy{MaxRetryAfter: time.Hour}
		wait, ok := p.Delay(3, d)
		if ok && (wait < 0 || wait > time.Hour) {
			t.Fatalf("Retry-After %q: the policy waits %v", v, wait)
		}
	})
}
