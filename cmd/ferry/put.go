package main

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry"
)

type putFlags struct {
	protocol, chunkSize, limitRate, write, field string
	jsonOut, quiet, insecure, h2c                bool
	connections, retries                         int
	headers, meta                                []string
	connectTimeout, idleTimeout                  time.Duration
}

func putCmd(io stdio) *cobra.Command {
	var f putFlags
	c := &cobra.Command{
		Use:   "put FILE URL",
		Short: "Upload a file, resumably (tus, IETF draft) or as a multipart form",
		Long: `Upload FILE to URL: a tus or IETF resumable-upload endpoint (such as
http://host/files/ on ferry serve), or a form that takes multipart/form-data.
The protocol is found with OPTIONS unless --protocol says. Resumable uploads
keep the upload's URL and the offset the server acknowledged in ferry's
state directory: interrupted, the same command run again continues.`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usagef("put takes a FILE and a URL")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error { return runPut(c, io, args[0], args[1], &f) },
	}
	fl := c.Flags()
	fl.SortFlags = false
	fl.StringVar(&f.protocol, "protocol", "auto", "auto, tus, ietf or multipart")
	fl.IntVarP(&f.connections, "connections", "x", 1, "send `N` segments in parallel (tus concatenation)")
	fl.StringVar(&f.chunkSize, "chunk-size", "", "fixed `SIZE` per append (default: measured, about 2 s each)")
	fl.StringVar(&f.field, "field", "file", "form field `NAME` of a multipart upload")
	fl.StringArrayVar(&f.meta, "meta", nil, "tus metadata `KEY=VALUE` (repeatable; filename defaults to FILE's name)")
	fl.StringVar(&f.limitRate, "limit-rate", "", "cap the speed, e.g. 500k, 2M")
	fl.IntVar(&f.retries, "retry", 10, "retry up to `N` times in a row while no attempt moves the upload forward")
	fl.StringArrayVarP(&f.headers, "header", "H", nil, "add a request header `'K: V'` (repeatable)")
	fl.BoolVar(&f.jsonOut, "json", false, "print the result and metrics as one JSON object on stdout")
	fl.StringVarP(&f.write, "write-out", "w", "", "print `FORMAT` on stdout at the end, with %{name} for the --json names")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress output")
	fl.DurationVar(&f.connectTimeout, "connect-timeout", 30*time.Second, "timeout for connecting")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", 60*time.Second, "give up an attempt when no byte moves for this long")
	fl.BoolVarP(&f.insecure, "insecure", "k", false, "do not verify the server's TLS certificate")
	fl.BoolVar(&f.h2c, "http2-prior-knowledge", false, "speak HTTP/2 without TLS to http:// URLs")
	return c
}

func runPut(c *cobra.Command, io stdio, file, rawURL string, f *putFlags) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("%q is not an http(s) URL", rawURL)
	}
	cfg := ferry.DefaultConfig()
	cfg.ConnectTimeout = f.connectTimeout
	cfg.IdleTimeout = f.idleTimeout
	cfg.Retry.MaxAttempts = f.retries + 1
	if f.retries <= 0 {
		cfg.Retry.MaxAttempts = -1
	}
	if f.limitRate != "" {
		n, err := parseSize(f.limitRate)
		if err != nil || n <= 0 {
			return usagef("--limit-rate: invalid rate %q", f.limitRate)
		}
		cfg.RateLimit = n
	}
	if f.insecure {
		cfg.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}
	cfg.HTTP2PriorKnowledge = f.h2c
	if f.connections > cfg.MaxConnsPerHost {
		cfg.MaxConnsPerHost = f.connections
	}
	req := ferry.UploadRequest{
		URL: rawURL, Path: file, Protocol: ferry.Protocol(f.protocol),
		Connections: f.connections, FieldName: f.field, Header: http.Header{},
		SHA256: f.jsonOut || strings.Contains(f.write, "%{sha256}"),
	}
	if f.chunkSize != "" {
		n, err := parseSize(f.chunkSize)
		if err != nil || n <= 0 {
			return usagef("--chunk-size: invalid size %q", f.chunkSize)
		}
		req.ChunkSize = n
	}
	for _, h := range f.headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return usagef("-H %q: want 'Name: value'", h)
		}
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	for _, kv := range f.meta {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usagef("--meta %q: want KEY=VALUE", kv)
		}
		if req.Metadata == nil {
			req.Metadata = map[string]string{}
		}
		req.Metadata[k] = v
	}
	s, err := ferry.NewSession(cfg)
	if err != nil {
		return err
	}
	ctx := c.Context()
	task, err := s.Upload(ctx, req)
	if err != nil {
		return usageError{err}
	}
	return follow(ctx, io, task, output{
		url: rawURL, path: file, upload: true, quiet: f.quiet, jsonOut: f.jsonOut, write: f.write,
	})
}
