package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"path"
	"sync"

	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry"
)

type streamFlags struct {
	transferFlags
	resumable   bool
	contentType string
	buffer      string
}

func streamCmd(io stdio) *cobra.Command {
	var f streamFlags
	c := &cobra.Command{
		Use:   "stream URL",
		Short: "Send stdin as a live stream while it is produced, printing the server's replies as they come",
		Long: `Send standard input to URL as one streamed request while it is still being
produced (arecord ... | ferry stream URL), until EOF, and print the server's
replies as they arrive, before the input ends. On a ferry server, URL is
http://host/stream/NAME; its replies are JSON lines (levels and voice activity
for a WAV recording, then the stored length and sha-256, checked against what
was sent).

--resumable sends the stream as an IETF resumable upload: a dropped connection
is continued from the server's offset, bytes not yet confirmed are kept (in
memory up to --buffer, then in a temporary file), and the replies go on
without gaps or repeats. Without it a slow network makes ferry stop reading
stdin once --buffer is full, and a dropped connection ends the stream.`,
		Args: argsExactly(1, "stream takes one URL"),
		RunE: func(c *cobra.Command, args []string) error { return runStream(c, io, args[0], &f) },
	}
	fl := c.Flags()
	fl.SortFlags = false
	fl.BoolVar(&f.resumable, "resumable", false, "survive dropped connections (IETF resumable upload of unknown length)")
	fl.StringVar(&f.contentType, "content-type", "", "the stream's `TYPE` (default: from URL's name, e.g. audio/wav for .wav)")
	fl.StringVar(&f.buffer, "buffer", "8M", "`SIZE` held in memory")
	f.register(fl, "stream", "unused", 1)
	fl.MarkHidden("connections")
	return c
}

func runStream(c *cobra.Command, io stdio, rawURL string, f *streamFlags) error {
	if err := checkURL(rawURL); err != nil {
		return err
	}
	u, _ := url.Parse(rawURL)
	cfg, err := f.config(rawURL)
	if err != nil {
		return err
	}
	hdr, err := f.header()
	if err != nil {
		return err
	}
	buf, err := parseSize(f.buffer)
	if err != nil || buf <= 0 {
		return usagef("--buffer: invalid size %q", f.buffer)
	}
	ct := f.contentType
	if ct == "" {
		ct = mime.TypeByExtension(path.Ext(u.Path))
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	s, err := ferry.NewSession(cfg)
	if err != nil {
		return err
	}
	ctx := c.Context()
	var outMu sync.Mutex
	req := ferry.StreamRequest{
		URL: rawURL, ContentType: ct, Header: hdr, Resumable: f.resumable, Buffer: buf,
		OnReply: func(r ferry.ReplyEvent) {
			if !f.jsonOut && r.Type == "stored" {
				return // acknowledgements: progress, not news
			}
			outMu.Lock()
			defer outMu.Unlock()
			fmt.Fprintf(io.out, "%s\n", r.Line)
		},
	}
	task, err := s.Stream(ctx, req)
	if err != nil {
		return usageError{err}
	}
	go func() {
		readErr, writeErr := copyStdin(task, io.in)
		switch {
		case writeErr != nil:
			// The stream failed; its error is the task's.
		case readErr != nil:
			task.Cancel()
		default:
			task.Close()
		}
	}()
	o := f.reportTo(rawURL, "-", true)
	o.jsonOut = false // the final object is printed below, one NDJSON line
	err = follow(ctx, io, task.Task, o)
	if f.jsonOut {
		res, werr := task.Wait(context.Background())
		report := newReport(rawURL, "-", true, task.Task, res, werr)
		b, _ := json.Marshal(report)
		outMu.Lock()
		fmt.Fprintf(io.out, "%s\n", b)
		outMu.Unlock()
	}
	return f.keepCookies(io, err)
}

// copyStdin copies the producer's bytes into the stream in small reads, so
// each is on its way as soon as it is read.
func copyStdin(w io.Writer, r io.Reader) (readErr, writeErr error) {
	buf := make([]byte, 16<<10)
	for {
		k, err := r.Read(buf)
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return nil, werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		if err != nil {
			return err, nil
		}
	}
}
