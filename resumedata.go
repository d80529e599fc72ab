package ferry

import (
	"encoding/json"
	"fmt"

	"github.com/ferryhq/ferry/internal/download"
)

// ResumeData is what a cancelled download needs to continue later, in this
// process or another: the URL, the destination and the validated state of
// the bytes already in the .part file. It is opaque but serializable with
// MarshalBinary / UnmarshalBinary (JSON inside, versioned).
type ResumeData struct {
	URL  string
	Path string

	state download.State
}

// Offset is the number of bytes already in place.
func (rd *ResumeData) Offset() int64 {
	if rd.state.Missing == nil {
		return rd.state.Offset
	}
	done := rd.state.Size
	for _, r := range rd.state.Missing {
		done -= r.Len()
	}
	return done
}

type resumeDataWire struct {
	Version int            `json:"version"`
	Kind    string         `json:"kind"`
	URL     string         `json:"url"`
	Path    string         `json:"path"`
	State   download.State `json:"state"`
}

// MarshalBinary encodes rd.
func (rd *ResumeData) MarshalBinary() ([]byte, error) {
	return json.Marshal(resumeDataWire{1, "download", rd.URL, rd.Path, rd.state})
}

// UnmarshalBinary decodes what MarshalBinary produced.
func (rd *ResumeData) UnmarshalBinary(b []byte) error {
	var w resumeDataWire
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("%w: resume data: %v", ErrInvalidRequest, err)
	}
	if w.Version != 1 || w.Kind != "download" || w.URL == "" || w.Path == "" {
		return fmt.Errorf("%w: resume data: unknown version or kind", ErrInvalidRequest)
	}
	*rd = ResumeData{URL: w.URL, Path: w.Path, state: w.State}
	return nil
}
