// Command attack runs ferry's hostile-input suite and counts what went
// wrong. It builds the ferry binary, starts it as a server and as a client
// against hostile peers on loopback, tries each attack class with inputs
// drawn from a seeded generator, and prints one row per class:
//
//	go run ./attack [-seed N] [-scale F] [-classes paths,state,...] [-out docs/RELIABILITY.md]
//
// The columns, whose goal is 0 everywhere:
//
//   - crashes: a ferry process that panicked (a handler's panic included) or
//     died of a signal it was not sent;
//   - escapes: a byte served or written where ferry must not put it: a file
//     outside the served root, upload state without the token, a file
//     reached through a link someone planted, a credential sent to another
//     origin;
//   - losses: a command that reported success with a result whose digest is
//     wrong, or a server that acknowledged bytes it does not hold;
//   - wrong: an answer of the wrong kind: a hostile input accepted that must
//     be refused, a server error (5xx) for a client's mistake, an exit
//     status other than the documented one, a limit that did not hold.
//
// -scale multiplies the number of inputs of every class (1 is what
// docs/RELIABILITY.md reports). With -out, the table replaces the part of
// that file between its "attack:begin" and "attack:end" markers.
//
// Everything runs on loopback, in temporary directories, with timeouts on
// every step. Two checks need more than a user has: the diskfull class
// mounts a small tmpfs in a private mount namespace (root, or unprivileged
// user namespaces), and the daemon class reaches the daemon's socket as
// another user only when run as root.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ferryhq/ferry/internal/peer"
)

// A class is one kind of attack.
type class struct {
	name string
	what string // one line for the report
	run  func(ctx context.Context, e *env, r *result) error
}

// classes is every class, in the order the report lists them.
var classes = []class{}

// register adds a class; each attack file registers its own in init.
func register(c class) { classes = append(classes, c) }

// env is what every class gets: the ferry binary, a scratch directory of
// its own, the seeded generator and the scale.
type env struct {
	bin   string
	dir   string
	rng   *rand.Rand
	scale float64
}

// n scales a class's base count of inputs, never below 1.
func (e *env) n(base int) int { return max(1, int(float64(base)*e.scale)) }

// mkdir makes a fresh directory under the class's scratch directory.
func (e *env) mkdir(name string) string {
	d, err := os.MkdirTemp(e.dir, name+"-")
	if err != nil {
		panic(err)
	}
	return d
}

// result is what one class found.
type result struct {
	class                           string
	what                            string
	inputs                          int
	crashes, escapes, losses, wrong int
	examples                        []string
	err                             error
	took                            time.Duration
}

// maxExamples bounds the failures kept per class for the report.
const maxExamples = 5

func (r *result) note(kind *int, format string, a ...any) {
	*kind++
	if len(r.examples) < maxExamples {
		r.examples = append(r.examples, fmt.Sprintf(format, a...))
	}
}

func (r *result) crash(format string, a ...any)  { r.note(&r.crashes, "crash: "+format, a...) }
func (r *result) escape(format string, a ...any) { r.note(&r.escapes, "escape: "+format, a...) }
func (r *result) loss(format string, a ...any)   { r.note(&r.losses, "loss: "+format, a...) }
func (r *result) bad(format string, a ...any)    { r.note(&r.wrong, "wrong: "+format, a...) }

func main() {
	seed := flag.Uint64("seed", 1, "seed of the input generator")
	scale := flag.Float64("scale", 1, "multiply every class's number of inputs by `F`")
	only := flag.String("classes", "", "run only these comma-separated `classes` (default: all)")
	out := flag.String("out", "", "write the table into `FILE` between its attack:begin and attack:end markers")
	keep := flag.Bool("keep", false, "keep the scratch directory")
	bin := flag.String("bin", "", "attack this ferry `BINARY` instead of one built from this checkout (an older build, to compare)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runAll(ctx, *bin, *seed, *scale, *only, *out, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "attack:", err)
		os.Exit(1)
	}
}

func runAll(ctx context.Context, bin string, seed uint64, scale float64, only, out string, keep bool) error {
	var pick []string
	if only != "" {
		pick = strings.Split(only, ",")
		for _, name := range pick {
			if !slices.ContainsFunc(classes, func(c class) bool { return c.name == name }) {
				return fmt.Errorf("no class %q (have %s)", name, classNames())
			}
		}
	}
	scratch, err := os.MkdirTemp("", "ferry-attack-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Fprintln(os.Stderr, "scratch directory:", scratch)
	} else {
		defer os.RemoveAll(scratch)
	}
	if bin == "" {
		fmt.Fprintln(os.Stderr, "building ferry")
		if bin, err = peer.BuildFerry(ctx, filepath.Join(scratch, "bin")); err != nil {
			return err
		}
	} else if bin, err = filepath.Abs(bin); err != nil {
		return err
	}

	var results []*result
	for i, c := range classes {
		if pick != nil && !slices.Contains(pick, c.name) {
			continue
		}
		dir := filepath.Join(scratch, c.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		e := &env{bin: bin, dir: dir, rng: rand.New(rand.NewPCG(seed, uint64(i))), scale: scale}
		r := &result{class: c.name, what: c.what}
		fmt.Fprintf(os.Stderr, "%-12s ", c.name)
		start := time.Now()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		r.err = c.run(cctx, e, r)
		cancel()
		r.took = time.Since(start)
		fmt.Fprintf(os.Stderr, "%6d inputs  %d crashes  %d escapes  %d losses  %d wrong  %.1fs\n",
			r.inputs, r.crashes, r.escapes, r.losses, r.wrong, r.took.Seconds())
		for _, ex := range r.examples {
			fmt.Fprintln(os.Stderr, "             ", ex)
		}
		if r.err != nil {
			fmt.Fprintln(os.Stderr, "              did not finish:", r.err)
		}
		results = append(results, r)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	table := report(results, seed, scale)
	fmt.Print(table)
	if out != "" {
		if err := splice(out, table); err != nil {
			return err
		}
	}
	for _, r := range results {
		if r.err != nil || r.crashes+r.escapes+r.losses+r.wrong > 0 {
			return fmt.Errorf("not every class is clean (see above)")
		}
	}
	return nil
}

func classNames() string {
	var names []string
	for _, c := range classes {
		names = append(names, c.name)
	}
	return strings.Join(names, ",")
}

// report is the Markdown table of results.
func report(results []*result, seed uint64, scale float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "`go run ./attack -seed %d -scale %g`, %s:\n\n", seed, scale, time.Now().UTC().Format("2006-01-02"))
	b.WriteString("| class | what is tried | inputs | crashes | escapes | losses | wrong |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|\n")
	var sum result
	for _, r := range results {
		what := r.what
		if r.err != nil {
			what += " (did not finish: " + r.err.Error() + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %d |\n", r.class, what, r.inputs, r.crashes, r.escapes, r.losses, r.wrong)
		sum.inputs += r.inputs
		sum.crashes += r.crashes
		sum.escapes += r.escapes
		sum.losses += r.losses
		sum.wrong += r.wrong
	}
	fmt.Fprintf(&b, "| **all** | | **%d** | **%d** | **%d** | **%d** | **%d** |\n", sum.inputs, sum.crashes, sum.escapes, sum.losses, sum.wrong)
	return b.String()
}

const beginMarker, endMarker = "<!-- attack:begin -->", "<!-- attack:end -->"

// splice replaces what lies between the markers in file with table.
func splice(file, table string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	s := string(data)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i < 0 || j < i {
		return fmt.Errorf("%s: no %s ... %s markers", file, beginMarker, endMarker)
	}
	s = s[:i+len(beginMarker)] + "\n" + table + s[j:]
	return os.WriteFile(file, []byte(s), 0o644)
}
