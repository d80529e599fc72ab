package leakcheck

import (
	"bytes"
	"strings"
	"testing"
)

// parked blocks until stop is closed; its name marks its goroutine.
func parked(stop <-chan struct{}, started chan<- struct{}) {
	close(started)
	<-stop
}

// A goroutine still running is reported with its stack; once it has ended,
// nothing is; goroutines that match no marker never are.
func TestLeaked(t *testing.T) {
	stop, started := make(chan struct{}), make(chan struct{})
	go parked(stop, started)
	<-started
	var out bytes.Buffer
	if !Leaked(&out, 0, "leakcheck.parked") {
		t.Fatal("a parked goroutine was not reported")
	}
	if !strings.Contains(out.String(), "leakcheck.parked") {
		t.Errorf("the report lacks the goroutine's stack:\n%s", out.String())
	}
	if Leaked(&out, 0, "no/such.function") {
		t.Error("a goroutine matching no marker was reported")
	}
	close(stop)
	if Leaked(&out, wait, "leakcheck.parked") {
		t.Error("a goroutine that ended was reported")
	}
}
