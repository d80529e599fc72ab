package main

// The stream measurement: how long a frame written to a live
// stream (Session.Stream) takes to reach the server's processor
// (server/stream), on loopback, the way a recorder feeds it.

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/server/stream"
)

const (
	// frameBytes is 20 ms of 16 kHz mono 16-bit audio.
	frameBytes = 640
	frameEvery = 20 * time.Millisecond
	// latencyGoal is the p99 the project aims at on loopback.
	latencyGoal = 5 * time.Millisecond

	streamSectionStart = "<!-- stream-latency -->"
	streamSectionEnd   = "<!-- /stream-latency -->"
)

// processStart is the clock the producer and the processor share: both run
// in this process, so time.Since(processStart) is a monotonic offset both
// sides read alike.
var processStart = time.Now()

func sinceStart() time.Duration { return time.Since(processStart) }

type streamVariant struct {
	Name      string
	HTTP2     bool // h2c with prior knowledge
	Resumable bool
}

var streamVariants = []streamVariant{
	{"HTTP/1.1 plain", false, false},
	{"HTTP/1.1 resumable", false, true},
	{"HTTP/2 (h2c) plain", true, false},
	{"HTTP/2 (h2c) resumable", true, true},
}

// latencyResult is one variant's figures.
type latencyResult struct {
	Variant            streamVariant
	Sent, Frames       int // written by the producer, completed at the processor
	P50, P90, P99, Max time.Duration
	Proto              string
	GCs                uint32 // GC cycles during the variant, both sides together
}

func (r latencyResult) Status() string {
	if r.P99 <= latencyGoal {
		return "met"
	}
	return "MISSED"
}

// framesProcessor reads the stream in frames and, as each one completes,
// records now minus the send time in its first 8 bytes. Bytes 8-15 carry
// the frame's number, so a lost or reordered frame is an error, not a
// figure. It reports once, on done, when the stream ends.
type frameReport struct {
	lat []time.Duration
	err error
}

func framesProcessor(expect int, done chan<- frameReport) stream.Processor {
	return stream.ProcessorFunc(func(ctx context.Context, r io.Reader, emit func(any)) error {
		// Allocated up front: growing it mid-run would put allocation
		// (and GC) on the path being measured.
		lat := make([]time.Duration, 0, expect+16)
		frame := make([]byte, frameBytes)
		var err error
		for {
			if _, err = io.ReadFull(r, frame); err != nil {
				break
			}
			now := sinceStart()
			if n := binary.LittleEndian.Uint64(frame[8:]); n != uint64(len(lat)) {
				err = fmt.Errorf("frame %d arrived as number %d", n, len(lat))
				break
			}
			lat = append(lat, now-time.Duration(binary.LittleEndian.Uint64(frame)))
		}
		if errors.Is(err, io.EOF) {
			err = nil
		}
		select {
		case done <- frameReport{lat, err}:
		default:
		}
		return err
	})
}

// measureStream streams frames for d over one variant and returns their
// latencies. dir holds the server's files and the session's state.
func measureStream(ctx context.Context, v streamVariant, d time.Duration, dir string) (latencyResult, error) {
	res := latencyResult{Variant: v}
	n := max(1, int(d/frameEvery))
	done := make(chan frameReport, 1)
	h, err := stream.New(stream.Config{
		Dir:        filepath.Join(dir, "server"),
		Processors: func(string, *http.Request) stream.Processor { return framesProcessor(n, done) },
	})
	if err != nil {
		return res, err
	}
	defer h.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	srv := &http.Server{Handler: h, Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go srv.Serve(ln)
	defer srv.Close()

	cfg := ferry.EphemeralConfig()
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.HTTP2PriorKnowledge = v.HTTP2
	sess, err := ferry.NewSession(cfg)
	if err != nil {
		return res, err
	}
	defer sess.Close()

	ctx, cancel := context.WithTimeout(ctx, d+time.Minute)
	defer cancel()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gcBefore := ms.NumGC

	task, err := sess.Stream(ctx, ferry.StreamRequest{
		URL:         "http://" + ln.Addr().String() + "/stream/frames.pcm",
		ContentType: "audio/L16;rate=16000;channels=1",
		Resumable:   v.Resumable,
		OnReply:     func(ferry.ReplyEvent) {}, // the replies are not measured
	})
	if err != nil {
		return res, err
	}
	frame := make([]byte, frameBytes)
	tick := time.NewTicker(frameEvery)
	defer tick.Stop()
	for i := range n {
		if i > 0 {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return res, ctx.Err()
			}
		}
		binary.LittleEndian.PutUint64(frame[8:], uint64(i))
		binary.LittleEndian.PutUint64(frame, uint64(sinceStart()))
		if _, err := task.Write(frame); err != nil {
			return res, fmt.Errorf("%s: write frame %d: %w", v.Name, i, err)
		}
		res.Sent++
	}
	task.Close()
	r, err := task.Wait(ctx)
	if err != nil {
		return res, fmt.Errorf("%s: %w", v.Name, err)
	}
	res.Proto = r.Proto
	var rep frameReport
	select {
	case rep = <-done:
	case <-ctx.Done():
		return res, fmt.Errorf("%s: the processor did not finish: %w", v.Name, ctx.Err())
	}
	runtime.ReadMemStats(&ms)
	res.GCs = ms.NumGC - gcBefore
	if rep.err != nil {
		return res, fmt.Errorf("%s: processor: %w", v.Name, rep.err)
	}
	res.Frames = len(rep.lat)
	if res.Frames != res.Sent {
		return res, fmt.Errorf("%s: %d frames sent, %d processed", v.Name, res.Sent, res.Frames)
	}
	s := slices.Clone(rep.lat)
	slices.Sort(s)
	res.P50, res.P90, res.P99 = percentile(s, 50), percentile(s, 90), percentile(s, 99)
	res.Max = s[len(s)-1]
	return res, nil
}

// percentile is the nearest-rank p-th percentile of sorted s.
func percentile(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(s))/100)) - 1 // p*n first: exact for whole p and n
	return s[min(max(i, 0), len(s)-1)]
}

// measureStreams runs every variant in turn, each alone on the machine.
func measureStreams(ctx context.Context, d time.Duration, dir string) ([]latencyResult, error) {
	var out []latencyResult
	for i, v := range streamVariants {
		logf("stream latency: %s, %v", v.Name, d)
		r, err := measureStream(ctx, v, d, filepath.Join(dir, fmt.Sprint(i)))
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// streamReport is one stream run.
type streamReport struct {
	Command  string
	Started  time.Time
	Duration time.Duration // per variant
	Machine  string
	Results  []latencyResult
}

func ms3(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/1e6) }

func (r *streamReport) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "producer-to-processor latency, %v per variant, goal p99 ≤ %v; %s\n", r.Duration, latencyGoal, r.Machine)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "variant\tframes\tp50 ms\tp90 ms\tp99 ms\tmax ms\tGC cycles\tp99 goal\t")
	for _, x := range r.Results {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t\n", x.Variant.Name, x.Frames,
			ms3(x.P50), ms3(x.P90), ms3(x.P99), ms3(x.Max), x.GCs, x.Status())
	}
	tw.Flush()
	return b.String()
}

// Section is the stream-latency section of docs/BENCHMARKS.md, delimiters
// included.
func (r *streamReport) Section() string {
	var b strings.Builder
	b.WriteString(streamSectionStart + "\n")
	b.WriteString("## Live stream latency\n\n")
	fmt.Fprintf(&b, "Producer-to-processor latency of a live streamed upload on loopback; goal: p99 ≤ %v.\n\n", latencyGoal)
	fmt.Fprintf(&b, "| variant | frames | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | GC cycles | p99 ≤ %v |\n", latencyGoal)
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, x := range r.Results {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %d | %s |\n", x.Variant.Name, x.Frames,
			ms3(x.P50), ms3(x.P90), ms3(x.P99), ms3(x.Max), x.GCs, x.Status())
	}
	fmt.Fprintf(&b, "\nProduced by:\n\n```\n%s\n```\n\n", r.Command)
	fmt.Fprintf(&b, "on %s; %s.\n\n", r.Started.Format("2006-01-02 15:04 UTC"), mdEscape(r.Machine))
	b.WriteString("Method: for each variant, one process runs a `server/stream` handler (default `Config`:\n")
	b.WriteString("files under the system temporary directory, a \"stored\" reply and an fsync every second)\n")
	b.WriteString("on a 127.0.0.1 listener speaking HTTP/1.1 and h2c, and a ferry session (`EphemeralConfig`,\n")
	b.WriteString("`HTTP2PriorKnowledge` for HTTP/2) that streams to it with `Session.Stream` (`Resumable` for\n")
	fmt.Fprintf(&b, "the resumable variants). The producer writes one %d-byte frame (20 ms of 16 kHz mono 16-bit\n", frameBytes)
	fmt.Fprintf(&b, "audio) per tick of a %v ticker, one Write per frame, for %v; just before each Write it\n", frameEvery, r.Duration)
	b.WriteString("stamps the frame's first 8 bytes with the monotonic time since process start. The processor\n")
	b.WriteString("reads the stream in frames and, when a frame's last byte arrives, records the time since\n")
	b.WriteString("process start minus the stamp. Every frame counts, the first included (its latency includes\n")
	b.WriteString("dialling the connection and sending the request). Percentiles are nearest-rank; GC cycles\n")
	b.WriteString("are the process's during the variant.\n")
	b.WriteString(streamSectionEnd + "\n")
	return b.String()
}

// streamMachine is the machine summary for the section, from the figures
// the harness reports about the machine.
func streamMachine(ctx context.Context) string {
	var parts []string
	for _, kv := range machineInfo(ctx, nil) {
		switch kv.Key {
		case "nproc", "CPU", "Go", "ferry commit":
			parts = append(parts, kv.Key+" "+kv.Value)
		}
	}
	parts = append(parts, fmt.Sprintf("GOMAXPROCS %d", runtime.GOMAXPROCS(0)))
	return strings.Join(parts, ", ")
}

// runStreamLatency is go run ./bench stream: it measures every
// variant, prints the table and, unless out is "", writes the section into
// the markdown report at out.
// streamFlags is the stream mode.
func streamFlags(fs *flag.FlagSet, c *common) func(context.Context) error {
	d := fs.Duration("duration", 20*time.Second, "how long to stream per variant")
	return func(ctx context.Context) error { return runStreamLatency(ctx, *d, c.out) }
}

func runStreamLatency(ctx context.Context, d time.Duration, out string) error {
	if d < frameEvery {
		return fmt.Errorf("-duration must be at least %v", frameEvery)
	}
	tmp, err := os.MkdirTemp("", "ferry-streamlat-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	rep := &streamReport{Command: commandLine(), Started: time.Now().UTC(), Duration: d}
	if rep.Results, err = measureStreams(ctx, d, tmp); err != nil {
		return err
	}
	rep.Machine = streamMachine(ctx)
	fmt.Println()
	fmt.Print(rep.Text())
	return writeSection(out, streamDocSection, rep.Section())
}
