package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// maxSize bounds what parseSize takes: 4 EiB.
const maxSize = math.MaxInt64 / 2

// parseSize reads sizes like "1048576", "500k", "2M", "1.5G" (binary units,
// as curl's --limit-rate does).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := 1.0
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:len(t)-1]
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	// NaN, infinities and sizes past 2^62 would not survive the conversion
	// to int64: refused, not wrapped around.
	if err != nil || !(f >= 0) || f*mult > maxSize {
		return 0, fmt.Errorf("invalid size %q (want e.g. 500k, 2M, 1G)", s)
	}
	return int64(f * mult), nil
}

// formatBytes renders n with binary units: "12.3 MiB".
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// secondsFlag is a duration flag that takes curl's plain seconds ("30",
// "2.5") as well as Go's durations ("1m30s").
type secondsFlag struct{ d *time.Duration }

// durationVar defines a secondsFlag.
func durationVar(fl *pflag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fl.Var(secondsFlag{p}, name, usage)
}

func (s secondsFlag) String() string { return s.d.String() }
func (s secondsFlag) Type() string   { return "seconds" }

func (s secondsFlag) Set(v string) error {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f < 0 || math.IsNaN(f) || f > math.MaxInt64/float64(time.Second) {
			return fmt.Errorf("want 0 or more seconds, not %s", v)
		}
		*s.d = time.Duration(f * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("want seconds (30, 2.5) or a duration (1m30s), not %q", v)
	}
	*s.d = d
	return nil
}
