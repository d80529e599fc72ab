package resumable

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/internal/dialect"
	"github.com/ferryhq/ferry/internal/sfv"
	"github.com/ferryhq/ferry/server/store"
)

// TusVersion is the tus protocol version spoken.
const TusVersion = "1.0.0"

// LatestInterop is what a request speaks when it uses the draft's fields
// without Upload-Draft-Interop-Version (the final RFC will drop that
// header).
const LatestInterop = dialect.Latest

// InteropVersions lists the supported Upload-Draft-Interop-Version values.
var InteropVersions = slices.Clone(dialect.Versions)

// detect works out a request's dialect (see dialect.Detect), refusing an
// interop version it does not speak.
func detect(r *http.Request) (dialect.Dialect, *Error) {
	d, ok := dialect.Detect(r)
	if !ok {
		return d, ErrInteropVersion.with("%q; supported: %s", dialect.Field(r, "Upload-Draft-Interop-Version"), interopList())
	}
	return d, nil
}

func interopList() string {
	s := make([]string, len(InteropVersions))
	for i, v := range InteropVersions {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ", ")
}

// limits returns the Upload-Limit value for an upload (or, for OPTIONS,
// for uploads in general when info is nil), or "" when nothing limits it.
// Upload-Limit exists from interop 6; its lifetime key is "expires" in 6
// and "max-age" from 7.
func limits(d dialect.Dialect, maxSize int64, expiry time.Duration, info *store.Info, now time.Time) string {
	if d.Interop < dialect.Interop6 {
		return ""
	}
	var members []sfv.Member
	if maxSize > 0 {
		members = append(members, sfv.Member{Key: "max-size", Value: sfv.Item{Kind: sfv.Integer, Int: maxSize}})
	}
	if expiry > 0 && (info == nil || expires(*info)) {
		left := expiry
		if info != nil {
			left = info.UpdatedAt.Add(expiry).Sub(now)
		}
		key := "max-age"
		if d.Interop == dialect.Interop6 {
			key = "expires"
		}
		members = append(members, sfv.Member{Key: key, Value: sfv.Item{Kind: sfv.Integer, Int: max(0, int64(left/time.Second))}})
	}
	s, _ := sfv.FormatDictionary(members)
	return s
}
