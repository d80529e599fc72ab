package atomicfile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// Destination is what a name ferry is asked to write holds.
type Destination int

const (
	// Missing: nothing; the file is created.
	Missing Destination = iota
	// Regular: a regular file, replaced by the new one.
	Regular
	// Dir: a directory, or a link to one; the file goes inside.
	Dir
	// Stream: a device or FIFO, or a link to one (/dev/stdout), written
	// in place from the first byte to the last.
	Stream
)

// Classify says what name holds. A symbolic link is followed only to a
// directory, a device or a FIFO, which a user names on purpose (a link to
// their downloads directory, /dev/stdout); a link to a regular file, a
// dangling link and a socket are an *UnsafeError: ferry would have to write
// through the link, or replace it. A link, and a device or FIFO written in
// place, must belong to the effective user or to root: one that another
// user planted in a shared directory would send the bytes where that user
// chose (their FIFO, their directory).
func Classify(name string) (Destination, error) { return classify(name, os.Geteuid()) }

func classify(name string, euid int) (Destination, error) {
	fi, err := os.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return Missing, nil
	}
	if err != nil {
		return 0, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if err := trusted(name, fi, euid); err != nil {
			return 0, err
		}
		target, err := os.Stat(name)
		if err != nil {
			return 0, &UnsafeError{Path: name, What: "is a symbolic link to nothing"}
		}
		switch m := target.Mode(); {
		case m.IsDir():
			return Dir, nil
		case isStream(m):
			return Stream, trusted(name, target, euid)
		default:
			return 0, &UnsafeError{Path: name, What: "is a symbolic link to " + kind(m)}
		}
	}
	switch m := fi.Mode(); {
	case m.IsRegular():
		return Regular, nil
	case m.IsDir():
		return Dir, nil
	case isStream(m):
		return Stream, trusted(name, fi, euid)
	default:
		return 0, &UnsafeError{Path: name, What: "is " + kind(m)}
	}
}

// trusted refuses fi, a link or a stream at name, unless euid or root owns it.
func trusted(name string, fi os.FileInfo, euid int) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 || int(st.Uid) == euid {
		return nil
	}
	return &UnsafeError{Path: name, What: fmt.Sprintf("is %s owned by user %d, neither this one (%d) nor root", kind(fi.Mode()), st.Uid, euid)}
}

// isStream reports a file written in place: a device or a FIFO.
func isStream(m fs.FileMode) bool {
	return m&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe) != 0
}

// OpenStream opens the device or FIFO at name for writing in place. Opening
// a FIFO waits for its reader, or for ctx to end.
func OpenStream(ctx context.Context, name string) (*os.File, error) {
	return openStream(ctx, name, func(name string) (*os.File, error) {
		return os.OpenFile(name, os.O_WRONLY|syscall.O_NOCTTY, 0)
	})
}

// openStream is OpenStream with the open that may block: a FIFO's until
// its reader comes, some devices' until they are ready.
func openStream(ctx context.Context, name string, open func(string) (*os.File, error)) (*os.File, error) {
	if d, err := Classify(name); err != nil {
		return nil, err
	} else if d != Stream {
		return nil, &UnsafeError{Path: name, What: "is not a device or FIFO"}
	}
	type opened struct {
		f   *os.File
		err error
	}
	done := make(chan opened, 1)
	go func() {
		f, err := open(name)
		done <- opened{f, err}
	}()
	select {
	case o := <-done:
		if o.err != nil {
			return nil, o.err
		}
		// The name may have changed since Classify: what was opened is
		// what counts, and the open wrote nothing (no O_CREATE, no O_TRUNC).
		if fi, err := o.f.Stat(); err != nil || !isStream(fi.Mode()) {
			o.f.Close()
			return nil, &UnsafeError{Path: name, What: "is no longer a device or FIFO"}
		} else if err := trusted(name, fi, os.Geteuid()); err != nil {
			o.f.Close()
			return nil, err
		}
		return o.f, nil
	case <-ctx.Done():
		// The open cannot be interrupted: it is left to finish, and what
		// it opens then is closed. A FIFO's open waits for a reader, so
		// one is opened to end the wait, where the name still leads to a
		// FIFO that may be opened for reading.
		r := wakeWriter(name)
		go func() {
			if o := <-done; o.f != nil {
				o.f.Close()
			}
			if r != nil {
				r.Close()
			}
		}()
		return nil, context.Cause(ctx)
	}
}

// wakeWriter opens a reader of the FIFO at name without waiting, which
// lets an open for writing that waits for one return; nil if name is not
// a FIFO or cannot be read. Nothing else is opened: opening a device may
// do something.
func wakeWriter(name string) *os.File {
	if fi, err := os.Stat(name); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		return nil
	}
	r, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil
	}
	if fi, err := r.Stat(); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		r.Close() // swapped for something else since the Stat
		return nil
	}
	return r
}
