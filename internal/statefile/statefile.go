// Package statefile keeps a transfer's resumable state: in a small JSON file
// replaced atomically (the control file beside a download, the state of an
// upload), or in memory for ephemeral sessions.
package statefile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/ferryhq/ferry/internal/atomicfile"
)

// Store persists one value of type T. Load returns (nil, nil) when there is
// nothing saved. Save is atomic: a reader sees the old value or the new one,
// never a torn mix.
type Store[T any] interface {
	Load() (*T, error)
	Save(*T) error
	Remove() error
}

// File is a Store in a JSON file, replaced atomically (write temp, fsync,
// rename, fsync dir). The file is private (0600): it may hold a URL whose
// query is a credential. Like every file ferry touches (package
// atomicfile), it is never read or replaced through a link, nor when it is
// anything but a regular file of this user: that is an error, not debris.
type File[T any] struct{ Path string }

// maxFileSize bounds what Load reads: a state file is a few kilobytes.
const maxFileSize = 16 << 20

// Load reads the file. A missing or undecodable file yields (nil, nil), so
// the transfer starts over instead of failing on debris.
func (f File[T]) Load() (*T, error) {
	b, err := atomicfile.ReadFile(f.Path, maxFileSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var unsafe *atomicfile.UnsafeError
	if errors.As(err, &unsafe) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	v := new(T)
	if json.Unmarshal(b, v) != nil {
		return nil, nil
	}
	return v, nil
}

// Save replaces the file atomically.
func (f File[T]) Save(v *T) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(f.Path, b, atomicfile.Private)
}

// Remove deletes the file, and what Saves killed more than a minute ago
// left of it; a missing one is not an error.
func (f File[T]) Remove() error {
	atomicfile.RemoveTemps(f.Path, time.Minute)
	if err := os.Remove(f.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// RemoveTemps deletes what killed Saves left of the file, however young:
// for a caller that holds the file for itself (a download, under its lock).
func (f File[T]) RemoveTemps() { atomicfile.RemoveTemps(f.Path, 0) }

// Mem is a Store in memory. It keeps copies made through JSON, so a caller
// never shares slices with what was saved.
type Mem[T any] struct {
	mu sync.Mutex
	b  []byte
}

// NewMem returns a Mem holding v (nil: empty).
func NewMem[T any](v *T) *Mem[T] {
	m := &Mem[T]{}
	if v != nil {
		m.Save(v)
	}
	return m
}

func (m *Mem[T]) Load() (*T, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.b == nil {
		return nil, nil
	}
	v := new(T)
	return v, json.Unmarshal(m.b, v)
}

func (m *Mem[T]) Save(v *T) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.b = b
	m.mu.Unlock()
	return nil
}

func (m *Mem[T]) Remove() error {
	m.mu.Lock()
	m.b = nil
	m.mu.Unlock()
	return nil
}
