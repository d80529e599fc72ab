package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/server"
)

const demoSize = 48 << 20 // big enough to watch, small enough to be quick

// runDemo is the README's first command: an origin on loopback over
// generated content, a download that loses its connection and is then
// interrupted, a second "process" that resumes it from resume data, and a
// parallel resumable upload of the result back to the origin.
func runDemo(ctx context.Context, io stdio) error {
	dir, err := os.MkdirTemp("", "ferry-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	origin := filepath.Join(dir, "origin")
	if err := os.Mkdir(origin, 0o755); err != nil {
		return err
	}
	sum, err := writeDemoFile(filepath.Join(origin, "video.bin"), demoSize)
	if err != nil {
		return err
	}

	uploads := filepath.Join(dir, "uploads")
	if err := os.Mkdir(uploads, 0o755); err != nil {
		return err
	}
	srv, err := server.New(server.Config{Root: origin, Uploads: uploads})
	if err != nil {
		return err
	}
	defer srv.Close()
	sctx, stopServer := context.WithCancel(ctx)
	ready := make(chan string, 1)
	served := make(chan error, 1)
	go func() {
		served <- server.Serve(sctx, server.Options{
			Addr:    "127.0.0.1:0",
			Handler: cutFirstResponse(srv, 512<<10),
			Ready:   func(u string) { ready <- u },
		})
	}()
	defer func() { stopServer(); <-served }()
	var base string
	select {
	case base = <-ready:
	case err := <-served:
		return err
	}
	url := base + "/video.bin"
	dest := filepath.Join(dir, "video.bin")
	say := func(format string, a ...any) { fmt.Fprintf(io.out, format+"\n", a...) }

	say("ferry demo: everything runs on loopback and is deleted at the end.\n")
	say("1. An origin (ferry serve) is up at %s", base)
	say("   serving video.bin: %s, sha-256 %s…", formatBytes(demoSize), sum[:16])
	say("   It cuts its first response after 512 KiB, like a flaky network.\n")

	say("2. Session A downloads it (rate-limited to 24 MiB/s so you can watch):")
	cfgA := ferry.EphemeralConfig()
	cfgA.RateLimit = 24 << 20
	cfgA.Retry.Initial = 200 * time.Millisecond
	a, err := ferry.NewSession(cfgA)
	if err != nil {
		return err
	}
	task, err := a.Download(ctx, ferry.DownloadRequest{URL: url, Path: dest})
	if err != nil {
		return err
	}
	pp := newProgressPrinter(io.out, false, "   video.bin")
	type stopped struct {
		rd  *ferry.ResumeData
		err error
	}
	var stop chan stopped
	for ev := range task.Events() {
		switch e := ev.(type) {
		case ferry.ProgressEvent:
			pp.update(e.Progress)
			if stop == nil && e.Done > demoSize*6/10 {
				// Stop as an app being closed would, keeping what it has.
				stop = make(chan stopped, 1)
				go func() {
					rd, err := task.CancelWithResumeData()
					stop <- stopped{rd, err}
				}()
			}
		case ferry.RetryEvent:
			pp.note("   connection lost (%v); retrying in %s, keeping the %s in place",
				errors.Unwrap(e.Err), e.Delay.Round(time.Millisecond), formatBytes(task.Progress().Done))
		}
	}
	pp.finish(task.Progress())
	if stop == nil {
		return fmt.Errorf("demo: the download ended before it could be interrupted: %v", task.Err())
	}
	st := <-stop
	if st.err != nil {
		return fmt.Errorf("demo: interrupting the download: %w", st.err)
	}
	rd := st.rd
	blob, err := rd.MarshalBinary()
	if err != nil {
		return err
	}
	say("   Interrupted at %s: the bytes stay in video.bin.part,", formatBytes(rd.Offset()))
	say("   and %d bytes of resume data say how to continue.\n", len(blob))

	say("3. Session B (think: a new process, over HTTP/2) resumes from the resume data:")
	var again ferry.ResumeData
	if err := again.UnmarshalBinary(blob); err != nil {
		return err
	}
	cfgB := ferry.EphemeralConfig()
	cfgB.HTTP2PriorKnowledge = true
	cfgB.RateLimit = 24 << 20
	b, err := ferry.NewSession(cfgB)
	if err != nil {
		return err
	}
	task, err = b.Download(ctx, ferry.DownloadRequest{ResumeData: &again, SHA256: true})
	if err != nil {
		return err
	}
	pp = newProgressPrinter(io.out, false, "   video.bin")
	for ev := range task.Events() {
		if e, ok := ev.(ferry.ProgressEvent); ok {
			pp.update(e.Progress)
		}
	}
	res, err := task.Wait(ctx)
	if err != nil {
		return err
	}
	pp.finish(task.Progress())
	m := res.Metrics
	say("   Done: resumed from %s, fetched %s more over HTTP/%s in %s.",
		formatBytes(res.ResumedFrom), formatBytes(res.Downloaded), httpVersion(res.Proto), m.Duration().Round(time.Millisecond))
	var ranged int
	var ttfb []time.Duration
	for _, t := range m.Transactions {
		if t.StatusCode == 206 {
			ranged++
		}
		if !t.FirstByte.IsZero() {
			ttfb = append(ttfb, t.FirstByte.Sub(t.Start))
		}
	}
	slices.Sort(ttfb)
	say("   %d requests: %d ranges fetched in parallel, each checked against its Content-Range;", len(m.Transactions), ranged)
	if len(ttfb) > 0 {
		say("   median time to first byte %s; verified: %s.", ttfb[len(ttfb)/2].Round(10*time.Microsecond), strings.Join(res.Verified, ", "))
	}
	if res.SHA256 != sum {
		return fmt.Errorf("demo: sha-256 %s, want %s", res.SHA256, sum)
	}
	say("\n4. sha-256 of the result matches the origin: %s", res.SHA256)

	say("\n5. Session C sends it back: tus, found with OPTIONS, 4 segments in parallel:")
	c, err := ferry.NewSession(ferry.EphemeralConfig())
	if err != nil {
		return err
	}
	up, err := c.Upload(ctx, ferry.UploadRequest{URL: base + "/files/", Path: dest, Connections: 4, SHA256: true})
	if err != nil {
		return err
	}
	pp = newProgressPrinter(io.out, false, "   video.bin")
	for ev := range up.Events() {
		if e, ok := ev.(ferry.ProgressEvent); ok {
			pp.update(e.Progress)
		}
	}
	ures, err := up.Wait(ctx)
	if err != nil {
		return err
	}
	pp.finish(up.Progress())
	if ures.SHA256 != sum {
		return fmt.Errorf("demo: uploaded sha-256 %s, want %s", ures.SHA256, sum)
	}
	var partials int
	for _, t := range ures.Metrics.Transactions {
		if t.Method == http.MethodPost {
			partials++
		}
	}
	say("   Stored at %s (%s, %d creations: the probe, the segments and the final concatenation),", ures.Location, ures.Protocol, partials)
	say("   every append with its checksum and the whole file's Repr-Digest checked by the server.")
	say("\n   Try it yourself: ferry serve --root DIR --uploads DIR2, then ferry get URL and")
	say("   ferry put FILE URL/files/ (Ctrl-C either and run it again: it continues).")
	return nil
}

// writeDemoFile fills path with n pseudo-random bytes and returns their sha-256.
func writeDemoFile(path string, n int64) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	src := rand.NewChaCha8([32]byte{'f', 'e', 'r', 'r', 'y'})
	if _, err := io.CopyN(io.MultiWriter(f, h), src, n); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), f.Close()
}

// cutFirstResponse drops the connection of the first GET after limit bytes.
func cutFirstResponse(next http.Handler, limit int64) http.Handler {
	var cut atomic.Bool
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !cut.CompareAndSwap(false, true) {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&cuttingWriter{ResponseWriter: w, left: limit}, r)
	})
}

type cuttingWriter struct {
	http.ResponseWriter
	left int64
}

func (c *cuttingWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.left {
		p = p[:c.left]
		c.ResponseWriter.Write(p)
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	c.left -= int64(len(p))
	return c.ResponseWriter.Write(p)
}
