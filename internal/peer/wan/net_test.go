package wan

import (
	"context"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/peer"
	"github.com/ferryhq/ferry/internal/tcpinfo"
)

func planText(steps []step) string {
	var b strings.Builder
	for _, s := range steps {
		b.WriteString(s.String() + "\n")
	}
	return b.String()
}

func TestPlan(t *testing.T) {
	cfg := Config{Name: "ferrywan-7", RTT: 50 * time.Millisecond, Rate: 100e6, Loss: 0.01, Forwarder: "/x/wanfwd", Seed: 3}
	cfg.fill()
	if cfg.QueueBytes != 625000 {
		t.Errorf("default queue %d bytes, want one BDP, 625000", cfg.QueueBytes)
	}
	got := planText(cfg.plan("cubic"))
	for _, want := range []string{
		"ip netns add ferrywan-7-srv\nip netns add ferrywan-7-rtr\nip netns add ferrywan-7-cli\n",
		"ip netns exec ferrywan-7-rtr sysctl -w net.ipv4.ip_forward=1\n",
		"ip netns exec ferrywan-7-rtr sysctl -w net.ipv4.conf.all.rp_filter=0\n",
		"ip -n ferrywan-7-srv route add default via 10.77.1.254 congctl cubic\n",
		"ip -n ferrywan-7-srv link add eth0 type veth peer name srv netns ferrywan-7-rtr\n",
		"ip -n ferrywan-7-cli addr add 10.77.2.1/24 dev eth0\n",
		"ip -n ferrywan-7-cli route add default via 10.77.2.254 congctl cubic\n",
		"ip netns exec ferrywan-7-rtr tc qdisc replace dev cli root tbf rate 100000000bit burst 32768 limit 625000\n",
		"ip netns exec ferrywan-7-rtr tc qdisc replace dev srv root tbf rate 100000000bit burst 32768 limit 625000\n",
		"ip -n ferrywan-7-rtr tuntap add dev wan0 mode tun\n",
		"ip netns exec ferrywan-7-rtr sysctl -w net.ipv4.conf.wan0.rp_filter=0\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("plan lacks %q:\n%s", want, got)
		}
	}
	// Namespaces first, addresses before routes through them.
	if i, j := strings.Index(got, "addr add 10.77.2.1/24"), strings.Index(got, "route add default via 10.77.2.254 congctl"); i > j {
		t.Errorf("route before address:\n%s", got)
	}
	routes := planText(cfg.routePlan())
	for _, want := range []string{
		"ip -n ferrywan-7-rtr route add default dev wan0 table 100\n",
		"ip -n ferrywan-7-rtr rule add iif srv lookup 100 pref 100\n",
		"ip -n ferrywan-7-rtr rule add iif cli lookup 100 pref 101\n",
	} {
		if !strings.Contains(routes, want) {
			t.Errorf("route plan lacks %q:\n%s", want, routes)
		}
	}
	off := planText(cfg.offloadPlan("ethtool"))
	if strings.Count(off, " tso off gso off gro off\n") != 4 {
		t.Errorf("offloads:\n%s", off)
	}
	args := strings.Join(cfg.forwarderArgs("/s.json"), " ")
	if args != "-dev wan0 -client-net 10.77.2.0/24 -delay 25ms -loss 0.01 -seed 3 -stats /s.json -lifetime 6h0m0s" {
		t.Errorf("forwarder args %q", args)
	}
	if d := cfg.Describe(); d != "RTT 50ms (25ms each way), 100 Mbit/s each way (tbf, queue 610 KiB, burst 32 KiB), 1% random loss each way" {
		t.Errorf("Describe() = %q", d)
	}

	// No delay, no loss, no rate: plain routing, no TUN, no tbf.
	plain := Config{Name: "p"}
	plain.fill()
	if p := planText(plain.plan("reno")); strings.Contains(p, "tbf") || strings.Contains(p, "tuntap") {
		t.Errorf("plain link plan:\n%s", p)
	}
	if plain.needsForwarder() {
		t.Error("plain link needs a forwarder")
	}
}

func TestCleanupPattern(t *testing.T) {
	for name, want := range map[string]bool{
		"ferrywan-123-srv": true, "ferrywan-1-cli": true, "ferrywan-1-rtr": true,
		"ferrywan-x-srv": false, "ferrywan-12-srvx": false, "wanA": false, "ferrywan--srv": false,
	} {
		if got := ourNetns.MatchString(name); got != want {
			t.Errorf("%q matches: %v, want %v", name, got, want)
		}
	}
}

func TestFormatRate(t *testing.T) {
	for bps, want := range map[int64]string{100e6: "100 Mbit/s", 1e9: "1 Gbit/s", 2500: "2500 bit/s", 64e3: "64 kbit/s"} {
		if got := FormatRate(bps); got != want {
			t.Errorf("FormatRate(%d) = %q, want %q", bps, got, want)
		}
	}
}

// TestLink brings a real emulated link up. It needs root and is opt-in:
// FERRY_WAN_TEST=1 go test -run TestLink ./internal/peer/wan/
func TestLink(t *testing.T) {
	if os.Getenv("FERRY_WAN_TEST") == "" || os.Geteuid() != 0 {
		t.Skip("set FERRY_WAN_TEST=1 and run as root")
	}
	ctx := context.Background()
	fwd, err := BuildForwarder(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n, err := Start(ctx, Config{RTT: 50 * time.Millisecond, Rate: 100e6, Loss: 0.01, Forwarder: fwd, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if n.RTT < 50*time.Millisecond || n.RTT > 60*time.Millisecond {
		t.Errorf("handshake %v, want 50-60ms", n.RTT)
	}
	// 8 MiB from the server to the client.
	var l net.Listener
	if err := peer.InNetns(n.Server, func() error {
		var err error
		l, err = net.Listen("tcp", ServerAddr+":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		io.CopyN(c, zeros{}, 8<<20)
		c.Close()
	}()
	c, err := peer.DialContextIn(n.Client)(ctx, "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, err := io.Copy(io.Discard, c)
	el := time.Since(start)
	// What the download engine reads to renew connections on such a link
	// (internal/download/renew.go): losses show as packets out of order,
	// and the round trip stays at the link's.
	info, ok := tcpinfo.Get(c)
	c.Close()
	if !ok || info.OutOfOrder == 0 || info.MinRTT < 50*time.Millisecond || info.RTT > 70*time.Millisecond {
		t.Errorf("the client's TCP counters: %+v (read: %v)", info, ok)
	}
	if err != nil || got != 8<<20 {
		t.Fatalf("got %d bytes, %v", got, err)
	}
	st, err := n.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("8 MiB in %v (%.1f Mbit/s); %+v", el, float64(got)*8/el.Seconds()/1e6, st)
	if st.Down.Packets < 5000 || st.Down.Lost == 0 {
		t.Errorf("forwarder saw %+v", st.Down)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{n.Server, n.Router, n.Client} {
		if _, err := os.Stat(peer.NetnsPath(ns)); err == nil {
			t.Errorf("%s left behind", ns)
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
