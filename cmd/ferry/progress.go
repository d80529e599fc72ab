package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/ferryhq/ferry"
)

// progressPrinter draws progress on stderr: a redrawn bar with speed and ETA
// on a terminal, a plain line every few seconds otherwise, nothing when quiet.
type progressPrinter struct {
	w         io.Writer
	quiet     bool
	tty       bool
	width     int
	label     string
	now       func() time.Time
	lastPlain time.Time
	drawn     bool
	last      ferry.Progress // the latest progress shown or held back

	// A retry's wait: until a byte moves again, the line says what the
	// transfer waits for instead of repeating the same count.
	waiting   bool
	waitFrom  int64     // Done when the wait began
	waitHost  string    // the host that could not be reached, if that is why
	waitTry   int       // the attempt that failed
	waitUntil time.Time // when the next attempt starts
}

func newProgressPrinter(w io.Writer, quiet bool, label string) *progressPrinter {
	// The first plain line comes after a while: a quick transfer needs none.
	p := &progressPrinter{w: w, quiet: quiet, label: label, width: 80, now: time.Now, lastPlain: time.Now()}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 40 {
			p.width = cols
		}
	}
	return p
}

func (p *progressPrinter) update(pr ferry.Progress) {
	p.last = pr
	if p.quiet {
		return
	}
	if p.waiting && pr.Done == p.waitFrom {
		switch {
		case !p.tty:
			return // a plain line would only repeat the count
		case p.waitHost != "":
			p.drawWaiting() // the countdown
			return
		}
	} else {
		p.waiting = false
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", p.bar(pr))
		p.drawn = true
		return
	}
	if now := p.now(); now.Sub(p.lastPlain) >= 2*time.Second {
		p.lastPlain = now
		fmt.Fprintf(p.w, "%s: %s\n", p.label, stats(pr))
	}
}

// retry shows a failed attempt and holds the progress line back until a
// byte moves again. A host that could not be reached at all is waited
// for: "waiting for HOST (attempt N, next in D)", redrawn on a terminal.
func (p *progressPrinter) retry(e ferry.RetryEvent) {
	p.waiting, p.waitFrom, p.waitTry = true, p.last.Done, e.Attempt
	p.waitUntil = p.now().Add(e.Delay)
	p.waitHost = ""
	if e.Unreachable {
		p.waitHost = e.Host
		if p.waitHost == "" {
			p.waitHost = "the server"
		}
	}
	if p.quiet {
		return
	}
	if p.waitHost == "" {
		p.note("ferry: attempt %d failed (%v); retrying in %s", e.Attempt, e.Err, roundDelay(e.Delay))
		return
	}
	if p.tty {
		p.drawWaiting()
		return
	}
	p.lastPlain = p.now()
	fmt.Fprintf(p.w, "%s: %s\n", p.label, printable(p.waitLine()))
}

func (p *progressPrinter) drawWaiting() {
	fmt.Fprintf(p.w, "\r%s: %s\x1b[K", p.label, printable(p.waitLine()))
	p.drawn = true
}

func (p *progressPrinter) waitLine() string {
	left := max(0, p.waitUntil.Sub(p.now()))
	return fmt.Sprintf("waiting for %s (attempt %d, next in %s)", p.waitHost, p.waitTry, roundDelay(left))
}

// roundDelay rounds a wait to what a person reads: tenths of a second
// below ten seconds, whole seconds above.
func roundDelay(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// note prints a line (a retry, a restart) without breaking the bar. What
// it says may come from a server: it goes out printable.
func (p *progressPrinter) note(format string, a ...any) {
	if p.quiet {
		return
	}
	p.say(fmt.Sprintf(format, a...))
}

// say prints lines as note does, also when quiet: what was asked for on
// its own (-v), not progress.
func (p *progressPrinter) say(lines ...string) {
	for _, l := range lines {
		if p.drawn {
			fmt.Fprint(p.w, "\r\x1b[K")
		}
		fmt.Fprintln(p.w, printable(l))
	}
}

// printable escapes what would drive a terminal rather than show on it:
// control characters (an escape sequence could retitle the window, clear
// it or colour what follows) and the bidirectional overrides that make
// text read other than it is. Servers choose reason phrases, error texts
// and names, and ferry prints them on stderr.
func printable(s string) string {
	if !strings.ContainsFunc(s, unprintable) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case !unprintable(r):
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

func unprintable(r rune) bool {
	return r < 0x20 && r != '\t' || 0x7f <= r && r < 0xa0 || 0x202a <= r && r <= 0x202e || 0x2066 <= r && r <= 0x2069
}

func (p *progressPrinter) finish(pr ferry.Progress) {
	if p.quiet {
		return
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K\n", p.bar(pr))
		return
	}
	fmt.Fprintf(p.w, "%s: %s\n", p.label, stats(pr))
}

func stats(pr ferry.Progress) string {
	var b strings.Builder
	b.WriteString(formatBytes(pr.Done))
	if pr.Expected >= 0 {
		fmt.Fprintf(&b, " / %s (%.0f%%)", formatBytes(pr.Expected), 100*pr.Fraction())
	}
	fmt.Fprintf(&b, "  %s/s", formatBytes(int64(pr.Speed)))
	if eta, ok := pr.ETA(); ok && pr.Done < pr.Expected {
		fmt.Fprintf(&b, "  ETA %s", eta.Round(time.Second))
	}
	return b.String()
}

func (p *progressPrinter) bar(pr ferry.Progress) string {
	s := stats(pr)
	n := p.width - len(s) - 4
	if n < 10 || pr.Expected < 0 {
		return s
	}
	n = min(n, 40)
	full := int(pr.Fraction() * float64(n))
	return "[" + strings.Repeat("=", full) + strings.Repeat(" ", n-full) + "] " + s
}
