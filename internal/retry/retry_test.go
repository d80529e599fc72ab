package retry

import (
	"context"
	"errors"
	"net/http"
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
