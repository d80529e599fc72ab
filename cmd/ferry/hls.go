package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/hls"
)

type hlsFlags struct {
	transferFlags
	req hlsRequest
}

// hlsRequest are the flags of an HLS download's request, of hls and bg hls.
type hlsRequest struct {
	dir          string
	variant      string
	maxBandwidth string
	concat       string
	liveDuration time.Duration
	allowHoles   bool
	maxSegments  int
}

func (h *hlsRequest) register(fl *pflag.FlagSet) {
	fl.StringVarP(&h.dir, "output", "o", "", "write into `DIR` (required)")
	fl.StringVar(&h.variant, "variant", "best", "`best`, worst, or a variant's 0-based index")
	fl.StringVar(&h.maxBandwidth, "max-bandwidth", "", "leave out variants above `BPS` bits per second, e.g. 3M")
	fl.StringVar(&h.concat, "concat", "", "also join the segments into `FILE`")
	fl.DurationVar(&h.liveDuration, "live-duration", 0, "stop recording a live stream after `D`, e.g. 10m (0: until it ends)")
	fl.BoolVar(&h.allowHoles, "allow-holes", false, "succeed without segments that cannot be fetched (left out of the playlist)")
	fl.IntVar(&h.maxSegments, "max-segments", hls.DefaultMaxSegments, "refuse a playlist of more than `N` segments; a live recording ends there (about 1.5 KiB of memory each; -1: no limit)")
}

// build is the request for rawURL with the request flags rf; cmd names the
// command in its errors.
func (h *hlsRequest) build(cmd, rawURL string, rf *requestFlags) (ferry.HLSRequest, error) {
	if err := checkURL(rawURL); err != nil {
		return ferry.HLSRequest{}, err
	}
	if h.dir == "" {
		return ferry.HLSRequest{}, usagef("%s needs -o DIR", cmd)
	}
	if err := rf.check(); err != nil {
		return ferry.HLSRequest{}, err
	}
	if h.liveDuration < 0 {
		return ferry.HLSRequest{}, usagef("--live-duration must not be negative")
	}
	if h.maxSegments == 0 || h.maxSegments < -1 {
		return ferry.HLSRequest{}, usagef("--max-segments: want a positive count, or -1 for no limit")
	}
	req := ferry.HLSRequest{
		URL: rawURL, Dir: h.dir, Variant: h.variant, Connections: rf.connections,
		LiveDuration: h.liveDuration, AllowHoles: h.allowHoles, Concat: h.concat, MaxSegments: h.maxSegments,
	}
	var err error
	if req.Header, err = rf.header(); err != nil {
		return req, err
	}
	if h.maxBandwidth != "" {
		n, err := parseBitRate(h.maxBandwidth)
		if err != nil || n <= 0 {
			return req, usagef("--max-bandwidth: invalid rate %q", h.maxBandwidth)
		}
		req.MaxBandwidth = n
	}
	return req, nil
}

func hlsCmd(io stdio) *cobra.Command {
	var f hlsFlags
	c := &cobra.Command{
		Use:   "hls URL -o DIR",
		Short: "Download an HLS stream into a directory that plays offline",
		Long: `Download the HLS stream at URL (a multivariant or media playlist) into DIR:
its segments, fetched in parallel and each retried, and DIR/index.m3u8, a
playlist naming the local files, which plays offline. AES-128 segments are
stored decrypted; byte ranges of one file are fetched together and stored
as separate segments.

From a multivariant playlist, --variant picks the variant: best (highest
bandwidth, the default), worst, or its 0-based index; its audio, video and
subtitle renditions come with it. A live playlist is recorded from three
segments before its end until it ends, for --live-duration, or until Ctrl-C,
which ends the recording with what it has (a second Ctrl-C interrupts).

A playlist of more than --max-segments segments is refused, and a live
recording that reaches that many ends there: a hostile playlist cannot take
unbounded memory.

A segment that still fails after its retries makes the command fail, and
nothing names it: run the same command again to fetch what is missing, or
pass --allow-holes to keep the playlist without it. --concat FILE also joins
the segments into one file (TS, or fMP4 after its initialization section).`,
		Args: argsExactly(1, "hls takes one URL"),
		RunE: func(c *cobra.Command, args []string) error { return runHLS(c, io, args[0], &f) },
	}
	fl := c.Flags()
	fl.SortFlags = false
	f.req.register(fl)
	f.register(fl, "download", hlsConnectionsUsage, 8)
	return c
}

func runHLS(c *cobra.Command, io stdio, rawURL string, f *hlsFlags) error {
	cfg, err := f.config(rawURL)
	if err != nil {
		return err
	}
	req, err := f.req.build("hls", rawURL, &f.requestFlags)
	if err != nil {
		return err
	}
	s, err := ferry.NewSession(cfg)
	if err != nil {
		return err
	}
	// The first Ctrl-C ends a live recording with what it has; a download
	// that is not live, or a second Ctrl-C, is interrupted.
	ctx := c.Context()
	taskCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stopLive := make(chan struct{})
	req.StopLive = stopLive
	task, err := s.HLS(taskCtx, req)
	if err != nil {
		return requestError(err)
	}
	var live, stopped atomic.Bool
	go func() {
		select {
		case <-ctx.Done():
		case <-task.Done():
			return
		}
		if !live.Load() {
			cancel()
			return
		}
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sigs)
		stopped.Store(true)
		close(stopLive)
		if !f.quiet {
			fmt.Fprintln(io.err, "ferry: ending the recording with what it has (Ctrl-C again to interrupt)")
		}
		select {
		case <-sigs:
			stopped.Store(false) // interrupted after all
			cancel()
		case <-task.Done():
		}
	}()
	err = followHLS(ctx, io, task, &live, &stopped, f.reportTo(rawURL, filepath.Join(f.req.dir, "index.m3u8"), false))
	return f.keepCookies(io, err)
}

// parseBitRate reads a rate in bits per second with decimal multiples, as
// HLS's BANDWIDTH counts: 800k, 3M, 1.5M.
func parseBitRate(s string) (int64, error) {
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mult, s = 1e3, s[:len(s)-1]
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult, s = 1e6, s[:len(s)-1]
	case strings.HasSuffix(s, "G"), strings.HasSuffix(s, "g"):
		mult, s = 1e9, s[:len(s)-1]
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) || v*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("invalid bit rate %q", s)
	}
	return int64(v * mult), nil
}

// followHLS shows a download's progress by segments and bytes, then reports.
// live is set once the download turns out to be a live recording, stopped
// once a Ctrl-C ended it gracefully (its end is not an interruption).
func followHLS(ctx context.Context, io stdio, task *ferry.Task, live, stopped *atomic.Bool, o output) error {
	pp := newProgressPrinter(io.err, o.quiet, "segments")
	for ev := range task.Events() {
		switch e := ev.(type) {
		case ferry.SegmentEvent:
			live.Store(e.Total < 0)
			if e.Total >= 0 {
				pp.label = fmt.Sprintf("segments %d/%d", e.Done, e.Total)
			} else {
				pp.label = fmt.Sprintf("segments %d (live)", e.Done)
			}
			if e.Hole {
				pp.note("ferry: segment %d of %s is missing", e.Seq, e.Playlist)
			}
			pp.update(task.Progress())
		case ferry.ProgressEvent:
			pp.update(e.Progress)
		case ferry.RetryEvent:
			pp.retry(e)
		}
	}
	if stopped.Load() {
		ctx = context.WithoutCancel(ctx)
	}
	return finish(ctx, io, pp, task, o)
}
