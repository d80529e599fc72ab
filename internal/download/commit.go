package download

import (
	"context"
	"encoding/hex"
	"os"
	"strconv"
	"time"

	"github.com/ferryhq/ferry/internal/atomicfile"
	"github.com/ferryhq/ferry/internal/transfer"
)

var timeNow = time.Now

// commit verifies the .part file and moves it under the final name. A file
// that fails verification is removed: nothing wrong is ever left in place.
func (r *run) commit(ctx context.Context) (stateFunc, error) {
	r.op = "commit"
	if r.st.Size >= 0 && r.offset != r.st.Size {
		return nil, &transfer.IntegrityError{What: "size", Want: strconv.FormatInt(r.st.Size, 10), Got: strconv.FormatInt(r.offset, 10)}
	}
	var sum string
	if r.hash != nil {
		if err := r.catchUpHash(); err != nil {
			return nil, err
		}
		sum = hex.EncodeToString(r.hash.Sum(nil))
	}
	if c := r.j.Checksum; c != nil && sum != c.Hex {
		r.discard()
		return nil, &transfer.IntegrityError{What: c.Algorithm, Want: c.Hex, Got: sum}
	}
	if err := atomicfile.Commit(r.part, r.j.Path); err != nil {
		return nil, err
	}
	r.part = nil
	if err := r.j.Journal.Remove(); err != nil {
		return nil, err
	}
	r.res = Result{
		URL:         r.j.URL,
		Path:        r.j.Path,
		Size:        r.offset,
		ResumedFrom: max(r.resumedFrom, 0),
		Downloaded:  r.j.Meter.Moved(),
		Proto:       r.res.Proto,
		Validator:   r.st.Validator,
	}
	if r.j.Checksum == nil || r.j.Checksum.Algorithm == "sha-256" {
		r.res.SHA256 = sum
	}
	return nil, nil
}

// discard removes the .part file and the journal of a failed result.
func (r *run) discard() {
	r.part.Close()
	os.Remove(r.part.Name())
	r.part = nil
	r.j.Journal.Remove()
}
