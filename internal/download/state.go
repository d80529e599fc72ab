package download

import (
	"github.com/ferryhq/ferry/internal/httprange"
	"github.com/ferryhq/ferry/internal/segment"
	"github.com/ferryhq/ferry/internal/statefile"
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
	// Done, kept after success by Job.KeepState, describes the committed
	// file: a run that finds it still in place returns it as is.
	Done *Done `json:"done,omitempty"`
}

// Done is a committed download: the file as it was put in place.
type Done struct {
	Size     int64    `json:"size"`
	ModTime  int64    `json:"mtime"` // unix nanos of the final file
	SHA256   string   `json:"sha256,omitempty"`
	Verified []string `json:"verified,omitempty"`
}

// ControlFile is the CLI's state store: a small JSON file beside the .part file.
func ControlFile(path string) statefile.Store[State] { return statefile.File[State]{Path: path} }

// NewMemState returns an in-memory state store preloaded with st (may be nil).
func NewMemState(st *State) statefile.Store[State] { return statefile.NewMem(st) }
