package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry"
)

// Exit codes of the CLI contract.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitIntegrity   = 3
	exitInterrupted = 130
)

// usageError marks a mistake in how ferry was invoked.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// argsExactly and argsAtLeast check a command's arguments, failing as usage
// errors with msg.
func argsExactly(n int, msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s", msg)
		}
		return nil
	}
}

func argsAtLeast(n int, msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("%s", msg)
		}
		return nil
	}
}

// run is the whole CLI: it parses args, runs the command and maps its error
// to an exit code in one place.
func run(ctx context.Context, args []string, in io.Reader, out, errw io.Writer) int {
	io := stdio{in: in, out: out, err: errw}
	root := &cobra.Command{
		Use:           "ferry",
		Short:         "Move big files over unreliable networks without losing a byte",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.Args = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usagef("unknown command %q", args[0])
		}
		return nil
	}
	root.Flags().BoolP("version", "V", false, "print the version and exit")
	root.RunE = func(c *cobra.Command, _ []string) error {
		if v, _ := c.Flags().GetBool("version"); v {
			fmt.Fprintln(io.out, versionLine())
			return nil
		}
		return c.Help()
	}
	root.SetArgs(args)
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errw)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(getCmd(io), putCmd(io), streamCmd(io), hlsCmd(io), serveCmd(io), demoCmd(io), versionCmd(io), daemonCmd(io), bgCmd(io), lsCmd(io), pauseCmd(io), resumeCmd(io), cancelCmd(io), waitCmd(io), eventsCmd(io))
	err := root.ExecuteContext(ctx)
	code := exitCode(ctx, err)
	if err != nil && !errors.Is(err, errReported) {
		fmt.Fprintf(errw, "ferry: %s\n", printable(strings.TrimPrefix(err.Error(), "ferry: ")))
		if h := hint(err); h != "" {
			fmt.Fprintf(errw, "ferry: hint: %s\n", printable(h))
		}
		if code == exitUsage {
			fmt.Fprintln(errw, "Run 'ferry --help' for usage.")
		}
	}
	return code
}

// errReported wraps an error the command already printed.
var errReported = errors.New("reported")

// exitCode maps an error to the documented exit codes.
func exitCode(ctx context.Context, err error) int {
	var ue usageError
	var ie *ferry.IntegrityError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, ferry.ErrUnsafeFile):
		// What ferry found where it would write is at fault, not the
		// command line, wherever the check caught it.
		return exitFailed
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ie):
		return exitIntegrity
	case ctx.Err() != nil:
		return exitInterrupted
	}
	return exitFailed
}

func versionCmd(io stdio) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the revision it was built from, and the Go version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(io.out, versionLine())
			return nil
		},
	}
}

// versionLine says what this binary is: the module version (a tag when
// installed with go install pkg@v1.2.3, "(devel)" from a checkout), the VCS
// revision and time go build stamped, and the Go version that built it.
func versionLine() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "ferry (devel) (no build information)"
	}
	return formatVersion(bi)
}

func formatVersion(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	line := "ferry " + v
	if len(rev) > 12 {
		rev = rev[:12]
	}
	// A pseudo-version (v0.0.0-TIME-REV[+dirty]) already names the revision.
	if rev != "" && !strings.Contains(v, rev) {
		if dirty {
			rev += "+dirty"
		}
		line += " " + rev
	}
	if at != "" {
		line += " " + at
	}
	return line + " " + bi.GoVersion
}
