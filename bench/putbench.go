package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ferryhq/ferry/internal/peer"
)

// The upload benchmark: go run ./bench put.
//
// Every upload tool sends one file of random bytes to every upload server
// (ferry serve --uploads, tusd) over every profile, -runs times, the tools
// interleaved as in get. A run is timed from the start of the client to its
// exit; then the server's storage is searched for a file with the test
// file's bytes (not timed), and the run's upload is removed. A run that
// reaches its time cap is killed and counts with the bytes the server
// stored.
const (
	putSectionStart = "<!-- put -->"
	putSectionEnd   = "<!-- /put -->"
)

var putDocSection = docSection{putSectionStart, putSectionEnd}

// putProfiles are the profiles uploads run on, with each one's file size
// (full and -quick). A download profile's size suits a download: on the
// lossy link a serial upload takes several times longer than a download.
var putProfiles = []struct {
	name            string
	size, quickSize int64
}{
	{"loopback", 1 << 30, 64 << 20},
	{"wan50", 64 << 20, 16 << 20},
	{"wan50-loss1", 8 << 20, 8 << 20},
}

// uploadServers are the servers uploads go to.
var uploadServers = []string{"ferry-serve", "tusd"}

// defaultPutTools are measured unless -tools says otherwise.
var defaultPutTools = []string{"curl-tus", "tusjs", "tusjs-p4", "ferry-x1", "ferry-x4", "ferry"}

// putTimeCap is the default time cap of one upload.
const putTimeCap, putQuickCap = 90 * time.Second, 30 * time.Second

// putTrackedFigures are the upload figures the project follows, with the
// targets of its goal for defaults.
var putTrackedFigures = []Tracked{
	{Profile: "wan50-loss1", Origin: "ferry-serve", Num: "ferry", Den: "ferry-x1", Target: 4},
	{Profile: "wan50-loss1", Origin: "ferry-serve", Num: "ferry", Den: "tusjs-p4", Target: 1.2},
	{Profile: "wan50-loss1", Origin: "ferry-serve", Num: "ferry-x4", Den: "tusjs-p4"},
	{Profile: "wan50", Origin: "ferry-serve", Num: "ferry", Target: 0.95},
	{Profile: "loopback", Origin: "ferry-serve", Num: "curl-tus", Den: "curl-tus", DenOrigin: "tusd", Target: 1.2},
	{Profile: "loopback", Origin: "ferry-serve", Num: "ferry", Den: "tusjs"},
}

// putToolSpecs are the upload tools. tus-js-client runs through the
// interop suite's script in root/interop/js (npm ci there installs it).
func putToolSpecs(root string) map[string]toolSpec {
	js := filepath.Join(root, "interop", "js")
	tusJS := func(parallel string) toolSpec {
		return toolSpec{
			bin: "node",
			argv: func(bin, url, file string) []string {
				return []string{bin, filepath.Join(js, "upload.mjs"), "--file", file, "--endpoint", url, "--parallel", parallel}
			},
			version: [][]string{{"-p", fmt.Sprintf(`"tus-js-client " + require(%q).version + ", node " + process.version`,
				filepath.Join(js, "node_modules", "tus-js-client", "package.json"))}},
		}
	}
	return map[string]toolSpec{
		"curl-tus": {bin: "curl", argv: curlTusArgv, version: [][]string{{"--version"}}},
		"tusjs":    tusJS("1"),
		"tusjs-p4": tusJS("4"),
		// ferry's default, whatever it picks.
		"ferry":    {argv: ferryPutArgv(), version: ferryVersion, metrics: ferryMetrics},
		"ferry-x1": {argv: ferryPutArgv("-x", "1"), version: ferryVersion, metrics: ferryMetrics},
		"ferry-x4": {argv: ferryPutArgv("-x", "4"), version: ferryVersion, metrics: ferryMetrics},
	}
}

// ferryPutArgv runs ferry put with its state in the run's directory, so
// that no run resumes another's upload.
func ferryPutArgv(extra ...string) func(bin, url, file string) []string {
	return func(bin, url, file string) []string {
		argv := []string{"/bin/sh", "-c", `XDG_STATE_HOME="$PWD/state" exec "$@"`, "sh", bin, "put", "-q"}
		argv = append(argv, extra...)
		return append(argv, "-w", ferryWriteOut, file, url)
	}
}

// curlTusScript is a tus upload by curl: a POST that creates the upload,
// and one PATCH with the whole file, streamed from disk.
const curlTusScript = `set -e
size=$(stat -c %s "$3")
hdr=$("$1" -sSf -o /dev/null -D - -X POST -H 'Tus-Resumable: 1.0.0' -H "Upload-Length: $size" "$2")
loc=$(printf %s "$hdr" | tr -d '\r' | sed -n 's/^[Ll]ocation: *//p')
[ -n "$loc" ] || { echo "no Location in the answer to POST $2" >&2; exit 1; }
case $loc in
http://*|https://*) ;;
/*) loc=$(printf %s "$2" | sed 's|^\([a-z]*://[^/]*\).*|\1|')$loc ;;
*) loc=${2%/*}/$loc ;;
esac
exec "$1" -sSf -o /dev/null -X PATCH -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' \
	-H 'Content-Type: application/offset+octet-stream' -H 'Expect:' -T "$3" "$loc"`

func curlTusArgv(bin, url, file string) []string {
	return []string{"/bin/sh", "-c", curlTusScript, "sh", bin, url, file}
}

type putOptions struct {
	common
	runs     int
	profiles []string
	servers  []string
	tools    []string
	quick    bool
	sizeAll  int64
	sizes    map[string]int64
	timeCap  time.Duration
	baseline string
}

// size is the file size of profile name.
func (o putOptions) size(name string) int64 {
	if s, ok := o.sizes[name]; ok {
		return s
	}
	if o.sizeAll > 0 {
		return o.sizeAll
	}
	for _, p := range putProfiles {
		if p.name == name {
			if o.quick {
				return p.quickSize
			}
			return p.size
		}
	}
	return 0
}

func putProfileNames() []string {
	var names []string
	for _, p := range putProfiles {
		names = append(names, p.name)
	}
	return names
}

// putFlags is the put mode.
func putFlags(fs *flag.FlagSet, c *common) func(context.Context) error {
	o := &putOptions{}
	var (
		profFlag   = fs.String("profiles", strings.Join(putProfileNames(), ","), "comma-separated network profiles: "+strings.Join(putProfileNames(), ", "))
		serverFlag = fs.String("servers", strings.Join(uploadServers, ","), "comma-separated upload servers: "+strings.Join(uploadServers, ", "))
		toolFlag   = fs.String("tools", strings.Join(defaultPutTools, ","), "comma-separated upload tools")
		sizeFlag   = fs.String("size", "", "file size for every profile (e.g. 256MiB); default: each profile's own")
		sizesFlag  = fs.String("sizes", "", "per-profile sizes, e.g. wan50-loss1=256MiB")
	)
	fs.IntVar(&o.runs, "runs", 3, "uploads per tool, server and profile")
	fs.BoolVar(&o.quick, "quick", false, "smoke run: small files, short caps, 1 round; writes no report unless -out is given")
	fs.DurationVar(&o.timeCap, "timecap", 0, fmt.Sprintf("time cap of one upload (default %v, -quick %v)", putTimeCap, putQuickCap))
	fs.StringVar(&o.baseline, "baseline", "", "also measure the ferry tools with `FERRY`, an earlier build, as NAME@base, interleaved")
	return func(ctx context.Context) error {
		o.common = *c
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if o.quick {
			if !set["runs"] {
				o.runs = 1
			}
			if !set["out"] {
				o.out = ""
			}
		}
		if o.timeCap == 0 {
			o.timeCap = putTimeCap
			if o.quick {
				o.timeCap = putQuickCap
			}
		}
		var err error
		if *sizeFlag != "" {
			if o.sizeAll, err = parseSize(*sizeFlag); err != nil {
				return err
			}
		}
		if o.sizes, err = parsePerProfile(*sizesFlag, parseSize); err != nil {
			return fmt.Errorf("-sizes: %w", err)
		}
		o.profiles, o.servers, o.tools = splitList(*profFlag), splitList(*serverFlag), splitList(*toolFlag)
		for _, name := range o.profiles {
			// Only upload profiles: a download profile such as capped would
			// otherwise run here without its rate limit.
			if _, ok := lookupProfile(name); !ok || !slices.Contains(putProfileNames(), name) {
				return fmt.Errorf("unknown upload profile %q (have: %s)", name, strings.Join(putProfileNames(), ", "))
			}
		}
		for _, s := range o.servers {
			if !slices.Contains(uploadServers, s) {
				return fmt.Errorf("unknown upload server %q (have: %s)", s, strings.Join(uploadServers, ", "))
			}
		}
		return runPut(ctx, *o)
	}
}

// putReport is one run of the put mode.
type putReport struct {
	Command           string
	Started, Finished time.Time
	Runs              int
	Machine, Tools    []KV
	Profiles          []ProfileResult
}

func runPut(ctx context.Context, o putOptions) error {
	if o.runs < 1 {
		return errors.New("-runs must be at least 1")
	}
	tmp, err := o.scratch(ctx, "put")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	specs := putToolSpecs(o.root)
	var tools []Tool
	for _, name := range o.tools {
		t, err := lookupToolIn(specs, name, o.ferryBin)
		if err != nil {
			return err
		}
		tools = append(tools, t)
	}
	if slices.ContainsFunc(tools, func(t Tool) bool { return strings.HasPrefix(t.Spec, "tusjs") }) {
		if _, err := os.Stat(filepath.Join(o.root, "interop", "js", "node_modules", "tus-js-client")); err != nil {
			return fmt.Errorf("tus-js-client is not installed: run npm ci in interop/js (%w)", err)
		}
	}
	if o.baseline != "" {
		base, err := filepath.Abs(o.baseline)
		if err != nil {
			return err
		}
		tools = append(tools, baselineTools(specs, tools, base)...)
	}

	deps := startDeps{ferryBin: o.ferryBin}
	deps.lifetime = time.Duration(o.runs*len(tools)*len(o.servers))*(o.timeCap+time.Minute) + 10*time.Minute
	if slices.Contains(o.servers, "tusd") {
		logf("building tusd")
		if deps.tusdBin, err = peer.BuildTusd(ctx, tmp); err != nil {
			return err
		}
	}
	var profiles []Profile
	for _, name := range o.profiles {
		p, ok := lookupProfile(name)
		if !ok {
			return fmt.Errorf("unknown upload profile %q", name)
		}
		p.Size, p.TimeCap = o.size(name), o.timeCap
		profiles = append(profiles, p)
		if p.Link != nil && deps.forwarder == "" {
			if deps.forwarder, err = wanForwarder(ctx, tmp); err != nil {
				return err
			}
		}
	}
	if o.workDir == "" {
		o.workDir = filepath.Join(tmp, "work")
	}

	rep := &putReport{Command: commandLine(), Started: time.Now().UTC(), Runs: o.runs}
	for _, t := range tools {
		rep.Tools = append(rep.Tools, KV{t.Name, t.Command()})
	}
	for _, p := range profiles {
		file, err := ensureTestFile(o.cacheDir, p.Size)
		if err != nil {
			return err
		}
		for _, server := range o.servers {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			pr, err := runPutProfile(ctx, p, server, tools, file, o, deps)
			if err != nil {
				return fmt.Errorf("profile %s (%s): %w", p.Name, server, err)
			}
			rep.Profiles = append(rep.Profiles, pr)
		}
	}
	rep.Finished = time.Now().UTC()
	rep.Machine = machineInfo(ctx, tools)
	if deps.tusdBin != "" {
		if v := peer.TusdVersion(deps.tusdBin); v != "" {
			rep.Machine = append(rep.Machine, KV{"tusd", v})
		}
	}

	fmt.Println()
	fmt.Print(rep.Text())
	if err := writeSection(o.out, putDocSection, rep.section(), streamDocSection); err != nil {
		return err
	}
	failures := 0
	for _, p := range rep.Profiles {
		for _, r := range p.Runs {
			if r.Err != "" {
				failures++
			}
		}
	}
	if failures > 0 {
		return fmt.Errorf("%d run(s) failed", failures)
	}
	return nil
}

// runPutProfile measures every tool uploading file to server over p.
func runPutProfile(ctx context.Context, p Profile, server string, tools []Tool, file testFile, o putOptions, deps startDeps) (pr ProfileResult, err error) {
	pr = ProfileResult{
		Name: p.Name, Describe: p.Describe, Origin: server, Upload: true,
		Size: file.size, TimeCap: p.TimeCap, LinkRate: p.LinkRate(),
	}
	for _, t := range tools {
		pr.Tools = append(pr.Tools, t.Name)
	}
	logf("profile %s, server %s: starting (%s, cap %v per run)", p.Name, server, formatSize(file.size), p.TimeCap)
	pr.LoadBefore = loadAvg()
	defer func() { pr.LoadAfter = loadAvg() }()
	dir := filepath.Join(o.workDir, fmt.Sprintf("%s-%s", p.Name, server))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return pr, err
	}
	defer os.RemoveAll(dir)
	env, endpoint, store, err := startUploadServer(ctx, p, server, dir, deps)
	if err != nil {
		return pr, err
	}
	defer func() {
		if err := env.Close(); err != nil {
			logf("profile %s: teardown: %v", p.Name, err)
		}
	}()
	pr.Server, pr.URL, pr.CC = env.Origin, endpoint, env.CC
	if env.Net != nil {
		pr.Link, pr.RTT, pr.Setup = env.Net.Config.Describe(), env.Net.RTT, env.Net.Setup
	}
	for round := 1; round <= o.runs; round++ {
		for i := range tools {
			t := tools[(i+round-1)%len(tools)]
			if ctx.Err() != nil {
				return pr, ctx.Err()
			}
			runDir := filepath.Join(dir, fmt.Sprintf("%d-%s", round, t.Name))
			r := measurePut(ctx, env, t, endpoint, file, store, runDir, p.TimeCap)
			r.Round = round
			pr.Runs = append(pr.Runs, r)
			if ctx.Err() != nil {
				return pr, ctx.Err()
			}
			pr.logRun(o.runs, r)
		}
	}
	if env.Net != nil {
		if st, err := env.Net.Stats(); err == nil {
			pr.LinkTotal = &st
		}
	}
	return pr, nil
}

// startUploadServer brings p's network up with server storing uploads
// under dir, and returns its upload endpoint and storage.
func startUploadServer(ctx context.Context, p Profile, server, dir string, deps startDeps) (_ *Env, endpoint string, _ *uploadStore, err error) {
	env, listen, netns, err := p.network(ctx, deps)
	if err != nil {
		return nil, "", nil, err
	}
	defer func() {
		if err != nil {
			env.Close()
		}
	}()
	storeDir := filepath.Join(dir, "uploads")
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return nil, "", nil, err
	}
	var srv *peer.Server
	switch server {
	case "ferry-serve":
		root := filepath.Join(dir, "root")
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, "", nil, err
		}
		// The benchmark removes each run's upload from the storage
		// behind the server's back, which its storage bound would go on
		// counting: no bound.
		srv, err = peer.StartFerryServe(ctx, peer.FerryServeConfig{Bin: deps.ferryBin, Root: root, Uploads: storeDir,
			Listen: listen, Netns: netns, Args: []string{"--max-storage", "0"}})
		env.Origin = "ferry serve --uploads"
	case "tusd":
		srv, err = peer.StartTusd(ctx, peer.TusdConfig{Bin: deps.tusdBin, UploadDir: storeDir, Listen: listen, Netns: netns})
		env.Origin = "tusd -enable-experimental-protocol"
	default:
		err = fmt.Errorf("unknown upload server %q", server)
	}
	if err != nil {
		return nil, "", nil, err
	}
	env.closeWith(srv.Stop)
	store, err := newUploadStore(storeDir)
	if err != nil {
		return nil, "", nil, err
	}
	return env, srv.URL + "/files/", store, nil
}

// measurePut runs one upload of file with tool t into a fresh directory,
// then looks for the file's bytes in the server's storage; a run that hits
// timeCap is killed and counts with the bytes the server stored.
func measurePut(ctx context.Context, env *Env, t Tool, endpoint string, file testFile, store *uploadStore, dir string, timeCap time.Duration) Run {
	defer store.clear()
	// A file left by an earlier run must not pass for this one's.
	if err := store.clear(); err != nil {
		return Run{Tool: t.Name, ExitCode: -1, Err: err.Error()}
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Run{Tool: t.Name, ExitCode: -1, Err: err.Error()}
	}
	defer os.RemoveAll(dir)
	c := runClient(ctx, env, t.Argv(endpoint, file.path()), dir, timeCap)
	r := newRun(t, c)
	switch {
	case c.Capped:
		r.Bytes = store.settled(ctx, file.size)
	case r.Err != "":
	default:
		if r.Err = store.holds(file); r.Err == "" {
			r.Bytes = file.size
		}
	}
	return r
}

// uploadStore is a server's upload directory, as the benchmark sees it:
// the files that appear in it after the server started are the uploads'.
type uploadStore struct {
	dir  string
	keep map[string]bool // there when the server started
}

func newUploadStore(dir string) (*uploadStore, error) {
	s := &uploadStore{dir: dir, keep: map[string]bool{}}
	files, err := s.files()
	for _, f := range files {
		s.keep[f.path] = true
	}
	return s, err
}

type storedFile struct {
	path string
	size int64
}

// files are the regular files below the directory but the kept ones.
func (s *uploadStore) files() ([]storedFile, error) {
	var out []storedFile
	err := filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // the server removed it (a lock or temporary file) mid-walk
		}
		if err != nil || !d.Type().IsRegular() || s.keep[path] {
			return err
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		out = append(out, storedFile{path, fi.Size()})
		return nil
	})
	return out, err
}

// holds says why the storage has no file with file's bytes ("" when it
// has one).
func (s *uploadStore) holds(file testFile) string {
	files, err := s.files()
	if err != nil {
		return err.Error()
	}
	sizes := []string{}
	for _, f := range files {
		if f.size != file.size {
			sizes = append(sizes, fmt.Sprint(f.size))
			continue
		}
		sum, err := peer.FileSHA256(f.path)
		if err == nil && sum == file.sum {
			return ""
		}
		sizes = append(sizes, fmt.Sprintf("%d (sha256 %.12s)", f.size, sum))
	}
	return fmt.Sprintf("the server stored no file with the upload's bytes (%d bytes, sha256 %.12s); files of %s bytes",
		file.size, file.sum, strings.Join(sizes, ", "))
}

// stored is what the server holds of an upload of size bytes: the data of
// its files but their descriptions (.info), at most size.
func (s *uploadStore) stored(size int64) int64 {
	files, _ := s.files()
	var n int64
	for _, f := range files {
		if !strings.HasSuffix(f.path, ".info") {
			n += dataBytes(f.path)
		}
	}
	return min(n, size)
}

// settled is stored once the server has written what a killed client
// had sent: the figure unchanged over a quarter second, or after 10 s.
func (s *uploadStore) settled(ctx context.Context, size int64) int64 {
	n := s.stored(size)
	for range 40 {
		select {
		case <-ctx.Done():
			return n
		case <-time.After(250 * time.Millisecond):
		}
		m := s.stored(size)
		if m == n {
			return n
		}
		n = m
	}
	return n
}

// clear removes the uploads' files, keeping the server's own, and says
// whether any is left.
func (s *uploadStore) clear() error {
	files, err := s.files()
	for _, f := range files {
		if e := os.Remove(f.path); e != nil && !errors.Is(e, fs.ErrNotExist) {
			err = errors.Join(err, e)
		}
	}
	if err != nil {
		return err
	}
	if left, err := s.files(); err != nil || len(left) > 0 {
		return errors.Join(err, fmt.Errorf("the upload storage still holds %d files after clearing it", len(left)))
	}
	return nil
}

// Text is the summary printed on the terminal.
func (r *putReport) Text() string {
	return summaryText(r.Runs, r.Command, r.Profiles, "tracked upload figures (median throughput)", track(putTrackedFigures, r.Profiles))
}

// section is the put mode's part of docs/BENCHMARKS.md.
func (r *putReport) section() string {
	var b strings.Builder
	b.WriteString(putSectionStart + "\n## Uploads\n\n")
	b.WriteString("One file of random bytes per profile sent to an upload server, timed from the start of the\n")
	b.WriteString("client process to its exit; then the server's storage is searched for a file with the test\n")
	b.WriteString("file's sha-256 (not timed) and the run's upload is removed. Tools run interleaved, the first\n")
	b.WriteString("one rotating each round, each after `sync`. A run that reaches its time cap is killed and\n")
	b.WriteString("counts with the bytes the server stored. ferry serve makes every acknowledged offset durable\n")
	b.WriteString("(fsync) before it answers; tusd does not.\n\n")
	b.WriteString("### Tracked upload figures\n\n")
	writeTrackedMarkdown(&b, track(putTrackedFigures, r.Profiles))
	writeProvenance(&b, "###", r.Command, r.Started, r.Finished, fmt.Sprintf("%d round(s) per tool, server and profile", r.Runs), r.Machine, r.Tools)
	for _, p := range r.Profiles {
		p.writeMarkdown(&b, "###")
	}
	b.WriteString(putSectionEnd + "\n")
	return b.String()
}
