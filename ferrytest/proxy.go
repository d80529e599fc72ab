package ferrytest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP connections to an upstream address on loopback and
// cuts them on request, as a network that drops connections does: both
// sides see the connection end at once, mid-request or mid-response.
type Proxy struct {
	// Addr is the proxy's host:port; URL is "http://" + Addr.
	Addr, URL string

	ln       net.Listener
	upstream string
	mu       sync.Mutex
	open     map[net.Conn]net.Conn // client side -> upstream side
	accepted int
	cuts     int
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
	p := &Proxy{Addr: ln.Addr().String(), ln: ln, upstream: upstream, open: map[net.Conn]net.Conn{}}
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
		p.mu.Lock()
		p.open[c] = u
		p.accepted++
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, u, c)
		go p.pipe(u, c, c)
	}
}

// pipe copies src to dst until either ends, then closes both.
func (p *Proxy) pipe(dst, src, key net.Conn) {
	defer p.wg.Done()
	io.Copy(dst, src)
	p.mu.Lock()
	u, ok := p.open[key]
	delete(p.open, key)
	p.mu.Unlock()
	key.Close()
	if ok {
		u.Close()
	}
}

// Cut ends every open connection at once and returns how many it cut.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	n := len(p.open)
	for c, u := range p.open {
		// A reset rather than an orderly close: a dropped network does
		// not say goodbye.
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		if tc, ok := u.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
		u.Close()
	}
	p.cuts += n
	p.mu.Unlock()
	return n
}

// Conns returns how many connections the proxy accepted and how many it cut.
func (p *Proxy) Conns() (accepted, cut int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted, p.cuts
}

// Close stops the proxy and ends its connections.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}
