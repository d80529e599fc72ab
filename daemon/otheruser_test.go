package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/internal/bgapi"
)

// nobody is the other user of these tests.
const nobody = 65534

// TestOtherUserChild is the other user's process: it runs only when a
// test re-executes this binary as that user with FERRY_OTHER_USER set to
// "connect|SOCKET|STOPFILE" (connect and ask over and over until STOPFILE
// exists, then print the counts as JSON) or "serve|SOCKET" (serve the
// socket, printing "ready" and then how many bytes each connection sent).
func TestOtherUserChild(t *testing.T) {
	role, args, _ := strings.Cut(os.Getenv("FERRY_OTHER_USER"), "|")
	switch role {
	case "":
		t.Skip("runs as another user's process for TestSecondUser and TestForeignDaemon")
	case "connect":
		sock, stop, _ := strings.Cut(args, "|")
		fmt.Println("ready")
		json.NewEncoder(os.Stdout).Encode(hammer(sock, stop))
	case "serve":
		serveAsOther(t, args)
	}
}

type hammerCounts struct{ Attempts, Connected, Answered int }

// hammer connects to sock and asks for the daemon's health until stop
// exists (at most 2,000,000 times or a minute).
func hammer(sock, stop string) hammerCounts {
	var n hammerCounts
	for deadline := time.Now().Add(time.Minute); n.Attempts < 2_000_000 && time.Now().Before(deadline); n.Attempts++ {
		if n.Attempts%100 == 0 {
			if _, err := os.Stat(stop); err == nil {
				break
			}
		}
		c, err := net.Dial("unix", sock)
		if err != nil {
			continue
		}
		n.Connected++
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /v1/health HTTP/1.1\r\nHost: ferry\r\nConnection: close\r\n\r\n")
		if b, _ := io.ReadAll(c); len(b) > 0 {
			n.Answered++
		}
		c.Close()
	}
	return n
}

func serveAsOther(t *testing.T, sock string) {
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(sock, 0o777) // anyone may connect: the client must not
	fmt.Println("ready")
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.SetReadDeadline(time.Now().Add(time.Minute))
		b, _ := io.ReadAll(c)
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
		c.Close()
		fmt.Println("read", len(b))
	}
}

// asOther starts this test binary as the other user in role.
func asOther(t *testing.T, role string) (*exec.Cmd, io.Reader) {
	t.Helper()
	if os.Geteuid() != 0 {
		needRoot(t, "needs root to run a process as another user; TestPeerOfAnotherUser and TestClientRefusesForeignDaemon cover the checks with an injected uid")
	}
	// The binary where the other user can run it.
	dir, err := os.MkdirTemp("", "ferry-other-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "daemon.test")
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestOtherUserChild$")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FERRY_OTHER_USER="+role)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, out
}

// sharedSocketDir is a directory like /tmp: everyone may create files in
// it, and it is sticky.
func sharedSocketDir(t *testing.T) string {
	dir := shortDir(t)
	if err := os.Chmod(dir, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Another user hammers the socket path, in a directory everyone can reach,
// while the daemon starts forty times with umask 000: not one request of
// theirs is answered.
func TestSecondUserRefused(t *testing.T) {
	state := t.TempDir()
	shared := sharedSocketDir(t)
	sock := filepath.Join(shared, "d.sock")
	stop := filepath.Join(shared, "stop") // where the other user can see it
	cmd, out := asOther(t, "connect|"+sock+"|"+stop)
	r := bufio.NewReader(out)
	if l, err := r.ReadString('\n'); l != "ready\n" {
		t.Fatalf("the other user: %q %v", l, err)
	}
	defer umask(0)()
	const starts = 40
	for range starts {
		cfg := quietConfig(state, sock)
		cfg.Ready = func() { // up for a while: the daemon's own user is answered
			c := bgapi.NewClient(sock)
			defer c.Close()
			for range 300 {
				if _, err := c.Health(context.Background()); err != nil {
					t.Errorf("the daemon's own user: %v", err)
				}
			}
		}
		if err := tryStart(t, cfg); err != errStarted {
			t.Fatal(err)
		}
	}
	os.WriteFile(stop, nil, 0o644)
	var n hammerCounts
	if err := json.NewDecoder(r).Decode(&n); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	t.Logf("another user: %d attempts during %d starts with umask 000, %d connected, %d answered", n.Attempts, starts, n.Connected, n.Answered)
	if n.Answered != 0 || n.Attempts == 0 {
		t.Errorf("another user was answered %d times in %d attempts", n.Answered, n.Attempts)
	}
}

// A socket served by another user's process gets nothing from the client
// or from a background session: not one byte of a request.
func TestForeignDaemonRefused(t *testing.T) {
	sock := filepath.Join(sharedSocketDir(t), "d.sock")
	cmd, out := asOther(t, "serve|"+sock)
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("the other user's server: %q %v", lines.Text(), lines.Err())
	}
	c := bgapi.NewClient(sock)
	defer c.Close()
	_, err := c.Health(context.Background())
	var fe *bgapi.ForeignDaemonError
	if !errors.As(err, &fe) || fe.UID != nobody {
		t.Fatalf("client: %v, want a ForeignDaemonError naming uid %d", err, nobody)
	}
	s, err := ferry.NewSession(ferry.Config{Background: "app", Daemon: ferry.DaemonConfig{StateDir: t.TempDir(), Socket: sock,
		Command: []string{"/bin/false"}}})
	if err == nil {
		s.Close()
	}
	if !errors.Is(err, bgapi.ErrForeignDaemon) {
		t.Fatalf("background session: %v, want ErrForeignDaemon", err)
	}
	cmd.Process.Signal(os.Interrupt)
	cmd.Process.Kill()
	for lines.Scan() {
		if lines.Text() != "read 0" {
			t.Errorf("the other user's server: %s", lines.Text())
		}
	}
}
