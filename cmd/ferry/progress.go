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
	lastPlain time.Time
	drawn     bool
}

func newProgressPrinter(w io.Writer, quiet bool, label string) *progressPrinter {
	// The first plain line comes after a while: a quick transfer needs none.
	p := &progressPrinter{w: w, quiet: quiet, label: label, width: 80, lastPlain: time.Now()}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 40 {
			p.width = cols
		}
	}
	return p
}

func (p *progressPrinter) update(pr ferry.Progress) {
	if p.quiet {
		return
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", p.bar(pr))
		p.drawn = true
		return
	}
	if now := time.Now(); now.Sub(p.lastPlain) >= 2*time.Second {
		p.lastPlain = now
		fmt.Fprintf(p.w, "%s: %s\n", p.label, stats(pr))
	}
}

// note prints a line (a retry, a restart) without breaking the bar.
func (p *progressPrinter) note(format string, a ...any) {
	if p.quiet {
		return
	}
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	fmt.Fprintf(p.w, format+"\n", a...)
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
