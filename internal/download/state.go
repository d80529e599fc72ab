package download

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/ferryhq/ferry/internal/atomicfile"
	"github.com/ferryhq/ferry/internal/httprange"
	"github.com/ferryhq/ferry/internal/segment"
)

// stateVersion is bumped when State changes incompatibly; an unknown version
// is treated as absent (start over) rather than guessed at.
const stateVersion = 1

// State is what a download remembers between runs: which representation it
// is fetching and how far it got. It is the body of the control file and of
// resume data.
type State struct {
	Version   int                 `json:"version"`
	URL       string              `json:"url"`
	Size      int64               `json:"size"` // -1 while unknown
	Validator httprange.Validator `json:"validator"`
	// Offset is how many leading bytes of the .part file were in place when
	// the state was last saved (after the probe, on a restart, and when a
	// run ends without committing). On resume the .part file's length is
	// authoritative for a single stream: bytes written before a process
	// kill are in the page cache and survive it, and journaling filesystems
	// (ext4 ordered, XFS) extend the on-disk length only after the data it
	// covers is written, so a power loss shortens the file rather than
	// leaving garbage at its end.
	Offset int64 `json:"offset"`
	// Blind marks a resume of a file ferry did not start itself (-c on a
	// foreign partial file): there is no validator to prove it matches.
	Blind bool `json:"blind,omitempty"`
	// Missing, when not nil, means a segmented layout: the .part file has
	// its full length and these ranges are still to be fetched; everything
	// else is in place. Saved only after an fsync of the .part file.
	Missing []segment.Range `json:"missing,omitempty"`
}

// Journal persists a download's State. Load returns (nil, nil) when there is
// nothing to resume. Implementations must make Save atomic: a reader sees the
// old state or the new one, never a torn mix.
type Journal interface {
	Load() (*State, error)
	Save(*State) error
	Remove() error
}

// ControlFile is the CLI's journal: a small JSON file beside the .part file,
// replaced atomically (write temp, fsync, rename, fsync dir).
type ControlFile struct{ Path string }

var _ Journal = ControlFile{}

// Load reads the control file; a missing, unreadable or foreign-version file
// yields (nil, nil) so the download starts over instead of failing.
func (c ControlFile) Load() (*State, error) {
	b, err := os.ReadFile(c.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read control file: %w", err)
	}
	var st State
	if json.Unmarshal(b, &st) != nil || st.Version != stateVersion {
		return nil, nil
	}
	return &st, nil
}

// Save replaces the control file atomically.
func (c ControlFile) Save(st *State) error {
	st.Version = stateVersion
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(c.Path, b, 0o644)
}

// Remove deletes the control file; a missing one is not an error.
func (c ControlFile) Remove() error {
	if err := os.Remove(c.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// MemJournal keeps the state in memory only (ephemeral sessions).
type MemJournal struct {
	mu sync.Mutex
	st *State
}

var _ Journal = (*MemJournal)(nil)

// NewMemJournal returns a journal preloaded with st (may be nil).
func NewMemJournal(st *State) *MemJournal {
	j := &MemJournal{}
	if st != nil {
		c := *st
		j.st = &c
	}
	return j
}

func (m *MemJournal) Load() (*State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.st == nil {
		return nil, nil
	}
	c := *m.st
	c.Missing = append([]segment.Range(nil), c.Missing...)
	return &c, nil
}

func (m *MemJournal) Save(st *State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := *st
	c.Version = stateVersion
	m.st = &c
	return nil
}

func (m *MemJournal) Remove() error {
	m.mu.Lock()
	m.st = nil
	m.mu.Unlock()
	return nil
}
