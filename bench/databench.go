package main

// The data mode: many small data tasks (Session.Data) against nginx on
// loopback, one after another over one session, against a plain net/http
// client in the same sitting: what the session's bookkeeping (a task, its
// events and metrics for every request) costs an API client.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/internal/peer"
)

const (
	dataSectionStart = "<!-- data-tasks -->"
	dataSectionEnd   = "<!-- /data-tasks -->"
	// dataGoal is the least share of net/http's requests per second the
	// project aims at, while recording metrics.
	dataGoal = 0.9
)

var dataDocSection = docSection{dataSectionStart, dataSectionEnd}

func dataFlags(fs *flag.FlagSet, c *common) func(context.Context) error {
	n := fs.Int("n", 1000, "requests per run")
	rounds := fs.Int("rounds", 5, "runs of each client, interleaved")
	size := fs.Int("size", 4<<10, "bytes of the body each request gets")
	return func(ctx context.Context) error {
		if *n <= 0 || *rounds <= 0 || *size <= 0 {
			return fmt.Errorf("-n, -rounds and -size must be positive")
		}
		return runDataBench(ctx, *n, *rounds, *size, c.out)
	}
}

// dataClient is one way of making the requests: a name, and a run of n
// GETs of url, each body read whole.
type dataClient struct {
	name string
	run  func(ctx context.Context, url string, n int) error
}

func dataClients() ([]dataClient, func(), error) {
	plain := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	def, err := ferry.NewSession(ferry.Config{})
	if err != nil {
		return nil, nil, err
	}
	eph, err := ferry.NewSession(ferry.EphemeralConfig())
	if err != nil {
		def.Close()
		return nil, nil, err
	}
	viaSession := func(s *ferry.Session) func(context.Context, string, int) error {
		return func(ctx context.Context, url string, n int) error {
			for range n {
				t, err := s.Data(ctx, ferry.DataRequest{URL: url})
				if err != nil {
					return err
				}
				res, err := t.Wait(ctx)
				if err != nil {
					return err
				}
				if res.StatusCode != http.StatusOK {
					return fmt.Errorf("status %d", res.StatusCode)
				}
				s.Forget(t)
			}
			return nil
		}
	}
	clients := []dataClient{
		{"net/http", func(ctx context.Context, url string, n int) error {
			for range n {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				resp, err := plain.Do(req)
				if err != nil {
					return err
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil {
					return err
				}
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			return nil
		}},
		{"ferry (default)", viaSession(def)},
		{"ferry (ephemeral)", viaSession(eph)},
	}
	return clients, func() { plain.CloseIdleConnections(); def.Close(); eph.Close() }, nil
}

func runDataBench(ctx context.Context, n, rounds, size int, out string) error {
	tmp, err := os.MkdirTemp("", "ferry-bench-data-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "small.json"), []byte(strings.Repeat("x", size)), 0o644); err != nil {
		return err
	}
	ng, err := peer.StartNginx(ctx, peer.NginxConfig{Root: root})
	if err != nil {
		return err
	}
	defer ng.Stop()
	url := ng.URL + "/small.json"
	clients, closeAll, err := dataClients()
	if err != nil {
		return err
	}
	defer closeAll()
	// A warm-up run each: connections and the file in the page cache.
	for _, c := range clients {
		if err := c.run(ctx, url, min(n, 100)); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	perSec := map[string][]float64{}
	for r := range rounds {
		// Rotated, so that no client always runs first.
		for i := range clients {
			c := clients[(i+r)%len(clients)]
			start := time.Now()
			if err := c.run(ctx, url, n); err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			rate := float64(n) / time.Since(start).Seconds()
			perSec[c.name] = append(perSec[c.name], rate)
			logf("data %-18s round %d/%d: %8.0f requests/s", c.name, r+1, rounds, rate)
		}
	}
	text := dataSection(clients, perSec, n, rounds, size)
	fmt.Println()
	fmt.Print(text)
	return writeSection(out, dataDocSection, text, daemonDocSection, hlsDocSection, putDocSection, streamDocSection)
}

// dataSection is the report's section: median requests per second of
// each client, and each ferry's share of net/http's.
func dataSection(clients []dataClient, perSec map[string][]float64, n, rounds, size int) string {
	var b strings.Builder
	b.WriteString(dataSectionStart + "\n")
	b.WriteString("## Data tasks\n\n")
	fmt.Fprintf(&b, "%d GETs of a %d-byte body from nginx on loopback, one after another, per run; %d runs of each client, interleaved and rotated; median requests per second. ", n, size, rounds)
	b.WriteString("ferry runs each request as a data task on one session (a task, its events and its transaction metrics each time); net/http is a plain `http.Client`. ")
	fmt.Fprintf(&b, "Goal: at least %.1fx net/http's rate.\n\n", dataGoal)
	b.WriteString("| client | requests/s | vs net/http | goal |\n|---|---:|---:|---|\n")
	base := median(perSec[clients[0].name])
	for _, c := range clients {
		m := median(perSec[c.name])
		ratio, goal := m/base, ""
		if c.name != clients[0].name {
			goal = "missed"
			if ratio >= dataGoal {
				goal = "met"
			}
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.2fx | %s |\n", c.name, m, ratio, goal)
	}
	b.WriteString("\nA warm URL cache (the goal of 10x the network case) is not measured: ferry has no URL cache yet.\n")
	b.WriteString(dataSectionEnd + "\n")
	return b.String()
}
