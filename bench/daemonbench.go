package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferryhq/ferry/internal/bgapi"
)

// The daemon benchmark: go run ./bench daemon [-tasks 10000].
// It queues that many small downloads in a real `ferry daemon`, held back
// an hour so they stay queued, and reports the daemon's peak RSS, then
// kills it with SIGKILL and reports how long a new daemon takes to answer
// with every task recovered, and its RSS. Goals: recovery at most 2 s,
// RSS at most 200 MiB.
const (
	daemonSectionStart = "<!-- daemon -->"
	daemonSectionEnd   = "<!-- /daemon -->"
)

var daemonDocSection = docSection{daemonSectionStart, daemonSectionEnd}

type daemonReport struct {
	Command           string
	Tasks             int
	Queue             time.Duration // creating every task through the API
	RSS, RecoveredRSS int64         // bytes, peak
	Recovery          time.Duration // start of the process to an answer listing them all
	Ready             time.Duration // start of the process to its first answer
	JournalBytes      int64
	Started           time.Time
	Machine           string
}

// daemonFlags is the daemon mode.
func daemonFlags(fs *flag.FlagSet, c *common) func(context.Context) error {
	tasks := fs.Int("tasks", 10000, "tasks to queue")
	return func(ctx context.Context) error { return runDaemonBench(ctx, *tasks, c) }
}

func runDaemonBench(ctx context.Context, tasks int, opt *common) error {
	if tasks < 1 {
		return errors.New("-tasks must be at least 1")
	}
	tmp, err := opt.scratch(ctx, "daemon")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	ferryBin, out := opt.ferryBin, opt.out
	state, socket, outDir := filepath.Join(tmp, "state"), filepath.Join(tmp, "d.sock"), filepath.Join(tmp, "out")
	// The daemon refuses a download into a directory that is not there.
	if err := os.Mkdir(outDir, 0o755); err != nil {
		return err
	}
	rep := &daemonReport{Command: commandLine(), Tasks: tasks, Started: time.Now().UTC()}

	d, ready, err := startBenchDaemon(ctx, ferryBin, state, socket)
	if err != nil {
		return err
	}
	rep.Ready = ready
	c := bgapi.NewClient(socket)
	defer c.Close()
	later := time.Now().Add(time.Hour) // queued, not run
	start := time.Now()
	for i := range tasks {
		_, err := c.Create(ctx, fmt.Sprintf("s%d", i%10), bgapi.NewTask{NotBefore: later,
			Get: &bgapi.GetRequest{URL: fmt.Sprintf("http://127.0.0.1:9/f%d", i), Path: filepath.Join(outDir, strconv.Itoa(i))}})
		if err != nil {
			d.Process.Kill()
			return fmt.Errorf("task %d: %w", i, err)
		}
	}
	rep.Queue = time.Since(start)
	rep.RSS = peakRSS(d.Process.Pid)
	logf("%d tasks queued in %v; daemon peak RSS %s", tasks, rep.Queue.Round(time.Millisecond), formatSize(rep.RSS))
	d.Process.Signal(syscall.SIGKILL)
	d.Wait()

	begin := time.Now()
	d, ready, err = startBenchDaemon(ctx, ferryBin, state, socket)
	if err != nil {
		return err
	}
	defer func() { d.Process.Signal(syscall.SIGTERM); d.Wait() }()
	h, err := c.Health(ctx)
	if err != nil {
		return err
	}
	rep.Recovery = time.Since(begin)
	if h.Tasks != tasks {
		return fmt.Errorf("the restarted daemon has %d tasks, want %d", h.Tasks, tasks)
	}
	rep.RecoveredRSS = peakRSS(d.Process.Pid)
	if fi, err := os.Stat(filepath.Join(state, "ferry.db")); err == nil {
		rep.JournalBytes = fi.Size()
	}
	rep.Machine = fmt.Sprintf("%s, %s, %d CPUs", cpuModel(), memTotal(), runtime.NumCPU())
	logf("restart after kill -9: answering with %d tasks after %v (first answer %v); peak RSS %s",
		h.Tasks, rep.Recovery.Round(time.Millisecond), ready.Round(time.Millisecond), formatSize(rep.RecoveredRSS))
	fmt.Print(rep.text())
	return writeSection(out, daemonDocSection, rep.section(), hlsDocSection, putDocSection, streamDocSection)
}

// startBenchDaemon starts `ferry daemon` and waits for its first answer.
func startBenchDaemon(ctx context.Context, bin, state, socket string) (*exec.Cmd, time.Duration, error) {
	cmd := exec.CommandContext(ctx, bin, "daemon", "--state", state, "--socket", socket, "-q", "--max-tasks", "4")
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	c := bgapi.NewClient(socket)
	defer c.Close()
	if err := c.WaitReady(ctx, 30*time.Second); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, 0, err
	}
	return cmd, time.Since(start), nil
}

// peakRSS is a process's VmHWM.
func peakRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func (r *daemonReport) verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func (r *daemonReport) text() string {
	return fmt.Sprintf("daemon with %d queued tasks: queued in %.2f s; peak RSS %s (goal 200 MiB: %s); "+
		"recovery after kill -9 %.3f s (goal 2 s: %s), peak RSS after %s; journal %s\n",
		r.Tasks, r.Queue.Seconds(), formatSize(r.RSS), r.verdict(r.RSS <= 200<<20),
		r.Recovery.Seconds(), r.verdict(r.Recovery <= 2*time.Second), formatSize(r.RecoveredRSS), formatSize(r.JournalBytes))
}

func (r *daemonReport) section() string {
	var b strings.Builder
	b.WriteString(daemonSectionStart + "\n## The background daemon with 10,000 queued tasks\n\n")
	fmt.Fprintf(&b, "A real `ferry daemon` is given %d small downloads through its API (held back an hour by\n", r.Tasks)
	b.WriteString("`not_before`, so they stay queued), then killed with SIGKILL and started again on the same\n")
	b.WriteString("state. *Recovery* is from the new process's start to its answer listing every task.\n\n")
	b.WriteString("| figure | value | goal | |\n| --- | ---: | ---: | --- |\n")
	fmt.Fprintf(&b, "| peak RSS with %d tasks queued | %s | 200 MiB | %s |\n", r.Tasks, formatSize(r.RSS), r.verdict(r.RSS <= 200<<20))
	fmt.Fprintf(&b, "| recovery after kill -9 | %.3f s | 2 s | %s |\n", r.Recovery.Seconds(), r.verdict(r.Recovery <= 2*time.Second))
	fmt.Fprintf(&b, "| peak RSS after recovery | %s | 200 MiB | %s |\n", formatSize(r.RecoveredRSS), r.verdict(r.RecoveredRSS <= 200<<20))
	fmt.Fprintf(&b, "| queueing %d tasks, one API call each (each a synced transaction) | %.2f s | | |\n", r.Tasks, r.Queue.Seconds())
	fmt.Fprintf(&b, "| journal file | %s | | |\n", formatSize(r.JournalBytes))
	fmt.Fprintf(&b, "\nProduced by `%s` on %s; %s.\n", r.Command, r.Started.Format("2006-01-02 15:04 UTC"), r.Machine)
	b.WriteString(daemonSectionEnd + "\n")
	return b.String()
}
