package wan

// Stats is the forwarder's account of the traffic so far.
type Stats struct {
	Seq       uint64   `json:"seq"` // increases with every report
	Down      DirStats `json:"down"`
	Up        DirStats `json:"up"`
	Forwarded uint64   `json:"forwarded"`
	// NoBuffer counts packets dropped because every buffer was in use.
	NoBuffer    uint64 `json:"no_buffer"`
	WriteErrors uint64 `json:"write_errors"`
	// LateMeanMicros and LateMaxMicros say how long after its due time
	// a packet was written, on average and at worst; Late counts the
	// packets written within 50 µs, 200 µs, 1 ms, 5 ms, and later.
	LateMeanMicros float64   `json:"late_mean_us"`
	LateMaxMicros  float64   `json:"late_max_us"`
	Late           [5]uint64 `json:"late_hist"`
}

// Sub returns the counts from earlier to s: the traffic in between. The
// lateness figures are s's own.
func (s Stats) Sub(earlier Stats) Stats {
	d := s
	d.Down = s.Down.sub(earlier.Down)
	d.Up = s.Up.sub(earlier.Up)
	d.Forwarded -= earlier.Forwarded
	d.NoBuffer -= earlier.NoBuffer
	d.WriteErrors -= earlier.WriteErrors
	for i := range d.Late {
		d.Late[i] -= earlier.Late[i]
	}
	return d
}

func (s DirStats) sub(e DirStats) DirStats {
	return DirStats{Packets: s.Packets - e.Packets, Bytes: s.Bytes - e.Bytes, Lost: s.Lost - e.Lost, Overflow: s.Overflow - e.Overflow}
}

// LossRate is the share of offered packets dropped at random.
func (s DirStats) LossRate() float64 {
	if s.Packets == 0 {
		return 0
	}
	return float64(s.Lost) / float64(s.Packets)
}
