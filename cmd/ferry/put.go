package main

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/internal/atomicfile"
)

type putFlags struct {
	transferFlags
	req putRequest
	// A request with a small body instead of a file's upload (a data
	// task), as curl -d sends it.
	data, method, output string
	form                 []string // -F parts, as curl takes them
}

// putRequest are the flags of an upload's request, of put and bg put.
type putRequest struct {
	protocol, chunkSize, field string
	meta                       []string
}

func (p *putRequest) register(fl *pflag.FlagSet) {
	fl.StringVar(&p.protocol, "protocol", "auto", "auto, tus, ietf, multipart, or put or post for the file as the plain body")
	fl.StringVar(&p.chunkSize, "chunk-size", "", chunkSizeUsage)
	fl.StringVar(&p.field, "field", "file", "form field `NAME` of a multipart upload")
	fl.StringArrayVar(&p.meta, "meta", nil, "tus metadata `KEY=VALUE` (repeatable; filename defaults to FILE's name)")
}

// build is the request to upload file to rawURL with the request flags rf.
func (p *putRequest) build(file, rawURL string, rf *requestFlags) (ferry.UploadRequest, error) {
	if err := checkURL(rawURL); err != nil {
		return ferry.UploadRequest{}, err
	}
	if err := rf.check(); err != nil {
		return ferry.UploadRequest{}, err
	}
	if !slices.Contains(putProtocols, p.protocol) {
		return ferry.UploadRequest{}, usagef("--protocol %q: want one of %s", p.protocol, strings.Join(putProtocols, ", "))
	}
	req := ferry.UploadRequest{URL: rawURL, Path: file, Protocol: ferry.Protocol(p.protocol),
		Connections: rf.connections, FieldName: p.field}
	var err error
	if req.Header, err = rf.header(); err != nil {
		return req, err
	}
	if p.chunkSize != "" {
		n, err := parseSize(p.chunkSize)
		if err != nil || n <= 0 {
			return req, usagef("--chunk-size: invalid size %q", p.chunkSize)
		}
		req.ChunkSize = n
	}
	req.Metadata, err = parseMeta(p.meta)
	return req, err
}

// putProtocols are the values of --protocol.
var putProtocols = []string{"auto", "tus", "ietf", "multipart", "put", "post"}

func putCmd(io stdio) *cobra.Command {
	var f putFlags
	c := &cobra.Command{
		Use:   "put FILE URL | put URL --data STRING|@FILE",
		Short: "Upload a file, resumably (tus, IETF draft), as a multipart form or a plain body",
		Long: `Upload FILE to URL: a tus or IETF resumable-upload endpoint (such as
http://host/files/ on ferry serve), a form that takes multipart/form-data, or
with --protocol put or post, an endpoint that takes the file as the body of
one request (an S3 presigned URL, WebDAV, nginx's dav_methods PUT).
The protocol is found with OPTIONS unless --protocol says. Resumable uploads
keep the upload's URL and the offset the server acknowledged in ferry's
state directory: interrupted, the same command run again continues.

With -F, put sends a multipart/form-data POST of the parts given, each
file streamed from disk, and writes the answer's body to stdout.

With --data, put sends one request with that body (a POST unless -X
says) and writes the answer's body to stdout, or to -o FILE: an API call.
A status of 400 or more fails the command, after the body is written.`,
		Args: func(c *cobra.Command, args []string) error {
			if c.Flags().Changed("data") && len(f.form) > 0 {
				return usagef("--data and -F exclude each other")
			}
			if c.Flags().Changed("data") {
				return argsExactly(1, "put --data takes one URL")(c, args)
			}
			if len(f.form) > 0 {
				return argsExactly(1, "put -F takes one URL")(c, args)
			}
			return argsExactly(2, "put takes a FILE and a URL (or a URL and --data)")(c, args)
		},
		RunE: func(c *cobra.Command, args []string) error {
			if c.Flags().Changed("data") {
				return runData(c, io, args[0], &f)
			}
			if len(f.form) > 0 {
				return runForm(c, io, args[0], &f)
			}
			if f.method != "" || f.output != "" {
				return usagef("-X and -o go with --data")
			}
			return runPut(c, io, args[0], args[1], &f)
		},
	}
	fl := c.Flags()
	fl.SortFlags = false
	f.req.register(fl)
	fl.StringVar(&f.data, "data", "", "send `STRING` as the body of one request, or the contents of @FILE ('@-': stdin)")
	fl.StringVarP(&f.method, "request", "X", "", "the `METHOD` of a --data request (default POST)")
	fl.StringVarP(&f.output, "output", "o", "", "write a --data answer's body to `FILE` instead of stdout")
	fl.StringArrayVarP(&f.form, "form", "F", nil, "send a multipart form part `NAME=VALUE`, or NAME=@FILE[;type=TYPE][;filename=NAME] (repeatable), as curl -F")
	f.register(fl, "upload", putConnectionsUsage, 1)
	return c
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
	cfg, err := f.config(rawURL)
	if err != nil {
		return err
	}
	req, err := f.req.build(file, rawURL, &f.requestFlags)
	if err != nil {
		return err
	}
	req.SHA256 = f.jsonOut || strings.Contains(f.write, "%{sha256}")
	s, err := ferry.NewSession(cfg)
	if err != nil {
		return err
	}
	ctx := c.Context()
	task, err := s.Upload(ctx, req)
	if err != nil {
		return requestError(err)
	}
	return f.keepCookies(io, follow(ctx, io, task, f.reportTo(rawURL, file, true)))
}

// runData sends one request with the body of --data, as curl -d does: a
// form's Content-Type unless -H names one, and the answer's body to stdout
// or -o.
func runData(c *cobra.Command, io stdio, rawURL string, f *putFlags) error {
	s, header, err := f.session(rawURL)
	if err != nil {
		return err
	}
	if header.Get("Content-Type") == "" {
		header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req := ferry.DataRequest{URL: rawURL, Method: strings.ToUpper(cmp.Or(f.method, http.MethodPost)), Header: header}
	switch {
	case f.data == "@-":
		req.BodyReader = io.in
	case strings.HasPrefix(f.data, "@"):
		req.BodyFile = f.data[1:]
	default:
		req.Body = []byte(f.data)
	}
	if err := req.Validate(); err != nil {
		return usageError{err}
	}
	if f.output != "" {
		if err := atomicfile.CheckReplace(f.output); err != nil {
			return err
		}
	}
	ctx := c.Context()
	task, err := s.Data(ctx, req)
	if err != nil {
		return requestError(err)
	}
	o := f.reportTo(rawURL, cmp.Or(f.output, "-"), false)
	if f.output == "" {
		o.reportOut = io.err // stdout carries the body
	}
	err = follow(ctx, io, task, o)
	if res, _ := task.Wait(ctx); res != nil {
		var werr error
		if f.output == "" {
			_, werr = io.out.Write(res.Response)
		} else {
			werr = atomicfile.WriteFile(f.output, res.Response, 0o666)
		}
		if werr != nil && err == nil {
			err = werr
		}
		if err == nil && res.StatusCode >= 400 {
			err = fmt.Errorf("the server answered %d %s", res.StatusCode, http.StatusText(res.StatusCode))
		}
	}
	return f.keepCookies(io, err)
}

// parseFormPart reads one -F: name=value, or name=@file with ;type= and
// ;filename= options, as curl takes them.
func parseFormPart(arg string) (ferry.FormPart, error) {
	name, value, ok := strings.Cut(arg, "=")
	if !ok || name == "" {
		return ferry.FormPart{}, usagef("-F %q: want NAME=VALUE or NAME=@FILE", arg)
	}
	file, isFile := strings.CutPrefix(value, "@")
	if !isFile {
		return ferry.FormPart{Name: name, Value: value}, nil
	}
	opts := strings.Split(file, ";")
	p := ferry.FormPart{Name: name, Path: opts[0]}
	for _, o := range opts[1:] {
		k, v, _ := strings.Cut(o, "=")
		switch strings.TrimSpace(k) {
		case "type":
			p.ContentType = v
		case "filename":
			p.FileName = v
		default:
			return ferry.FormPart{}, usagef("-F %q: unknown option %q (type= or filename=)", arg, k)
		}
	}
	if p.Path == "" {
		return ferry.FormPart{}, usagef("-F %q: no file after @", arg)
	}
	return p, nil
}

// runForm posts the -F parts as one multipart form and writes the answer's
// body to stdout.
func runForm(c *cobra.Command, io stdio, rawURL string, f *putFlags) error {
	s, header, err := f.session(rawURL)
	if err != nil {
		return err
	}
	req := ferry.UploadRequest{URL: rawURL, Protocol: ferry.ProtocolMultipart, Header: header}
	for _, arg := range f.form {
		p, err := parseFormPart(arg)
		if err != nil {
			return err
		}
		req.Form = append(req.Form, p)
	}
	ctx := c.Context()
	task, err := s.Upload(ctx, req)
	if err != nil {
		return requestError(err)
	}
	o := f.reportTo(rawURL, "-", true)
	o.reportOut = io.err // stdout carries the answer
	err = follow(ctx, io, task, o)
	if res, _ := task.Wait(ctx); res != nil {
		io.out.Write(res.Response)
	}
	return f.keepCookies(io, err)
}
