package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ferryhq/ferry/internal/peer"
	"github.com/ferryhq/ferry/internal/peer/wan"
)

// A Profile is the network between the client and the origin, with the
// file size and time cap that suit it.
type Profile struct {
	Name     string
	Describe string
	// Size is the test file's size; QuickSize is -quick's.
	Size, QuickSize int64
	// TimeCap ends a run that takes longer (see Run.Capped); QuickCap
	// is -quick's.
	TimeCap, QuickCap time.Duration
	// Link is the emulated WAN link; nil means loopback.
	Link *wan.Config
	// LimitRate is nginx's limit_rate per connection ("" is none), and
	// SendfileMaxChunk its sendfile_max_chunk (see peer.Location).
	LimitRate, SendfileMaxChunk string
	// Tools, when set, limits the profile to these tools (of those
	// chosen with -tools).
	Tools []string
}

// tools returns the chosen tools this profile runs.
func (p Profile) tools(chosen []Tool) []Tool {
	if len(p.Tools) == 0 {
		return chosen
	}
	var out []Tool
	for _, t := range chosen {
		if slices.Contains(p.Tools, t.Spec) {
			out = append(out, t)
		}
	}
	return out
}

// LinkRate is the link's rate in bit/s, 0 when there is no emulated link.
func (p Profile) LinkRate() int64 {
	if p.Link == nil {
		return 0
	}
	return p.Link.Rate
}

// profiles in the order they run and are reported.
var profiles = []Profile{
	{
		Name:     "loopback",
		Describe: "client and origin on 127.0.0.1 of the same machine; no added delay, loss or rate limit. It measures the tools' own cost: CPU, system calls, disk writes",
		Size:     1 << 30, QuickSize: 64 << 20,
		TimeCap: 60 * time.Second, QuickCap: 20 * time.Second,
	},
	{
		Name:     "wan50",
		Describe: "an emulated WAN link: 50 ms round trip, 100 Mbit/s each way, no loss",
		Size:     192 << 20, QuickSize: 16 << 20,
		TimeCap: 60 * time.Second, QuickCap: 20 * time.Second,
		Link: &wan.Config{RTT: 50 * time.Millisecond, Rate: 100e6},
	},
	{
		Name:     "wan50-loss1",
		Describe: "an emulated WAN link: 50 ms round trip, 100 Mbit/s each way, 1% random packet loss each way",
		Size:     64 << 20, QuickSize: 8 << 20,
		TimeCap: 30 * time.Second, QuickCap: 20 * time.Second,
		Link: &wan.Config{RTT: 50 * time.Millisecond, Rate: 100e6, Loss: 0.01},
	},
	{
		Name:     "capped",
		Describe: "client and nginx on 127.0.0.1, nginx limiting each connection to 2 MiB/s (`limit_rate 2m`, with `sendfile_max_chunk 64k` so that the rate holds from each response's first bytes), as servers and CDNs that cap per-connection speed do",
		Size:     96 << 20, QuickSize: 16 << 20,
		TimeCap: 20 * time.Second, QuickCap: 10 * time.Second,
		LimitRate: "2m", SendfileMaxChunk: "64k",
	},
	{
		Name:     "big",
		Describe: "a 4 GiB file over loopback, to show the memory a long segmented download needs: peak RSS must not grow with the file",
		Size:     4 << 30, QuickSize: 256 << 20,
		TimeCap: 2 * time.Minute, QuickCap: 30 * time.Second,
		Tools: []string{"aria2c-x8", "ferry-x8", "ferry"},
	},
}

func lookupProfile(name string) (Profile, bool) {
	for _, p := range profiles {
		if p.Name == name {
			return p, true
		}
	}
	return Profile{}, false
}

func profileNames() []string {
	var names []string
	for _, p := range profiles {
		names = append(names, p.Name)
	}
	return names
}

// origins are the servers a profile can run.
var origins = []string{"nginx", "ferry-serve"}

// Env is a running profile: the network and an origin on it.
type Env struct {
	// BaseURL is the origin's URL for the data directory, without a
	// trailing slash.
	BaseURL string
	// Origin names the server software and its version.
	Origin string
	// Wrap turns a client's argv into the argv that runs it on the
	// client's side of the network.
	Wrap func(argv []string) []string
	// Net is the emulated link, nil on loopback.
	Net *wan.Net
	// CC describes the TCP congestion control in use.
	CC string

	closers []func() error
}

// closeWith has Close call f, before what was added earlier.
func (e *Env) closeWith(f func() error) { e.closers = append(e.closers, f) }

// Close stops the origin and tears the network down; it may be called
// more than once.
func (e *Env) Close() error {
	var errs []error
	for i := len(e.closers) - 1; i >= 0; i-- {
		errs = append(errs, e.closers[i]())
	}
	e.closers = nil
	return errors.Join(errs...)
}

type startDeps struct {
	ferryBin  string
	forwarder string // wanfwd
	tusdBin   string // for uploads into tusd
	// lifetime bounds a profile's emulated link, in case teardown never
	// comes.
	lifetime time.Duration
}

// errUnsupported marks a profile and origin that do not go together.
var errUnsupported = errors.New("not supported")

// start brings the profile's network up with origin serving dataDir.
func (p Profile) start(ctx context.Context, origin, dataDir string, deps startDeps) (_ *Env, err error) {
	env, listen, netns, err := p.network(ctx, deps)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			env.Close()
		}
	}()

	var locations []peer.Location
	prefix := ""
	if p.LimitRate != "" {
		if origin != "nginx" {
			return nil, fmt.Errorf("%w: %s needs nginx's limit_rate", errUnsupported, p.Name)
		}
		prefix = "/capped"
		locations = append(locations, peer.Location{Path: prefix + "/", LimitRate: p.LimitRate, SendfileMaxChunk: p.SendfileMaxChunk})
	}
	switch origin {
	case "nginx":
		ng, err := peer.StartNginx(ctx, peer.NginxConfig{Root: dataDir, Listen: listen, Locations: locations, Netns: netns})
		if err != nil {
			return nil, err
		}
		env.closeWith(ng.Stop)
		env.BaseURL = ng.URL + prefix
		env.Origin = ng.Version
	case "ferry-serve":
		srv, err := peer.StartFerryServe(ctx, peer.FerryServeConfig{Bin: deps.ferryBin, Root: dataDir, Listen: listen, Netns: netns})
		if err != nil {
			return nil, err
		}
		env.closeWith(srv.Stop)
		env.BaseURL = srv.URL
		env.Origin = "ferry serve"
	default:
		return nil, fmt.Errorf("unknown origin %q (have: %s)", origin, strings.Join(origins, ", "))
	}
	return env, nil
}

// network brings the profile's network up: env without a server yet, and
// the address and namespace a server listens at.
func (p Profile) network(ctx context.Context, deps startDeps) (_ *Env, listen, netns string, err error) {
	env := &Env{Wrap: func(argv []string) []string { return argv }}
	listen, netns = "127.0.0.1:0", ""
	env.CC = hostCC() + " (the machine's default)"
	if p.Link != nil {
		cfg := *p.Link
		cfg.Forwarder = deps.forwarder
		cfg.Logf = logf
		cfg.Lifetime = deps.lifetime
		n, err := wan.Start(ctx, cfg)
		if err != nil {
			return nil, "", "", err
		}
		env.closeWith(n.Close)
		env.Net = n
		env.CC = n.CC + " (server and client, set on their routes over the link)"
		listen, netns = wan.ServerAddr+":0", n.Server
		env.Wrap = func(argv []string) []string { return peer.NetnsExec(n.Client, argv) }
	}
	return env, listen, netns, nil
}

// hostCC is this machine's default TCP congestion control.
func hostCC() string {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
