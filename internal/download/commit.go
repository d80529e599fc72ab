package download

import (
	"context"
	"os"
	"strconv"

	"github.com/ferryhq/ferry/internal/atomicfile"
	"github.com/ferryhq/ferry/internal/transfer"
)

// commit verifies the .part file and moves it under the final name. A file
// that fails verification is removed: nothing wrong is ever left in place.
// A stream destination holds its bytes already: it is only verified.
func (r *run) commit(ctx context.Context) (stateFunc, error) {
	r.op = "commit"
	if r.st.Size >= 0 && r.offset != r.st.Size {
		return nil, &transfer.IntegrityError{What: "size", Want: strconv.FormatInt(r.st.Size, 10), Got: strconv.FormatInt(r.offset, 10)}
	}
	if err := r.sums.catchUp(r.part, r.offset); err != nil {
		return nil, err
	}
	verified := []string{"size"}
	if r.st.Size < 0 {
		verified = nil // nothing said how long it should be
	}
	if c := r.j.Checksum; c != nil {
		if got := r.sums.sum(c.Algorithm); got != c.Hex {
			r.discard()
			return nil, &transfer.IntegrityError{What: c.Algorithm, Want: c.Hex, Got: got}
		}
		verified = append(verified, "checksum "+c.Algorithm)
	}
	if d := r.digest; d.alg != "" {
		// RFC 9530 §3: the server's digest of the representation it served.
		if got := r.sums.sum(d.alg); got != d.hex {
			r.discard()
			return nil, &transfer.IntegrityError{What: "Repr-Digest " + d.alg, Want: d.hex, Got: got}
		}
		verified = append(verified, "repr-digest "+d.alg)
	}
	if r.part != nil {
		if err := atomicfile.Commit(r.part, r.j.Path); err != nil {
			return nil, err
		}
		r.part = nil
	}
	if err := r.forget(verified); err != nil {
		return nil, err
	}
	r.res = Result{
		URL:         r.j.URL,
		Path:        r.j.Path,
		Size:        r.offset,
		ResumedFrom: max(r.resumedFrom, 0),
		Downloaded:  r.j.Meter.Moved(),
		SHA256:      r.sums.sum("sha-256"),
		Proto:       r.res.Proto,
		Validator:   r.st.Validator,
		Verified:    verified,
	}
	return nil, nil
}

// forget ends the saved state of a committed download, or, with KeepState,
// turns it into the record of the file put in place.
func (r *run) forget(verified []string) error {
	if !r.j.KeepState {
		return r.j.Saved.Remove()
	}
	fi, err := os.Stat(r.j.Path)
	if err != nil {
		return err
	}
	st := r.st
	st.Missing, st.Offset = nil, fi.Size()
	st.Done = &Done{Size: fi.Size(), ModTime: fi.ModTime().UnixNano(), SHA256: r.sums.sum("sha-256"), Verified: verified}
	return r.j.Saved.Save(&st)
}

// discard removes the .part file and the saved state of a failed result.
func (r *run) discard() {
	if r.part != nil {
		r.part.Close()
		os.Remove(r.part.Name())
		r.part = nil
	}
	r.j.Saved.Remove()
}
