package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// maxRuns bounds the reruns of one killed transfer.
const maxRuns = 60

// throttled serves content at about rate bytes per second per response.
func throttled(content []byte, rate int) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"k1"`)
		http.ServeContent(&slowWriter{ResponseWriter: w, rate: rate}, r, "f", time.Time{}, strings.NewReader(string(content)))
	}))
}

type slowWriter struct {
	http.ResponseWriter
	rate int
}

func (s *slowWriter) Write(p []byte) (int, error) {
	const piece = 16 << 10
	n := 0
	for len(p) > 0 {
		k := min(piece, len(p))
		m, err := s.ResponseWriter.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		p = p[k:]
		time.Sleep(time.Duration(k) * time.Second / time.Duration(s.rate))
	}
	return n, nil
}

func attackKill9(ctx context.Context, e *env, r *result) error {
	dir := e.mkdir("kill9")
	content := e.randomBytes(24 << 20)
	want := sum(content)
	origin := throttled(content, 6<<20)
	defer origin.Close()

	// ferry get, killed until it finishes.
	for i := range e.n(4) {
		out := filepath.Join(dir, fmt.Sprintf("get%d.bin", i))
		args := []string{"get", "-q", origin.URL + "/f", "-o", out, "-x", strconv.Itoa(1 + e.rng.IntN(8))}
		if err := killUntilDone(ctx, e, r, dir, fmt.Sprintf("get %d", i), args, func(cli) string { return fileSHA256(out) }, want); err != nil {
			return err
		}
	}

	// ferry put into ferry serve, killed until it finishes.
	root := e.mkdir("kill9-root")
	s, err := startServe(ctx, e, root, filepath.Join(root, "up"), "--token", token)
	if err != nil {
		return err
	}
	defer s.Stop()
	file := filepath.Join(dir, "up.bin")
	if err := os.WriteFile(file, content, 0o644); err != nil {
		return err
	}
	for i := range e.n(4) {
		args := []string{"put", "-q", "--json", file, s.URL + "/files/", "-H", "Authorization: Bearer " + token,
			"--limit-rate", "8M", "-x", strconv.Itoa(1 + e.rng.IntN(4))}
		stored := func(res cli) string {
			var rep struct {
				Location string `json:"location"`
			}
			if json.Unmarshal(res.stdout, &rep) != nil || rep.Location == "" {
				return "no location in --json"
			}
			req, _ := http.NewRequest("GET", rep.Location, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err.Error()
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return sum(b)
		}
		if err := killUntilDone(ctx, e, r, dir, fmt.Sprintf("put %d", i), args, stored, want); err != nil {
			return err
		}
	}
	s.check(r, "the kill attack")
	return nil
}

// killUntilDone runs args, killing each run at a random moment, until a
// run ends by itself; then result must be want.
func killUntilDone(ctx context.Context, e *env, r *result, dir, what string, args []string, result func(cli) string, want string) error {
	for run := range maxRuns {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := time.Duration(100+e.rng.IntN(1400)) * time.Millisecond
		if run > maxRuns/2 {
			d = time.Minute // enough kills: let it finish
		}
		res, killed := runKilled(ctx, e, dir, d, args...)
		if killed {
			r.inputs++
			continue
		}
		switch {
		case res.crashed():
			r.crash("%s after %d kills: %s", what, run, tail(res.stderr, 10))
		case res.code != 0:
			r.bad("%s after %d kills: exit %d: %s", what, run, res.code, tail(res.stderr, 3))
		default:
			if got := result(res); got != want {
				r.loss("%s after %d kills: exit 0, result %.16s", what, run, got)
			}
		}
		return nil
	}
	r.bad("%s: not done after %d runs", what, maxRuns)
	return nil
}
