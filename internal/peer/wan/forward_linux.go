package wan

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ForwarderConfig configures the delay/loss forwarder (see Forwarder).
type ForwarderConfig struct {
	// Dev is the TUN device, which must exist (ip tuntap add).
	Dev string
	// Down and Up are the impairments of the two directions.
	Down, Up Impairment
	// ClientNet tells the directions apart: packets to it go Down.
	ClientNet netip.Prefix
	// Limit is how many packets the line holds at most; 0 means 16384.
	Limit int
	// Seed seeds the random drops.
	Seed uint64
}

// slack lets the sender write packets due this soon with the ones due now,
// rather than sleep for less than the timer's wake-up cost.
const slack = 20 * time.Microsecond

// bufSize holds any packet of the 1500-byte MTU the harness sets, with
// room to see that one was larger (it is then dropped).
const bufSize = 2048

// Forwarder reads IP packets from a TUN device, drops or delays them as
// its Line says, and writes them back to the same device, from which the
// kernel routes them on. One goroutine reads; one sends, sleeping on a
// timerfd armed for the first due packet. Both sit in blocking system
// calls on threads of their own, so a packet's wake-up costs one kernel
// wake-up, not a trip through Go's scheduler and poller (whose timers
// fire up to a millisecond late). Buffers come from a fixed pool.
type Forwarder struct {
	cfg    ForwarderConfig
	tun    int // TUN file descriptor, blocking
	tfd    int // timerfd, blocking
	cnet   uint32
	cmask  uint32
	origin time.Time
	base   int64 // CLOCK_MONOTONIC at origin, ns

	mu        sync.Mutex
	line      *Line[[]byte]
	free      [][]byte
	noBuffer  uint64
	forwarded uint64
	writeErrs uint64
	lateSum   float64
	lateMax   int64
	lateHist  [len(lateBounds) + 1]uint64
	seq       uint64
	closing   bool
}

// lateBounds are the upper bounds of the lateness histogram's buckets.
var lateBounds = [...]time.Duration{50 * time.Microsecond, 200 * time.Microsecond, time.Millisecond, 5 * time.Millisecond}

// OpenForwarder attaches to the TUN device and makes the timer.
func OpenForwarder(cfg ForwarderConfig) (*Forwarder, error) {
	if !cfg.ClientNet.Addr().Is4() {
		return nil, fmt.Errorf("forwarder: client network %v is not IPv4", cfg.ClientNet)
	}
	if cfg.Limit <= 0 {
		cfg.Limit = 16384
	}
	tun, err := openTUN(cfg.Dev)
	if err != nil {
		return nil, err
	}
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC)
	if err != nil {
		unix.Close(tun)
		return nil, fmt.Errorf("timerfd_create: %w", err)
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		unix.Close(tun)
		unix.Close(tfd)
		return nil, err
	}
	f := &Forwarder{
		cfg:    cfg,
		tun:    tun,
		tfd:    tfd,
		origin: time.Now(),
		base:   ts.Nano(),
		line:   NewLine[[]byte](cfg.Down, cfg.Up, cfg.Limit, cfg.Seed),
	}
	a := cfg.ClientNet.Masked().Addr().As4()
	f.cnet = uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	f.cmask = ^uint32(0) << (32 - cfg.ClientNet.Bits())
	if cfg.ClientNet.Bits() == 0 {
		f.cmask = 0
	}
	// Twice the line's limit: the sender holds a batch outside the line
	// while it writes.
	pool := make([]byte, 2*cfg.Limit*bufSize)
	for i := range 2 * cfg.Limit {
		f.free = append(f.free, pool[i*bufSize:(i+1)*bufSize:(i+1)*bufSize])
	}
	return f, nil
}

// openTUN attaches to the TUN device name (IFF_TUN, no packet info) and
// returns its blocking file descriptor.
func openTUN(name string) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("TUNSETIFF %s: %w", name, err)
	}
	return fd, nil
}

// now is CLOCK_MONOTONIC in ns, read through Go's monotonic clock.
func (f *Forwarder) now() int64 { return f.base + int64(time.Since(f.origin)) }

// arm sets the timer to fire at due (CLOCK_MONOTONIC ns). f.mu is held.
func (f *Forwarder) arm(due int64) {
	if due <= 0 {
		due = 1 // zero would disarm it
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(due)}
	_ = unix.TimerfdSettime(f.tfd, unix.TFD_TIMER_ABSTIME, &spec, nil)
}

// Run forwards until ctx ends or an I/O error. The receiving thread stays
// blocked in read(2) on the device until the process exits: Run is for a
// program that exits when it returns.
func (f *Forwarder) Run(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- f.receive() }()
	go func() { errc <- f.send() }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	f.mu.Lock()
	f.closing = true
	f.arm(1) // wake the sender, which sees closing
	f.mu.Unlock()
	return err
}

// receive reads packets into the line.
func (f *Forwarder) receive() error {
	runtime.LockOSThread()
	scratch := make([]byte, 1<<16)
	for {
		f.mu.Lock()
		var buf []byte
		if n := len(f.free); n > 0 {
			buf = f.free[n-1]
			f.free = f.free[:n-1]
		}
		f.mu.Unlock()
		if buf == nil {
			if _, err := readFull(f.tun, scratch); err != nil {
				return err
			}
			f.mu.Lock()
			f.noBuffer++
			f.mu.Unlock()
			continue
		}
		n, err := readFull(f.tun, buf)
		if err != nil {
			return err
		}
		now := f.now()
		dir := Classify(buf[:n], f.cnet, f.cmask)
		f.mu.Lock()
		kept, head := false, false
		if n < len(buf) { // a full buffer may have been cut short: drop it
			kept, head = f.line.Push(now, dir, n, buf[:n])
		} else {
			f.noBuffer++
		}
		if !kept {
			f.free = append(f.free, buf[:cap(buf)])
		} else if head {
			due, _ := f.line.Next()
			f.arm(due)
		}
		f.mu.Unlock()
	}
}

// readFull is read(2), retried when a signal interrupts it.
func readFull(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Read(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read: %w", err)
		}
		return n, nil
	}
}

// send writes packets out as they fall due.
func (f *Forwarder) send() error {
	runtime.LockOSThread()
	var tick [8]byte
	var batch [][]byte
	var dues []int64
	for {
		if _, err := readFull(f.tfd, tick[:]); err != nil {
			return err
		}
		now := f.now()
		batch, dues = batch[:0], dues[:0]
		f.mu.Lock()
		if f.closing {
			f.mu.Unlock()
			return nil
		}
		for {
			p, due, ok := f.line.Pop(now + int64(slack))
			if !ok {
				break
			}
			batch = append(batch, p)
			dues = append(dues, due)
		}
		if due, ok := f.line.Next(); ok {
			f.arm(due)
		}
		f.mu.Unlock()
		var errs uint64
		var lateSum float64
		var lateMax int64
		var hist [len(lateBounds) + 1]uint64
		for i, p := range batch {
			l := max(f.now()-dues[i], 0)
			lateSum += float64(l)
			lateMax = max(lateMax, l)
			b := 0
			for b < len(lateBounds) && time.Duration(l) > lateBounds[b] {
				b++
			}
			hist[b]++
			for {
				_, err := unix.Write(f.tun, p)
				if err == unix.EINTR {
					continue
				}
				if err != nil {
					errs++
				}
				break
			}
		}
		f.mu.Lock()
		for _, p := range batch {
			f.free = append(f.free, p[:cap(p)])
		}
		f.forwarded += uint64(len(batch)) - errs
		f.writeErrs += errs
		f.lateSum += lateSum
		f.lateMax = max(f.lateMax, lateMax)
		for i := range hist {
			f.lateHist[i] += hist[i]
		}
		f.mu.Unlock()
	}
}

// Stats returns the counts so far; every call has a higher Seq.
func (f *Forwarder) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	s := Stats{
		Seq:           f.seq,
		Down:          f.line.Stats(Down),
		Up:            f.line.Stats(Up),
		Forwarded:     f.forwarded,
		NoBuffer:      f.noBuffer,
		WriteErrors:   f.writeErrs,
		LateMaxMicros: float64(f.lateMax) / 1e3,
		Late:          f.lateHist,
	}
	if n := f.forwarded + f.writeErrs; n > 0 {
		s.LateMeanMicros = f.lateSum / float64(n) / 1e3
	}
	return s
}
