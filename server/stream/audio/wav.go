package audio

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// WAVE format tags.
const (
	tagPCM        = 0x0001
	tagFloat      = 0x0003
	tagALaw       = 0x0006
	tagMuLaw      = 0x0007
	tagExtensible = 0xFFFE
)

// guidTail is the common tail of the KSDATAFORMAT_SUBTYPE GUIDs of
// WAVE_FORMAT_EXTENSIBLE; their first two bytes are a format tag.
var guidTail = []byte{0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71}

// placeholderSize is where a 32-bit chunk size stops being believed. A
// recorder writing to a pipe cannot go back to fill in sizes, so it writes
// 0 or something huge: 0xFFFFFFFF, 0x7FFFFFFF, or 0x7FFFF000 (espeak-ng).
// A real size above what arrives is harmless: the stream's end ends it.
const placeholderSize = 0x7FFFF000

// readHeader reads a WAV header up to the start of its samples. It
// returns their format and how many bytes of them there are, -1 meaning
// up to the end of the stream.
func readHeader(in *input) (format, int64, error) {
	b, err := in.need(12)
	if err != nil {
		if err == io.EOF && !plausible(b) {
			return format{}, 0, fmt.Errorf("%w: no RIFF/WAVE header", ErrNotWAV)
		}
		return format{}, 0, headerErr(err)
	}
	rf64 := false
	switch string(b[:4]) {
	case "RIFF":
	case "RF64":
		rf64 = true
	case "RIFX":
		return format{}, 0, fmt.Errorf("%w: big-endian RIFX", ErrUnsupported)
	default:
		return format{}, 0, fmt.Errorf("%w: no RIFF header", ErrNotWAV)
	}
	if string(b[8:12]) != "WAVE" {
		return format{}, 0, fmt.Errorf("%w: a RIFF file of form %q", ErrNotWAV, b[8:12])
	}

	var (
		f       format
		haveFmt bool
		size64  int64 = -1 // the data size of an RF64 ds64 chunk
	)
	for {
		h, err := in.need(8)
		if err != nil {
			return format{}, 0, headerErr(err)
		}
		id := string(h[:4])
		size := int64(binary.LittleEndian.Uint32(h[4:]))
		skip := size + size&1 // chunks are padded to an even length
		switch id {
		case "fmt ":
			if size < 16 {
				return format{}, 0, fmt.Errorf("%w: a fmt chunk of %d bytes", ErrNotWAV, size)
			}
			n := min(size, 40)
			b, err := in.need(int(n))
			if err != nil {
				return format{}, 0, headerErr(err)
			}
			if f, err = parseFmt(b); err != nil {
				return format{}, 0, err
			}
			haveFmt = true
			skip -= n
		case "ds64":
			if rf64 && size >= 28 {
				b, err := in.need(28)
				if err != nil {
					return format{}, 0, headerErr(err)
				}
				if s := binary.LittleEndian.Uint64(b[8:]); s > 0 && s < math.MaxInt64 {
					size64 = int64(s)
				}
				skip -= 28
			}
		case "data":
			if !haveFmt {
				return format{}, 0, fmt.Errorf("%w: a data chunk before the fmt chunk", ErrNotWAV)
			}
			switch {
			case rf64 && size == 0xFFFFFFFF:
				return f, size64, nil
			case size == 0 || size >= placeholderSize:
				return f, -1, nil
			}
			return f, size, nil
		}
		if err := in.skip(skip); err != nil {
			return format{}, 0, headerErr(err)
		}
	}
}

// plausible reports whether b, the start of a stream shorter than a RIFF
// header, could be the start of a WAV stream.
func plausible(b []byte) bool {
	const riff, rf64, wave = "RIFF", "RF64", "WAVE"
	p := b[:min(len(b), 4)]
	if !bytes.HasPrefix([]byte(riff), p) && !bytes.HasPrefix([]byte(rf64), p) {
		return false
	}
	return len(b) <= 8 || bytes.HasPrefix([]byte(wave), b[8:])
}

// headerErr describes an error reading the header; an early end is
// io.ErrUnexpectedEOF.
func headerErr(err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case err == io.EOF:
		return fmt.Errorf("audio: the stream ends inside the WAV header: %w", io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("audio: reading the WAV header: %w", err)
}

// parseFmt reads a fmt chunk of 16 to 40 bytes. Block alignment and byte
// rate are not checked: they follow from the rest, and some writers get
// them wrong.
func parseFmt(b []byte) (format, error) {
	tag := binary.LittleEndian.Uint16(b[0:])
	channels := int(binary.LittleEndian.Uint16(b[2:]))
	rate := int64(binary.LittleEndian.Uint32(b[4:]))
	bits := int(binary.LittleEndian.Uint16(b[14:]))
	if tag == tagExtensible {
		if len(b) < 40 {
			return format{}, fmt.Errorf("%w: a WAVE_FORMAT_EXTENSIBLE fmt chunk of %d bytes", ErrNotWAV, len(b))
		}
		sub := b[24:40]
		if !bytes.Equal(sub[2:], guidTail) {
			return format{}, fmt.Errorf("%w: WAVE_FORMAT_EXTENSIBLE subformat %X", ErrUnsupported, sub)
		}
		tag = binary.LittleEndian.Uint16(sub)
	}
	switch tag {
	case tagPCM:
	case tagFloat:
		return format{}, fmt.Errorf("%w: %d-bit float samples", ErrUnsupported, bits)
	case tagALaw:
		return format{}, fmt.Errorf("%w: A-law samples", ErrUnsupported)
	case tagMuLaw:
		return format{}, fmt.Errorf("%w: µ-law samples", ErrUnsupported)
	default:
		return format{}, fmt.Errorf("%w: format tag 0x%04X", ErrUnsupported, tag)
	}
	if bits != 16 {
		return format{}, fmt.Errorf("%w: %d-bit samples (16-bit only)", ErrUnsupported, bits)
	}
	if rate == 0 || rate > math.MaxInt32 {
		return format{}, fmt.Errorf("%w: sample rate %d", ErrUnsupported, rate)
	}
	f := format{rate: int(rate), channels: channels}
	return f, f.check()
}
