package main

import (
	"context"
	"sort"

	"github.com/ferryhq/ferry/internal/peer"
)

// A Profile is the network between the client and the origin. It starts an
// origin serving a directory and tells how to run a client so that its
// traffic crosses that network.
type Profile interface {
	// Name is the profile's name on the command line and in the report.
	Name() string
	// Describe says in one sentence what the network is.
	Describe() string
	// Start brings the network and an origin serving dataDir up.
	Start(ctx context.Context, dataDir string) (*Env, error)
}

// Env is a running profile.
type Env struct {
	// BaseURL is the origin's URL for dataDir, without a trailing slash.
	BaseURL string
	// Origin names the server software and its version.
	Origin string
	// Wrap turns a client's argv into the argv that runs it on the
	// client's side of the network (e.g. inside a network namespace).
	Wrap func(argv []string) []string
	// Close stops the origin and tears the network down.
	Close func() error
}

var profiles = map[string]Profile{
	"loopback": loopbackProfile{},
}

func lookupProfile(name string) (Profile, bool) {
	p, ok := profiles[name]
	return p, ok
}

func profileNames() []string {
	var names []string
	for n := range profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// loopbackProfile: client and nginx on 127.0.0.1 of this machine, no
// emulated delay or loss. It measures the tools' own cost: CPU, syscalls,
// disk writes.
type loopbackProfile struct{}

func (loopbackProfile) Name() string { return "loopback" }

func (loopbackProfile) Describe() string {
	return "client and nginx on 127.0.0.1 of the same machine; no added delay, loss or rate limit"
}

func (loopbackProfile) Start(ctx context.Context, dataDir string) (*Env, error) {
	ng, err := peer.StartNginx(ctx, peer.NginxConfig{Root: dataDir, Listen: "127.0.0.1:0"})
	if err != nil {
		return nil, err
	}
	return &Env{
		BaseURL: ng.URL,
		Origin:  ng.Version,
		Wrap:    func(argv []string) []string { return argv },
		Close:   ng.Stop,
	}, nil
}
