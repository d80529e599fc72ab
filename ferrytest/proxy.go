package ferrytest

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards TCP connections to an upstream address on loopback and
// cuts them on request, as a network that drops connections does: both
// sides see the connection end at once, mid-request or mid-response. It can
// also stall them, as a network that goes silent does: nothing more
// arrives on either side and nothing says the connection ended.
type Proxy struct {
	// Addr is the proxy's host:port; URL is "http://" + Addr.
	Addr, URL string

	ln       net.Listener
	upstream string
	mu       sync.Mutex
	open     map[net.Conn]*link // by the client side
	accepted int
	cuts     int
	sent     atomic.Int64 // bytes forwarded from clients
	wg       sync.WaitGroup
}

// NewProxy starts a proxy to upstream (host:port) and closes it when the
// test ends.
func NewProxy(tb testing.TB, upstream string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("ferrytest: proxy: %v", err)
	}
	p := &Proxy{Addr: ln.Addr().String(), ln: ln, upstream: upstream, open: map[net.Conn]*link{}}
	p.URL = "http://" + p.Addr
	p.wg.Add(1)
	go p.serve()
	tb.Cleanup(p.Close)
	return p
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.upstream)
		if err != nil {
			c.Close()
			continue
		}
		l := &link{c: c, u: u, silent: make(chan struct{}), ended: make(chan struct{})}
		p.mu.Lock()
		p.open[c] = l
		p.accepted++
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(l, u, c)
		go p.pipe(l, c, u)
	}
}

// link is one proxied connection: the client side c, the upstream side u.
type link struct {
	c, u      net.Conn
	silent    chan struct{} // closed by Stall
	ended     chan struct{} // closed when the link is torn down
	stallOnce sync.Once
	endOnce   sync.Once
}

func (l *link) end(reset bool) {
	l.endOnce.Do(func() {
		if reset {
			// A reset rather than an orderly close: a dropped network
			// does not say goodbye.
			for _, c := range []net.Conn{l.c, l.u} {
				if tc, ok := c.(*net.TCPConn); ok {
					tc.SetLinger(0)
				}
			}
		}
		l.c.Close()
		l.u.Close()
		close(l.ended)
	})
}

// pipe copies src to dst until either ends, then closes both. Once the
// link is stalled it forwards nothing more and reads nothing more, so the
// sender's buffers fill, until the link is torn down.
func (p *Proxy) pipe(l *link, dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-l.silent:
			<-l.ended
			return
		default:
		}
		if n > 0 {
			w, werr := dst.Write(buf[:n])
			if src == l.c {
				p.sent.Add(int64(w))
			}
			if werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	p.mu.Lock()
	delete(p.open, l.c)
	p.mu.Unlock()
	l.end(false)
}

// Stall silences every open connection at once and returns how many it
// stalled; connections made afterwards work.
func (p *Proxy) Stall() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.open {
		l.stallOnce.Do(func() {
			close(l.silent)
			n++
		})
	}
	return n
}

// Cut ends every open connection at once and returns how many it cut
// (stalled ones included).
func (p *Proxy) Cut() int {
	p.mu.Lock()
	links := p.open
	p.open = map[net.Conn]*link{}
	p.cuts += len(links)
	p.mu.Unlock()
	for _, l := range links {
		l.end(true)
	}
	return len(links)
}

// Conns returns how many connections the proxy accepted and how many it cut.
func (p *Proxy) Conns() (accepted, cut int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted, p.cuts
}

// Sent returns how many bytes clients have sent through the proxy, so a
// test can tell how much an upload sent more than once.
func (p *Proxy) Sent() int64 { return p.sent.Load() }

// Close stops the proxy and ends its connections.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}
