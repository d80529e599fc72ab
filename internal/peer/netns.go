package peer

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// NetnsDir is where `ip netns` keeps the named network namespaces.
const NetnsDir = "/run/netns"

// NetnsPath returns the file of the named network namespace: name itself
// when it is an absolute path, else NetnsDir/name.
func NetnsPath(name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(NetnsDir, name)
}

// NetnsExec returns argv made to run inside the named network namespace
// (`ip netns exec NAME argv...`, which execs argv: the process is argv's,
// with its resource usage). An empty name returns argv unchanged.
func NetnsExec(name string, argv []string) []string {
	if name == "" {
		return argv
	}
	ip := "ip"
	if p, err := FindBinary("ip"); err == nil {
		ip = p
	}
	return append([]string{ip, "netns", "exec", name}, argv...)
}

// InNetns runs fn on an OS thread that has joined the named network
// namespace, and waits for it. Sockets fn opens belong to that namespace
// and keep working after InNetns returns. An empty name runs fn here.
//
// fn runs on its own goroutine locked to its thread; the thread goes back
// to this process's namespace afterwards, or, if it cannot, ends with the
// goroutine, so no other goroutine ever runs in the namespace.
func InNetns(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	target, err := os.Open(NetnsPath(name))
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", name, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread ends with this goroutine.
			errc <- fmt.Errorf("setns back from %s: %w (after: %v)", name, err, ferr)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// DialContextIn returns a DialContext function (for http.Transport) whose
// connections start in the named network namespace. An empty name dials
// from here.
func DialContextIn(name string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	if name == "" {
		return d.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := InNetns(name, func() error {
			var err error
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// freePortIn is freePortOn run inside the named network namespace.
func freePortIn(netns, host string) (int, error) {
	var port int
	err := InNetns(netns, func() error {
		var err error
		port, err = freePortOn(host)
		return err
	})
	return port, err
}
