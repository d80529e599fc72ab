// Package wan emulates a wide-area link on one Linux machine, for ferry's
// benchmark: three network namespaces it makes itself, a server and a
// client joined through a router,
//
//	NAME-srv            NAME-rtr                         NAME-cli
//	eth0 10.77.1.1 ==== srv 10.77.1.254 | cli 10.77.2.254 ==== eth0 10.77.2.1
//	                        (veth pairs; wan0: TUN)
//
// where every packet the router forwards passes through wanfwd (a small
// program of this package) on the TUN device wan0 for its one-way delay
// and random loss, and then through a token bucket (tc tbf) on the
// router's way out for the rate. Segmentation and receive offloads are off
// on every veth, so loss, delay and rate act on real 1500-byte packets.
// The server and client use a loss-based congestion control (cubic, else
// reno) on the routes over the link, whatever the machine's default.
//
// The addresses exist only inside the namespaces, and no traffic leaves
// them. Start removes what a crashed earlier run left; Close undoes
// everything and may be called more than once. Needs root.
package wan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferryhq/ferry/internal/peer"
)

// Addresses inside the namespaces.
const (
	ServerAddr   = "10.77.1.1"
	ClientAddr   = "10.77.2.1"
	routerServer = "10.77.1.254"
	routerClient = "10.77.2.254"
	clientNet    = "10.77.2.0/24"
	// tunDev is the router's TUN device; routeTable sends every packet
	// arriving from the server or the client to it.
	tunDev     = "wan0"
	routeTable = "100"
	mtu        = 1500
)

// NamePrefix starts the name of every namespace this package makes:
// NamePrefix + PID + "-srv" (and -rtr, -cli).
const NamePrefix = "ferrywan-"

// Config describes the emulated link. Both directions get the same delay,
// loss and rate.
type Config struct {
	// Name prefixes the three namespaces: Name-srv, Name-rtr, Name-cli.
	// The default is NamePrefix followed by this process's ID, which
	// Start's clean-up of earlier runs recognises.
	Name string
	// RTT is the round-trip time the link adds: RTT/2 each way.
	RTT time.Duration
	// Rate is each direction's rate in bit/s, counted on Ethernet frames
	// (tbf's measure); 0 means no limit.
	Rate int64
	// Loss is each direction's probability of dropping a packet.
	Loss float64
	// QueueBytes is the token bucket's queue (tbf limit); 0 means one
	// bandwidth-delay product, Rate × RTT, and never less than 64 KiB.
	QueueBytes int64
	// BurstBytes is the token bucket's burst; 0 means 32 KiB.
	BurstBytes int64
	// CC lists the TCP congestion controls to set on the server and the
	// client, the first available one wins; nil means cubic, then reno.
	CC []string
	// Forwarder is the wanfwd binary (see BuildForwarder); needed when
	// RTT or Loss is not zero.
	Forwarder string
	// Seed seeds the random drops; 0 picks one from the clock.
	Seed uint64
	// Lifetime bounds the forwarder's life, should Close never come;
	// 0 means 6 hours.
	Lifetime time.Duration
	// Logf, when set, hears about each stage.
	Logf func(format string, args ...any)
}

func (cfg *Config) fill() {
	if cfg.Name == "" {
		cfg.Name = NamePrefix + strconv.Itoa(os.Getpid())
	}
	if cfg.QueueBytes == 0 && cfg.Rate > 0 {
		cfg.QueueBytes = max(cfg.Rate/8*int64(cfg.RTT)/int64(time.Second), 64<<10)
	}
	if cfg.BurstBytes == 0 {
		cfg.BurstBytes = 32 << 10
	}
	if cfg.CC == nil {
		cfg.CC = []string{"cubic", "reno"}
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = 6 * time.Hour
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
}

// needsForwarder reports whether packets must go through wanfwd.
func (cfg *Config) needsForwarder() bool { return cfg.RTT > 0 || cfg.Loss > 0 }

// Describe says in one line what the link is.
func (cfg Config) Describe() string {
	cfg.fill()
	var parts []string
	parts = append(parts, fmt.Sprintf("RTT %v (%v each way)", cfg.RTT, cfg.RTT/2))
	if cfg.Rate > 0 {
		parts = append(parts, fmt.Sprintf("%s each way (tbf, queue %d KiB, burst %d KiB)",
			FormatRate(cfg.Rate), cfg.QueueBytes>>10, cfg.BurstBytes>>10))
	} else {
		parts = append(parts, "no rate limit")
	}
	parts = append(parts, fmt.Sprintf("%g%% random loss each way", cfg.Loss*100))
	return strings.Join(parts, ", ")
}

// FormatRate writes a rate in bit/s as tc would read it back: 100 Mbit/s.
func FormatRate(bps int64) string {
	switch {
	case bps >= 1e9 && bps%1e9 == 0:
		return fmt.Sprintf("%d Gbit/s", bps/1e9)
	case bps >= 1e6 && bps%1e6 == 0:
		return fmt.Sprintf("%d Mbit/s", bps/1e6)
	case bps >= 1e3 && bps%1e3 == 0:
		return fmt.Sprintf("%d kbit/s", bps/1e3)
	}
	return fmt.Sprintf("%d bit/s", bps)
}

// step is one setup action: a command run in a namespace ("" is the
// host's), or a sysctl written there.
type step struct {
	ns     string
	argv   []string
	sysctl string // key, e.g. net.ipv4.ip_forward; then argv[0] is the value
}

func (s step) String() string {
	var cmd string
	if s.sysctl != "" {
		cmd = "sysctl -w " + s.sysctl + "=" + s.argv[0]
	} else {
		cmd = strings.Join(s.argv, " ")
	}
	if s.ns != "" {
		return "ip netns exec " + s.ns + " " + cmd
	}
	return cmd
}

// names returns the three namespaces' names.
func (cfg *Config) names() (srv, rtr, cli string) {
	return cfg.Name + "-srv", cfg.Name + "-rtr", cfg.Name + "-cli"
}

// plan returns the setup up to the forwarder, with cc as the congestion
// control of the end hosts. Offloads are turned off separately (ethtool
// may need installing first), and the forwarder's routing comes after the
// forwarder (routePlan).
func (cfg *Config) plan(cc string) []step {
	srv, rtr, cli := cfg.names()
	var p []step
	cmd := func(ns string, argv ...string) { p = append(p, step{ns: ns, argv: argv}) }
	sysctl := func(ns, key, value string) { p = append(p, step{ns: ns, sysctl: key, argv: []string{value}}) }
	for _, ns := range []string{srv, rtr, cli} {
		cmd("", "ip", "netns", "add", ns)
	}
	for _, ns := range []string{srv, rtr, cli} {
		// No IPv6: no neighbour discovery or router solicitations on the
		// link, and nothing the router would not forward.
		sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1")
		sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1")
	}
	sysctl(rtr, "net.ipv4.ip_forward", "1")
	for _, k := range []string{"all", "default"} {
		// Packets come back from the TUN device with addresses that
		// route elsewhere: no reverse-path filter.
		sysctl(rtr, "net.ipv4.conf."+k+".rp_filter", "0")
	}
	cmd("", "ip", "-n", srv, "link", "add", "eth0", "type", "veth", "peer", "name", "srv", "netns", rtr)
	cmd("", "ip", "-n", cli, "link", "add", "eth0", "type", "veth", "peer", "name", "cli", "netns", rtr)
	cmd("", "ip", "-n", srv, "addr", "add", ServerAddr+"/24", "dev", "eth0")
	cmd("", "ip", "-n", rtr, "addr", "add", routerServer+"/24", "dev", "srv")
	cmd("", "ip", "-n", rtr, "addr", "add", routerClient+"/24", "dev", "cli")
	cmd("", "ip", "-n", cli, "addr", "add", ClientAddr+"/24", "dev", "eth0")
	for _, l := range [][2]string{{srv, "lo"}, {srv, "eth0"}, {rtr, "lo"}, {rtr, "srv"}, {rtr, "cli"}, {cli, "lo"}, {cli, "eth0"}} {
		cmd("", "ip", "-n", l[0], "link", "set", l[1], "up")
	}
	// The congestion control goes on the routes over the link: a child
	// namespace may only make the host's allowed ones its default
	// (net.ipv4.tcp_allowed_congestion_control), but a route's congctl
	// applies to every connection over it, both the ones it opens and
	// the ones it accepts.
	cmd("", "ip", "-n", srv, "route", "add", "default", "via", routerServer, "congctl", cc)
	cmd("", "ip", "-n", cli, "route", "add", "default", "via", routerClient, "congctl", cc)
	if cfg.Rate > 0 {
		// The router's way out to the client carries downloads, its way
		// out to the server uploads and ACKs.
		for _, dev := range []string{"cli", "srv"} {
			cmd(rtr, "tc", "qdisc", "replace", "dev", dev, "root", "tbf",
				"rate", strconv.FormatInt(cfg.Rate, 10)+"bit",
				"burst", strconv.FormatInt(cfg.BurstBytes, 10),
				"limit", strconv.FormatInt(cfg.QueueBytes, 10))
		}
	}
	if cfg.needsForwarder() {
		cmd("", "ip", "-n", rtr, "tuntap", "add", "dev", tunDev, "mode", "tun")
		cmd("", "ip", "-n", rtr, "link", "set", tunDev, "mtu", strconv.Itoa(mtu), "up")
		sysctl(rtr, "net.ipv4.conf."+tunDev+".rp_filter", "0")
	}
	return p
}

// offloadPlan turns segmentation and receive offloads off on every veth.
func (cfg *Config) offloadPlan(ethtool string) []step {
	srv, rtr, cli := cfg.names()
	var p []step
	for _, l := range [][2]string{{srv, "eth0"}, {rtr, "srv"}, {rtr, "cli"}, {cli, "eth0"}} {
		p = append(p, step{ns: l[0], argv: []string{ethtool, "-K", l[1], "tso", "off", "gso", "off", "gro", "off"}})
	}
	return p
}

// routePlan sends every packet arriving at the router from either side
// through the TUN device; what the forwarder writes back arrives from the
// TUN device and takes the main table.
func (cfg *Config) routePlan() []step {
	_, rtr, _ := cfg.names()
	return []step{
		{argv: []string{"ip", "-n", rtr, "route", "add", "default", "dev", tunDev, "table", routeTable}},
		{argv: []string{"ip", "-n", rtr, "rule", "add", "iif", "srv", "lookup", routeTable, "pref", "100"}},
		{argv: []string{"ip", "-n", rtr, "rule", "add", "iif", "cli", "lookup", routeTable, "pref", "101"}},
	}
}

// forwarderArgs are wanfwd's arguments.
func (cfg *Config) forwarderArgs(statsPath string) []string {
	return []string{
		"-dev", tunDev,
		"-client-net", clientNet,
		"-delay", (cfg.RTT / 2).String(),
		"-loss", strconv.FormatFloat(cfg.Loss, 'g', -1, 64),
		"-seed", strconv.FormatUint(cfg.Seed, 10),
		"-stats", statsPath,
		"-lifetime", cfg.Lifetime.String(),
	}
}

// Net is a running emulated link.
type Net struct {
	// Server, Router and Client name the namespaces.
	Server, Router, Client string
	// ServerAddr and ClientAddr are the end hosts' addresses.
	ServerAddr, ClientAddr string
	// CC is the TCP congestion control of the server and the client.
	CC string
	// RTT is the median TCP handshake time measured from the client to
	// the server after setup.
	RTT time.Duration
	// Setup lists the commands that made the link (for the record).
	Setup []string
	// Config is the configuration with its defaults filled in.
	Config Config

	dir      string // forwarder's stats and log
	fwd      *exec.Cmd
	fwdDone  chan struct{}
	mu       sync.Mutex
	lastSeq  uint64
	downOnce sync.Once
	downErr  error
}

// Start builds the link that cfg describes. It first removes the namespaces
// that an earlier run of this package left behind (see Cleanup). On error
// it leaves nothing behind.
func Start(ctx context.Context, cfg Config) (n *Net, err error) {
	cfg.fill()
	if cfg.needsForwarder() && cfg.Forwarder == "" {
		return nil, errors.New("wan: delay or loss needs Config.Forwarder (see BuildForwarder)")
	}
	if err := Cleanup(cfg.Name, cfg.Logf); err != nil {
		return nil, err
	}
	if err := Cleanup("", cfg.Logf); err != nil {
		return nil, err
	}
	ethtool, err := ensureEthtool(ctx, cfg.Logf)
	if err != nil {
		return nil, err
	}
	cc, err := pickCC(cfg.CC)
	if err != nil {
		return nil, err
	}
	srv, rtr, cli := cfg.names()
	n = &Net{Server: srv, Router: rtr, Client: cli, ServerAddr: ServerAddr, ClientAddr: ClientAddr, CC: cc, Config: cfg}
	defer func() {
		if err != nil {
			n.Close()
			n = nil
		}
	}()
	if n.dir, err = os.MkdirTemp("", "ferry-wan-"); err != nil {
		return n, err
	}
	cfg.Logf("wan: setting up %s (%s; %s)", cfg.Name, cfg.Describe(), cc)
	plan := append(cfg.plan(cc), cfg.offloadPlan(ethtool)...)
	if err := n.run(ctx, plan); err != nil {
		return n, err
	}
	for _, l := range [][2]string{{srv, "eth0"}, {rtr, "srv"}, {rtr, "cli"}, {cli, "eth0"}} {
		if err := checkOffloads(ctx, ethtool, l[0], l[1]); err != nil {
			return n, err
		}
	}
	if cfg.needsForwarder() {
		if err := n.startForwarder(ctx); err != nil {
			return n, err
		}
		if err := n.run(ctx, cfg.routePlan()); err != nil {
			return n, err
		}
	}
	if n.RTT, err = n.measureRTT(ctx, 5); err != nil {
		return n, fmt.Errorf("wan: the client cannot reach the server: %w", err)
	}
	cfg.Logf("wan: %s up; TCP handshake from client to server takes %v", cfg.Name, n.RTT.Round(10*time.Microsecond))
	return n, nil
}

// run carries out steps, recording each.
func (n *Net) run(ctx context.Context, steps []step) error {
	for _, s := range steps {
		n.Setup = append(n.Setup, s.String())
		if err := s.do(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (s step) do(ctx context.Context) error {
	if s.sysctl != "" {
		path := "/proc/sys/" + strings.ReplaceAll(s.sysctl, ".", "/")
		err := peer.InNetns(s.ns, func() error { return os.WriteFile(path, []byte(s.argv[0]), 0o644) })
		if err != nil {
			return fmt.Errorf("wan: %s: %w", s, err)
		}
		return nil
	}
	argv := peer.NetnsExec(s.ns, s.argv)
	_, err := output(ctx, argv...)
	return err
}

// output runs a short command (at most 30 s) and returns its stdout.
func output(ctx context.Context, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("wan: %s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// checkOffloads verifies that ethtool turned the offloads off.
func checkOffloads(ctx context.Context, ethtool, ns, dev string) error {
	out, err := output(ctx, peer.NetnsExec(ns, []string{ethtool, "-k", dev})...)
	if err != nil {
		return err
	}
	for _, feature := range []string{"tcp-segmentation-offload", "generic-segmentation-offload", "generic-receive-offload"} {
		for line := range strings.Lines(out) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), feature+":"); ok && !strings.HasPrefix(strings.TrimSpace(v), "off") {
				return fmt.Errorf("wan: %s in %s: %s is still %s", dev, ns, feature, strings.TrimSpace(v))
			}
		}
	}
	return nil
}

// pickCC returns the first of want that the kernel offers.
func pickCC(want []string) (string, error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_available_congestion_control")
	if err != nil {
		return "", err
	}
	have := strings.Fields(string(b))
	for _, cc := range want {
		if slices.Contains(have, cc) {
			return cc, nil
		}
	}
	return "", fmt.Errorf("wan: none of the congestion controls %v is available (have %v)", want, have)
}

// ensureEthtool finds ethtool, installing it with apt-get if it is missing.
func ensureEthtool(ctx context.Context, logf func(string, ...any)) (string, error) {
	if p, err := peer.FindBinary("ethtool"); err == nil {
		return p, nil
	}
	aptGet, err := peer.FindBinary("apt-get")
	if err != nil {
		return "", errors.New("wan: ethtool is missing and there is no apt-get to install it")
	}
	logf("wan: installing ethtool (apt-get install ethtool)")
	install := func(args ...string) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, aptGet, args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := install("install", "-y", "--no-install-recommends", "ethtool"); err != nil {
		if err := install("update"); err != nil {
			return "", fmt.Errorf("wan: %w", err)
		}
		if err := install("install", "-y", "--no-install-recommends", "ethtool"); err != nil {
			return "", fmt.Errorf("wan: %w", err)
		}
	}
	return peer.FindBinary("ethtool")
}

// startForwarder starts wanfwd in the router and waits until it is
// attached to the TUN device.
func (n *Net) startForwarder(ctx context.Context) error {
	statsPath := filepath.Join(n.dir, "stats.json")
	logPath := filepath.Join(n.dir, "wanfwd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	args := n.Config.forwarderArgs(statsPath)
	argv := peer.NetnsExec(n.Router, append([]string{n.Config.Forwarder}, args...))
	n.Setup = append(n.Setup, strings.Join(argv, " ")+" &")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, and gone with this process if it dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("wan: start forwarder: %w", err)
	}
	n.fwd = cmd
	n.fwdDone = make(chan struct{})
	go func() { cmd.Wait(); close(n.fwdDone) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(statsPath); err == nil {
			var st Stats
			if err := json.Unmarshal(b, &st); err != nil {
				return fmt.Errorf("wan: forwarder statistics: %w", err)
			}
			n.lastSeq = st.Seq
			return nil
		}
		select {
		case <-n.fwdDone:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("wan: forwarder exited: %s", strings.TrimSpace(string(log)))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return errors.New("wan: forwarder not ready after 10s")
}

// Stats asks the forwarder for its counts so far (zero without one).
func (n *Net) Stats() (Stats, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fwd == nil {
		return Stats{}, nil
	}
	select {
	case <-n.fwdDone:
		return Stats{}, errors.New("wan: forwarder has exited")
	default:
	}
	if err := n.fwd.Process.Signal(syscall.SIGUSR1); err != nil {
		return Stats{}, err
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(filepath.Join(n.dir, "stats.json"))
		if err == nil {
			var st Stats
			if json.Unmarshal(b, &st) == nil && st.Seq > n.lastSeq {
				n.lastSeq = st.Seq
				return st, nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return Stats{}, errors.New("wan: no statistics from the forwarder within 2s")
}

// measureRTT times count TCP handshakes from the client to a listener on
// the server and returns the median.
func (n *Net) measureRTT(ctx context.Context, count int) (time.Duration, error) {
	var l net.Listener
	err := peer.InNetns(n.Server, func() error {
		var err error
		l, err = net.Listen("tcp", net.JoinHostPort(ServerAddr, "0"))
		return err
	})
	if err != nil {
		return 0, err
	}
	defer l.Close()
	accepted := make(chan string, count)
	go func() {
		for range count {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- congestionControl(c)
			c.Close()
		}
	}()
	dial := peer.DialContextIn(n.Client)
	var times []time.Duration
	for range count {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		start := time.Now()
		c, err := dial(dctx, "tcp", l.Addr().String())
		d := time.Since(start)
		cancel()
		if err != nil {
			return 0, err
		}
		clientCC := congestionControl(c)
		c.Close()
		var serverCC string
		select {
		case serverCC = <-accepted:
		case <-time.After(5 * time.Second):
		}
		if clientCC != n.CC || serverCC != n.CC {
			return 0, fmt.Errorf("congestion control is %q at the client and %q at the server, want %q", clientCC, serverCC, n.CC)
		}
		times = append(times, d)
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}

// congestionControl returns the TCP connection's congestion control.
func congestionControl(c net.Conn) string {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return ""
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return ""
	}
	var name string
	raw.Control(func(fd uintptr) {
		name, _ = unix.GetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION)
	})
	return strings.TrimRight(name, "\x00")
}

// Close stops the forwarder and any process left in the namespaces and
// deletes them. It may be called more than once.
func (n *Net) Close() error {
	n.downOnce.Do(func() {
		var errs []error
		if n.fwd != nil {
			n.fwd.Process.Signal(syscall.SIGTERM)
			select {
			case <-n.fwdDone:
			case <-time.After(3 * time.Second):
				syscall.Kill(-n.fwd.Process.Pid, syscall.SIGKILL)
				select {
				case <-n.fwdDone:
				case <-time.After(3 * time.Second):
					errs = append(errs, fmt.Errorf("wan: forwarder (pid %d) outlived SIGKILL", n.fwd.Process.Pid))
				}
			}
		}
		for _, ns := range []string{n.Server, n.Router, n.Client} {
			errs = append(errs, deleteNetns(ns))
		}
		if n.dir != "" {
			errs = append(errs, os.RemoveAll(n.dir))
		}
		n.downErr = errors.Join(errs...)
	})
	return n.downErr
}

// ForwarderLog returns what the forwarder wrote to its log so far.
func (n *Net) ForwarderLog() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "wanfwd.log"))
	return string(b)
}

// deleteNetns kills what still runs in the namespace ns (only this
// package's namespaces get here, so only processes it or its caller
// started) and deletes it. A namespace that is not there is no error.
func deleteNetns(ns string) error {
	if _, err := os.Stat(peer.NetnsPath(ns)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := output(ctx, "ip", "netns", "pids", ns); err == nil {
		for f := range strings.FieldsSeq(out) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	_, err := output(ctx, "ip", "netns", "del", ns)
	return err
}

var ourNetns = regexp.MustCompile(`^(` + regexp.QuoteMeta(NamePrefix) + `(\d+))-(srv|rtr|cli)$`)

// Cleanup deletes namespaces that a run of this package left behind: with
// name "", those of every run whose process is gone; else the three of
// that name.
func Cleanup(name string, logf func(string, ...any)) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	entries, err := os.ReadDir(peer.NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		ns := e.Name()
		if name != "" {
			if ns != name+"-srv" && ns != name+"-rtr" && ns != name+"-cli" {
				continue
			}
		} else {
			m := ourNetns.FindStringSubmatch(ns)
			if m == nil {
				continue
			}
			pid, _ := strconv.Atoi(m[2])
			if pid == os.Getpid() || processAlive(pid) {
				continue // ours (removed by name) or a run still going
			}
		}
		logf("wan: removing namespace %s left by an earlier run", ns)
		errs = append(errs, deleteNetns(ns))
	}
	return errors.Join(errs...)
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
