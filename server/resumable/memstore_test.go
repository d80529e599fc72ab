package resumable_test

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/server/resumable"
	"github.com/ferryhq/ferry/server/store/memstore"
)

// The protocol code does not depend on the filesystem: the same flows run
// on an in-memory store, which lacks AtomicWriter (checksummed chunks are
// spooled) and Locker (the handler's own locks are used).
func TestOnMemstore(t *testing.T) {
	run(t, resumable.Config{Store: memstore.New(), TempDir: t.TempDir()}, func(t *testing.T, e *env) {
		data := ferrytest.Bytes(100000, 50)
		url := e.create(t, len(data))
		e.patch(t, url, 0, data[:40000]).expect(t, 204)
		bad := sha1.Sum([]byte("x"))
		e.patch(t, url, 40000, data[40000:], "Upload-Checksum: sha1 "+base64.StdEncoding.EncodeToString(bad[:])).expect(t, 460)
		good := sha1.Sum(data[40000:])
		e.patch(t, url, 40000, data[40000:], "Upload-Checksum: sha1 "+base64.StdEncoding.EncodeToString(good[:])).expect(t, 204)
		mustEqual(t, "tus upload", e.download(t, url), data)

		f := fieldsFor(resumable.LatestInterop)
		r := e.do(t, "POST", "/files/", data[:10], f.version, f.incomplete).expect(t, 201)
		if len(r.interim) == 0 {
			t.Error("no 104 on creation")
		}
		durl := r.Header.Get("Location")
		e.do(t, "HEAD", durl, nil, f.version).expect(t, 204).header(t, "Upload-Offset", "10")
		e.do(t, "PATCH", durl, data[10:], f.appendHeaders(10, true)...).expect(t, 204).header(t, "Upload-Complete", "?1")
		mustEqual(t, "draft upload", e.download(t, durl), data)

		a := e.partial(t, data[:500], 500)
		b := e.partial(t, data[500:1000], 0)
		final := e.do(t, "POST", "/files/", nil, tus, fmt.Sprintf("Upload-Concat: final;%s %s", a, b)).expect(t, 201).Header.Get("Location")
		e.patch(t, b, 0, data[500:1000]).expect(t, 204)
		mustEqual(t, "final upload", e.download(t, final), data[:1000])
		e.do(t, "DELETE", final, nil, tus).expect(t, 204)
		e.do(t, "GET", final, nil).expect(t, 404)
	})
}
