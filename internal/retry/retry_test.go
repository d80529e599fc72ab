package retry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

func TestBackoffGrowsWithJitterAndCap(t *testing.T) {
	p := Policy{Initial: 100 * time.Millisecond, Max: time.Second}
	for failures, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 30: time.Second} {
		for range 50 {
			d := p.Backoff(failures)
			if d < want/2 || d > want {
				t.Fatalf("Backoff(%d) = %v, want in [%v, %v]", failures, d, want/2, want)
			}
		}
	}
}

func TestExhausted(t *testing.T) {
	if (Policy{}).Exhausted(9) || !(Policy{}).Exhausted(10) {
		t.Error("zero policy should allow 10 attempts")
	}
	if !(Policy{MaxAttempts: -1}).Exhausted(1) {
		t.Error("negative MaxAttempts should allow no retry")
	}
}

func TestDelayHonoursRetryAfter(t *testing.T) {
	p := Policy{MaxRetryAfter: time.Minute}
	if d, ok := p.Delay(1, 7*time.Second); d != 7*time.Second || !ok {
		t.Errorf("Delay with Retry-After 7s = %v, %v", d, ok)
	}
	if _, ok := p.Delay(1, time.Hour); ok {
		t.Error("a Retry-After beyond MaxRetryAfter should not be waited for")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"120", 2 * time.Minute},
		{" 3 ", 3 * time.Second},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"-1", 0},
		{"soon", 0},
		{"", 0},
	}
	for _, tt := range tests {
		if got := ParseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

type flaky struct{ retry bool }

func (f flaky) Error() string   { return "flaky" }
func (f flaky) Retryable() bool { return f.retry }

func TestIsRetryable(t *testing.T) {
	if !IsRetryable(fmtWrap(flaky{true})) || IsRetryable(flaky{false}) || IsRetryable(errors.New("x")) {
		t.Error("IsRetryable must ask the error, through wrapping")
	}
}

func fmtWrap(err error) error { return errors.Join(errors.New("context"), err) }

func TestSleepEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		cause := errors.New("stopped")
		go func() {
			time.Sleep(time.Second)
			cancel(cause)
		}()
		start := time.Now()
		if err := Sleep(ctx, time.Hour); err != cause {
			t.Fatalf("Sleep = %v, want the context's cause", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Fatalf("Sleep returned after %v, want 1s (fake clock)", d)
		}
		if err := Sleep(context.Background(), 5*time.Second); err != nil || time.Since(start) != 6*time.Second {
			t.Fatalf("Sleep(5s) = %v after %v", err, time.Since(start))
		}
	})
}

type withAfter struct{ d time.Duration }

func (w withAfter) Error() string                  { return "busy" }
func (w withAfter) Retryable() bool                { return true }
func (w withAfter) RetryAfterDelay() time.Duration { return w.d }

func TestRetrier(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var delays []time.Duration
		r := Retrier{
			Policy:  Policy{MaxAttempts: 3, Initial: time.Second, Max: time.Second},
			OnRetry: func(_ int, d time.Duration, _ error) { delays = append(delays, d) },
		}
		attempts := 0
		err := r.Do(context.Background(), func(context.Context) (bool, error) {
			attempts++
			switch attempts {
			case 1:
				return false, withAfter{7 * time.Second} // the server's Retry-After wins
			case 2, 3:
				return true, flaky{true} // progress: the count starts over
			case 4, 5:
				return false, flaky{true}
			}
			return false, flaky{true}
		})
		if err == nil || attempts != 5 {
			t.Fatalf("Do = %v after %d attempts; want to give up on the 3rd failure in a row without progress (attempt 5)", err, attempts)
		}
		if delays[0] != 7*time.Second {
			t.Errorf("first delay %v, want the Retry-After of 7s", delays[0])
		}
		if err := (&Retrier{}).Failed(context.Background(), flaky{false}, false); err == nil {
			t.Error("a permanent error must not be retried")
		}
	})
}

func TestPermanent(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		permanent bool
		reachable bool
	}{
		{"no such host", &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}, true, true},
		{"dns timeout", &net.DNSError{Err: "i/o timeout", Name: "x.example", IsTimeout: true}, false, false},
		{"dns temporary", &net.DNSError{Err: "server misbehaving", Name: "x.example", IsTemporary: true}, false, false},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, false, false},
		{"unknown authority", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, true, true},
		{"bare hostname error", fmt.Errorf("dial: %w", x509.HostnameError{Host: "a"}), true, true},
		{"expired", x509.CertificateInvalidError{Reason: x509.Expired}, true, true},
		{"plain http on the port", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, true, true},
		{"protocol version alert", tls.AlertError(70), true, true},
		{"internal error alert", tls.AlertError(80), false, true},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, false, true},
	} {
		if got := Permanent(tc.err); got != tc.permanent {
			t.Errorf("%s: Permanent = %v, want %v", tc.name, got, tc.permanent)
		}
		if got := Unreachable(tc.err); got == tc.reachable {
			t.Errorf("%s: Unreachable = %v, want %v", tc.name, got, !tc.reachable)
		}
		// However a caller marked it, a permanent failure is not retried.
		if got := IsRetryable(&transient{tc.err}); got == tc.permanent {
			t.Errorf("%s: IsRetryable = %v, want %v", tc.name, got, !tc.permanent)
		}
	}
}

type transient struct{ err error }

func (e *transient) Error() string   { return e.err.Error() }
func (e *transient) Unwrap() error   { return e.err }
func (e *transient) Retryable() bool { return true }

// A server's refusal of the handshake, as crypto/tls reports it over TCP,
// is permanent: a client offering only TLS 1.3 to a server of TLS 1.2, and
// one without the certificate a server demands.
func TestRefusedHandshakeOverTCP(t *testing.T) {
	for name, c := range map[string]struct{ server, client *tls.Config }{
		"protocol version":     {&tls.Config{MaxVersion: tls.VersionTLS12}, &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}},
		"certificate required": {&tls.Config{ClientAuth: tls.RequireAnyClientCert}, &tls.Config{InsecureSkipVerify: true}},
	} {
		ts := httptest.NewUnstartedServer(http.NotFoundHandler())
		ts.TLS = c.server
		ts.Config.ErrorLog = log.New(io.Discard, "", 0)
		ts.StartTLS()
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: c.client}}
		resp, err := client.Get(ts.URL)
		if err == nil {
			// TLS 1.3 sends the certificate alert after the handshake:
			// it comes with the first read.
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		ts.Close()
		if err == nil || !Permanent(err) {
			t.Errorf("%s: %v is not permanent", name, err)
		}
	}
}
