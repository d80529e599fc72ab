// Command wanfwd is the delay/loss forwarder of ferry's WAN emulation. It
// runs in the router network namespace that internal/peer/wan sets up,
// reads every forwarded IP packet from a TUN device, drops it at random or
// holds it for the one-way delay, and writes it back for the kernel to
// route on (where tc tbf limits the rate).
//
//	wanfwd -dev wan0 -client-net 10.77.2.0/24 -delay 25ms -loss 0.01 -stats FILE
//
// The statistics (JSON, see wan.Stats) are written to -stats when it is
// attached and ready, on SIGUSR1, and on exit (SIGTERM, SIGINT, -lifetime).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ferryhq/ferry/internal/peer/wan"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wanfwd:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		cfg                  wan.ForwarderConfig
		delay, delayDown     time.Duration
		delayUp              time.Duration
		loss, lossDown       float64
		lossUp               float64
		clientNet, statsPath string
		lifetime             time.Duration
	)
	flag.StringVar(&cfg.Dev, "dev", "wan0", "TUN `device` to read and write")
	flag.StringVar(&clientNet, "client-net", "", "the client's IPv4 `prefix`: packets to it travel down, others up")
	flag.DurationVar(&delay, "delay", 0, "one-way delay of both directions")
	flag.DurationVar(&delayDown, "delay-down", -1, "one-way delay towards the client (default -delay)")
	flag.DurationVar(&delayUp, "delay-up", -1, "one-way delay towards the server (default -delay)")
	flag.Float64Var(&loss, "loss", 0, "drop probability of both directions (0.01 = 1%)")
	flag.Float64Var(&lossDown, "loss-down", -1, "drop probability towards the client (default -loss)")
	flag.Float64Var(&lossUp, "loss-up", -1, "drop probability towards the server (default -loss)")
	flag.IntVar(&cfg.Limit, "limit", 16384, "packets held at most; more are dropped")
	flag.Uint64Var(&cfg.Seed, "seed", uint64(time.Now().UnixNano()), "seed of the random drops")
	flag.StringVar(&statsPath, "stats", "", "write statistics (JSON) to `FILE`")
	flag.DurationVar(&lifetime, "lifetime", 6*time.Hour, "exit after this long, whatever happens")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	var err error
	if cfg.ClientNet, err = netip.ParsePrefix(clientNet); err != nil {
		return fmt.Errorf("-client-net: %w", err)
	}
	cfg.Down = wan.Impairment{Delay: orDefault(delayDown, delay), Loss: orDefault(lossDown, loss)}
	cfg.Up = wan.Impairment{Delay: orDefault(delayUp, delay), Loss: orDefault(lossUp, loss)}
	for _, imp := range []wan.Impairment{cfg.Down, cfg.Up} {
		if imp.Delay < 0 || imp.Delay > 10*time.Second || imp.Loss < 0 || imp.Loss > 1 {
			return fmt.Errorf("delay must be in [0, 10s] and loss in [0, 1]")
		}
	}

	f, err := wan.OpenForwarder(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), lifetime)
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	write := func() error { return writeStats(statsPath, f.Stats()) }
	if err := write(); err != nil {
		return err
	}
	go func() {
		for s := range sigs {
			if s == syscall.SIGUSR1 {
				if err := write(); err != nil {
					fmt.Fprintln(os.Stderr, "wanfwd:", err)
				}
				continue
			}
			cancel()
			return
		}
	}()
	fmt.Fprintf(os.Stderr, "wanfwd: forwarding on %s: down %v/%.4g loss, up %v/%.4g loss, client %v\n",
		cfg.Dev, cfg.Down.Delay, cfg.Down.Loss, cfg.Up.Delay, cfg.Up.Loss, cfg.ClientNet)
	runErr := f.Run(ctx)
	st := f.Stats()
	b, _ := json.Marshal(st)
	fmt.Fprintf(os.Stderr, "wanfwd: done: %s\n", b)
	return errors.Join(runErr, writeStats(statsPath, st))
}

// writeStats replaces path with st as JSON, atomically.
func writeStats(path string, st wan.Stats) error {
	if path == "" {
		return nil
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// orDefault is v, or def when v is negative (not given).
func orDefault[T time.Duration | float64](v, def T) T {
	if v < 0 {
		return def
	}
	return v
}
