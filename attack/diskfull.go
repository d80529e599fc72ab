package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func init() {
	register(class{"diskfull", "ferry get and ferry serve's uploads on a filesystem that fills up mid-transfer, then grows: the same command must finish right", attackDiskFull})
}

// withSmallDisk runs script in a new mount namespace where dir is a tmpfs
// of size bytes. The script talks to the caller over its stdin and stdout
// (see tmpfsShell). unshare needs root, or user namespaces for -r.
func withSmallDisk(ctx context.Context, dir string, size int64, script string) (*exec.Cmd, io.WriteCloser, *bufio.Reader, error) {
	args := []string{"--mount", "--propagation", "private"}
	if os.Geteuid() != 0 {
		args = append(args, "--map-root-user")
	}
	full := fmt.Sprintf("set -e\nmount -t tmpfs -o size=%d ferry-attack %s\n%s", size, dir, script)
	cmd := exec.CommandContext(ctx, "unshare", append(args, "sh", "-c", full)...)
	cmd.Stderr = io.Discard // ferry's own messages; the outcome is judged from exit codes and files
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, fmt.Errorf("unshare (a mount namespace for a small tmpfs): %w", err)
	}
	return cmd, in, bufio.NewReader(out), nil
}

// expect reads lines until one starts with prefix and returns the rest.
func expect(br *bufio.Reader, prefix string) (string, error) {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", fmt.Errorf("waiting for %q: %w", prefix, err)
		}
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			return strings.TrimSpace(rest), nil
		}
	}
}

func attackDiskFull(ctx context.Context, e *env, r *result) error {
	content := e.randomBytes(12 << 20)
	want := sum(content)
	origin := throttled(content, 64<<20)
	defer origin.Close()
	for i := range e.n(3) {
		if err := diskFullGet(ctx, e, r, i, origin.URL+"/f", want); err != nil {
			return err
		}
		if err := diskFullPut(ctx, e, r, i, content, want); err != nil {
			return err
		}
	}
	return nil
}

// diskFullGet downloads into a tmpfs too small for the file, then grows
// it and runs the same command again.
func diskFullGet(ctx context.Context, e *env, r *result, i int, url, want string) error {
	dir := e.mkdir("full-get")
	script := fmt.Sprintf(`
cd %[1]s
set +e
%[2]s get -q %[3]s -o %[1]s/f.bin -x %[4]d; echo "first $?"
test -e %[1]s/f.bin && echo "final-name-exists"
mount -o remount,size=%[5]d %[1]s
%[2]s get -q %[3]s -o %[1]s/f.bin -x %[4]d; echo "second $?"
echo "sum $(sha256sum %[1]s/f.bin 2>/dev/null | cut -d' ' -f1)"
`, dir, e.bin, url, 1+e.rng.IntN(8), 64<<20)
	script = "export XDG_STATE_HOME=" + dir + "/.state\n" + script
	cmd, in, out, err := withSmallDisk(ctx, dir, int64(4<<20+e.rng.IntN(6<<20)), script)
	if err != nil {
		return err
	}
	defer cmd.Wait()
	defer in.Close()
	r.inputs++
	first, err := expect(out, "first ")
	if err != nil {
		return err
	}
	rest, _ := io.ReadAll(out)
	text := string(rest)
	if first != "1" {
		r.bad("get %d on a full disk: exit %s, want 1", i, first)
	}
	if strings.Contains(text, "final-name-exists") {
		r.bad("get %d on a full disk left a file under the final name", i)
	}
	if !strings.Contains(text, "second 0") {
		r.bad("get %d after the disk grew: %s", i, strings.TrimSpace(text))
	} else if !strings.Contains(text, "sum "+want) {
		r.loss("get %d after the disk grew: the file is wrong", i)
	}
	return nil
}

// diskFullPut uploads into a ferry serve whose uploads directory is a
// tmpfs too small for the file, then grows it and runs ferry put again.
func diskFullPut(ctx context.Context, e *env, r *result, i int, content []byte, want string) error {
	dir := e.mkdir("full-put")
	file := filepath.Join(e.mkdir("full-put-src"), "up.bin")
	if err := os.WriteFile(file, content, 0o644); err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := l.Addr().String()
	l.Close()
	script := fmt.Sprintf(`
mkdir -p %[1]s/root
%[2]s serve -q --root %[1]s/root --uploads %[1]s/up --addr %[3]s --token %[4]s &
echo started
read grow
mount -o remount,size=%[5]d %[1]s
echo grown
read done
kill $!
`, dir, e.bin, addr, token, 64<<20)
	cmd, in, out, err := withSmallDisk(ctx, dir, int64(4<<20+e.rng.IntN(6<<20)), script)
	if err != nil {
		return err
	}
	defer cmd.Wait()
	defer in.Close()
	if _, err := expect(out, "started"); err != nil {
		return err
	}
	base := "http://" + addr
	if err := waitUp(ctx, base+"/healthz"); err != nil {
		return err
	}
	work := e.mkdir("full-put-client")
	args := []string{"put", "-q", "--json", file, base + "/files/", "-H", "Authorization: Bearer " + token, "-x", strconv.Itoa(1 + e.rng.IntN(4)), "--retry", "2"}
	r.inputs++
	first := runFerry(ctx, e, work, 2*time.Minute, nil, args...)
	switch {
	case r.broke(first, fmt.Sprintf("put %d into a full disk", i)):
	case first.code == 0:
		r.bad("put %d into a disk too small for it: exit 0", i)
	}
	fmt.Fprintln(in, "grow")
	if _, err := expect(out, "grown"); err != nil {
		return err
	}
	second := runFerry(ctx, e, work, 2*time.Minute, nil, args...)
	defer fmt.Fprintln(in, "done") // after the check below, which needs the server
	if second.code != 0 {
		r.bad("put %d after the disk grew: exit %d: %s", i, second.code, tail(second.stderr, 3))
		return nil
	}
	var rep struct {
		Location string `json:"location"`
	}
	if err := json.Unmarshal(second.stdout, &rep); err != nil || rep.Location == "" {
		r.bad("put %d: no location in --json", i)
		return nil
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", rep.Location, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if sum(got) != want {
		r.loss("put %d after the disk grew: the server holds other bytes (%d of %d)", i, len(got), len(content))
	}
	return nil
}

// waitUp polls url until it answers 200, for up to 15 s.
func waitUp(ctx context.Context, url string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer within 15 s", url)
}
