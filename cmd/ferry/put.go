package main

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferryhq/ferry"
)

type putFlags struct {
	transferFlags
	protocol, chunkSize, field string
	meta                       []string
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
	f.register(fl, "upload", putConnectionsUsage, 1)
	fl.StringVar(&f.chunkSize, "chunk-size", "", chunkSizeUsage)
	registerFormFlags(fl, &f.field, &f.meta)
	return c
}

// registerFormFlags adds --field and --meta, of put and bg put.
func registerFormFlags(fl *pflag.FlagSet, field *string, meta *[]string) {
	fl.StringVar(field, "field", "file", "form field `NAME` of a multipart upload")
	fl.StringArrayVar(meta, "meta", nil, "tus metadata `KEY=VALUE` (repeatable; filename defaults to FILE's name)")
}

// parseMeta reads the --meta flags; nil for none.
func parseMeta(kvs []string) (map[string]string, error) {
	var meta map[string]string
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("--meta %q: want KEY=VALUE", kv)
		}
		if meta == nil {
			meta = map[string]string{}
		}
		meta[k] = v
	}
	return meta, nil
}

func runPut(c *cobra.Command, io stdio, file, rawURL string, f *putFlags) error {
	if err := checkURL(rawURL); err != nil {
		return err
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	hdr, err := f.header()
	if err != nil {
		return err
	}
	req := ferry.UploadRequest{
		URL: rawURL, Path: file, Protocol: ferry.Protocol(f.protocol),
		Connections: f.connections, FieldName: f.field, Header: hdr,
		SHA256: f.jsonOut || strings.Contains(f.write, "%{sha256}"),
	}
	if f.chunkSize != "" {
		n, err := parseSize(f.chunkSize)
		if err != nil || n <= 0 {
			return usagef("--chunk-size: invalid size %q", f.chunkSize)
		}
		req.ChunkSize = n
	}
	if req.Metadata, err = parseMeta(f.meta); err != nil {
		return err
	}
	s, err := ferry.NewSession(cfg)
	if err != nil {
		return err
	}
	ctx := c.Context()
	task, err := s.Upload(ctx, req)
	if err != nil {
		return requestError(err)
	}
	return follow(ctx, io, task, f.reportTo(rawURL, file, true))
}
