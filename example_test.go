package ferry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/daemon"
	"github.com/ferryhq/ferry/server"
)

// exampleOrigin serves a 4 MiB file, report.bin, from a ferry origin on
// loopback, and returns its URL and a directory to download into.
func exampleOrigin() (url, dir string, cleanup func()) {
	root, _ := os.MkdirTemp("", "origin")
	dir, _ = os.MkdirTemp("", "downloads")
	content := bytes.Repeat([]byte("ferry moves big files. "), 4<<20/23+1)[:4<<20]
	os.WriteFile(filepath.Join(root, "report.bin"), content, 0o644)
	srv, err := server.New(server.Config{Root: root})
	if err != nil {
		log.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	return ts.URL + "/report.bin", dir, func() {
		ts.Close()
		srv.Close()
		os.RemoveAll(root)
		os.RemoveAll(dir)
	}
}

func ExampleSession_Download() {
	url, dir, cleanup := exampleOrigin()
	defer cleanup()

	s, err := ferry.NewSession(ferry.Config{}) // the zero Config holds the defaults
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	task, err := s.Download(context.Background(), ferry.DownloadRequest{
		URL:    url,
		Path:   filepath.Join(dir, "report.bin"),
		SHA256: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	res, err := task.Wait(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Size, res.SHA256[:16])
	// Output: 4194304 09285640f59a23d8
}

// A download cancelled with resume data continues later, here in a second
// session as another process would.
func ExampleTask_CancelWithResumeData() {
	url, dir, cleanup := exampleOrigin()
	defer cleanup()

	cfg := ferry.EphemeralConfig()
	cfg.RateLimit = 8 << 20 // slow enough to interrupt mid-way
	first, _ := ferry.NewSession(cfg)
	task, _ := first.Download(context.Background(), ferry.DownloadRequest{URL: url, Path: filepath.Join(dir, "report.bin")})
	for task.Progress().Done < 1<<20 {
		time.Sleep(10 * time.Millisecond)
	}
	rd, err := task.CancelWithResumeData()
	if err != nil {
		log.Fatal(err)
	}
	blob, _ := rd.MarshalBinary() // store it anywhere

	var again ferry.ResumeData
	if err := again.UnmarshalBinary(blob); err != nil {
		log.Fatal(err)
	}
	second, _ := ferry.NewSession(ferry.EphemeralConfig())
	task, _ = second.Download(context.Background(), ferry.DownloadRequest{ResumeData: &again})
	res, err := task.Wait(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("resumed mid-way:", res.ResumedFrom > 0 && res.ResumedFrom < res.Size)
	fmt.Println("fetched only the rest:", res.Downloaded == res.Size-res.ResumedFrom)
	// Output:
	// resumed mid-way: true
	// fetched only the rest: true
}

// Events arrive in order and end with a DoneEvent; the channel is then closed.
func ExampleTask_Events() {
	url, dir, cleanup := exampleOrigin()
	defer cleanup()

	s, _ := ferry.NewSession(ferry.Config{})
	defer s.Close()
	task, _ := s.Download(context.Background(), ferry.DownloadRequest{URL: url, Path: filepath.Join(dir, "r.bin")})
	for ev := range task.Events() {
		switch e := ev.(type) {
		case ferry.ResponseEvent:
			fmt.Println("response:", e.StatusCode, e.ContentLength)
		case ferry.MetricsEvent:
			fmt.Println("transaction:", e.Transaction.Method, e.Transaction.StatusCode)
		case ferry.DoneEvent:
			fmt.Println("done, error:", e.Err, "transactions:", len(e.Metrics.Transactions))
		}
	}
	// Output:
	// transaction: HEAD 200
	// response: 200 4194304
	// transaction: GET 200
	// done, error: <nil> transactions: 2
}

// Errors are typed: ask them with errors.As and errors.Is.
func ExampleStatusError() {
	url, dir, cleanup := exampleOrigin()
	defer cleanup()

	s, _ := ferry.NewSession(ferry.Config{})
	defer s.Close()
	task, _ := s.Download(context.Background(), ferry.DownloadRequest{URL: url + ".missing", Path: filepath.Join(dir, "x")})
	_, err := task.Wait(context.Background())
	if se, ok := errors.AsType[*ferry.StatusError](err); ok {
		fmt.Println("status:", se.StatusCode, "retryable:", se.Retryable())
	}
	_, statErr := os.Stat(filepath.Join(dir, "x"))
	fmt.Println("file created:", statErr == nil)
	// Output:
	// status: 404 retryable: false
	// file created: false
}

func ExampleDefaultConfig() {
	cfg := ferry.DefaultConfig()
	fmt.Println("idle timeout:", cfg.IdleTimeout)
	fmt.Println("resource timeout:", cfg.ResourceTimeout)
	fmt.Println("connections per host:", cfg.MaxConnsPerHost)
	// Output:
	// idle timeout: 1m0s
	// resource timeout: 168h0m0s
	// connections per host: 8
}

// An HLS stream is fetched into a directory whose index.m3u8 names only
// local files; a player, or ffmpeg, plays it offline.
func ExampleSession_HLS() {
	root, _ := os.MkdirTemp("", "origin")
	defer os.RemoveAll(root)
	os.WriteFile(filepath.Join(root, "index.m3u8"), []byte(
		"#EXTM3U\n#EXT-X-TARGETDURATION:4\n"+
			"#EXTINF:4,\nintro.ts\n#EXTINF:3.5,\nmain.ts\n#EXT-X-ENDLIST\n"), 0o644)
	os.WriteFile(filepath.Join(root, "intro.ts"), bytes.Repeat([]byte{0x47}, 188*100), 0o644)
	os.WriteFile(filepath.Join(root, "main.ts"), bytes.Repeat([]byte{0x47}, 188*80), 0o644)
	srv, _ := server.New(server.Config{Root: root})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dir, _ := os.MkdirTemp("", "show")
	defer os.RemoveAll(dir)

	s, err := ferry.NewSession(ferry.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	task, err := s.HLS(context.Background(), ferry.HLSRequest{URL: ts.URL + "/index.m3u8", Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	res, err := task.Wait(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(filepath.Base(res.Path), res.HLS.Segments, "segments,", res.HLS.Duration, "s,", res.Size, "bytes")
	// Output: index.m3u8 2 segments, 7.5 s, 33840 bytes
}

// A background session's transfers run in the ferry daemon and outlive the
// program; a program that comes back with the same identifier receives
// what it missed. (Here the daemon runs in this process, and the two
// sessions stand for two runs of a program.)
func Example_backgroundSession() {
	url, dir, cleanup := exampleOrigin()
	defer cleanup()
	state, stopDaemon := exampleDaemon()
	defer stopDaemon()
	cfg := ferry.Config{Background: "reports", Daemon: ferry.DaemonConfig{StateDir: state}}

	// The first run hands a download to the daemon and exits.
	s, err := ferry.NewSession(cfg) // starts "ferry daemon" when none runs
	if err != nil {
		log.Fatal(err)
	}
	if _, err := s.Download(context.Background(), ferry.DownloadRequest{URL: url, Path: filepath.Join(dir, "report.bin")}); err != nil {
		log.Fatal(err)
	}
	s.Close()

	// A later run re-creates the session and is told what happened.
	s, err = ferry.NewSession(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	for ev := range s.BackgroundEvents() {
		fmt.Println(ev.Seq, ev.Type)
		if ev.Type == "done" {
			fmt.Println(filepath.Base(ev.Result.Path), ev.Result.Size)
			s.Ack(ev.Seq) // handled: not delivered again
			break
		}
	}
	// Output:
	// 1 created
	// 2 started
	// 3 done
	// report.bin 4194304
}

// A Daemon queues and steers background tasks of any session without
// running them itself, as ferry bg, ls and wait do. (Here the daemon runs
// in this process.)
func ExampleDaemon() {
	url, dir, cleanup := exampleOrigin()
	defer cleanup()
	state, stopDaemon := exampleDaemon()
	defer stopDaemon()

	d := ferry.NewDaemon(ferry.DaemonConfig{StateDir: state}) // queueing starts a daemon when none runs
	defer d.Close()
	task, err := d.Download(context.Background(), "nightly", ferry.DownloadRequest{
		URL: url, Path: filepath.Join(dir, "backup.bin"),
		Schedule: ferry.Schedule{Priority: 10}, // ahead of the session's other queued tasks
	})
	if err != nil {
		log.Fatal(err)
	}
	done, err := d.Wait(context.Background(), task.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(done.State, filepath.Base(done.Result.Path), done.Result.Size)
	// Output:
	// done backup.bin 4194304
}

// exampleDaemon runs a daemon in this process, standing in for the one a
// background session or a Daemon would start, until stop.
func exampleDaemon() (state string, stop func()) {
	state, _ = os.MkdirTemp("", "ferry-state")
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error)
	go func() {
		done <- daemon.Run(ctx, daemon.Config{StateDir: state, Ready: func() { close(ready) },
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}()
	<-ready
	return state, func() { cancel(); <-done; os.RemoveAll(state) }
}
