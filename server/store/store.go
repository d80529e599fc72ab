// Package store is the storage behind ferry's resumable uploads: a small
// core interface every backend implements, and optional capabilities a
// backend adds when it can, in the manner of tusd's DataStore.
//
// The protocol handler (package [github.com/ferryhq/ferry/server/resumable])
// only talks to these interfaces, so the same tus and IETF code runs on the
// filesystem store in [github.com/ferryhq/ferry/server/store/filestore] today
// and on an object store later.
//
// # Core
//
// A [Store] creates and finds uploads; an [Upload] appends chunks, reports
// its [Info] and reads its bytes back. Appending is the only write: bytes are
// never overwritten, and the offset never decreases.
//
// # Capabilities
//
// A backend that can do more says so by implementing one more small
// interface, which the handler finds by type assertion and advertises (for
// tus, in the Tus-Extension header):
//
//	Terminater      delete an upload (tus termination, draft cancellation)
//	LengthDeclarer  create with the length unknown and declare it later
//	Concater        build one upload from others (tus concatenation)
//	Locker          locks that work across processes sharing the backend
//	Lister          enumerate uploads, so expired ones can be cleaned up and
//	                the storage they hold counted (see [MeasureUsage])
//	AtomicWriter    append a chunk all or nothing, after a check
//
// A handler over a store without Locker uses a [MemoryLocker], which is
// enough for one process.
//
// # Durability
//
// The offset an upload reports is durable: WriteChunk returns only once the
// bytes it counts would survive a crash. A store may make long chunks
// durable piecewise, and a chunk cut short (a dropped connection, a request
// taken over by a newer one) keeps the bytes that were made durable, so the
// client resends at most what it sent after the last checkpoint.
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"time"
)

// Info describes an upload. Stores persist every field; the handler owns
// their meaning.
type Info struct {
	// ID names the upload in URLs. It is unguessable: see [NewID].
	ID string `json:"id"`
	// Size is the length of the whole upload in bytes. It is meaningless
	// while SizeIsDeferred is set.
	Size           int64 `json:"size"`
	SizeIsDeferred bool  `json:"size_is_deferred,omitempty"`
	// Offset is how many bytes are stored, durably.
	Offset int64 `json:"offset"`
	// MetaData is the client's key-value metadata (tus Upload-Metadata),
	// kept as sent.
	MetaData map[string]string `json:"metadata,omitempty"`
	// Name is the file name to offer when the upload is downloaded: a
	// single path element without control characters, already sanitised.
	Name string `json:"name,omitempty"`
	// ContentType is the media type the client gave for the upload, if any.
	ContentType string `json:"content_type,omitempty"`
	// IsPartial marks a tus partial upload, meant to be concatenated.
	IsPartial bool `json:"is_partial,omitempty"`
	// IsFinal marks a tus final upload: the concatenation of
	// PartialUploads, in order. It never takes chunks of its own.
	IsFinal        bool     `json:"is_final,omitempty"`
	PartialUploads []string `json:"partial_uploads,omitempty"`
	// ReprDigest is a Repr-Digest (RFC 9530) the client announced for the
	// whole upload, checked once the upload is complete.
	ReprDigest string `json:"repr_digest,omitempty"`
	// CreatedAt is set by NewUpload; UpdatedAt by every change.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Finished reports whether every byte of the upload is stored.
func (i Info) Finished() bool { return !i.SizeIsDeferred && i.Offset == i.Size }

// Store is the core of a storage backend. Implementations are safe for
// concurrent use. Callers serialise changes to one upload (see [Locker]);
// a store need not defend against two writers of the same upload.
type Store interface {
	// NewUpload creates an empty upload described by info. info.ID must be
	// set (see [NewID]); Offset is ignored and starts at zero. The new
	// upload is durable when NewUpload returns.
	NewUpload(ctx context.Context, info Info) (Upload, error)
	// GetUpload returns the upload with the given ID, or an error wrapping
	// [ErrNotFound]. IDs the store could never have created are not found.
	GetUpload(ctx context.Context, id string) (Upload, error)
}

// Upload is one upload in a [Store].
type Upload interface {
	// WriteChunk appends the bytes of src, which must start at offset:
	// offset must equal the current offset, or WriteChunk fails with
	// [ErrOffsetMismatch] and reads nothing. It reads src until io.EOF and
	// returns how many bytes it appended; they are durable when it returns.
	//
	// When src fails, WriteChunk keeps the bytes it made durable before
	// the failure (a store may checkpoint long chunks; see the package
	// doc), and returns their count with src's error. It never appends
	// beyond a known Size: the bytes up to Size are kept and the error is
	// [ErrSizeExceeded]. ctx bounds waiting on the backend; a cancelled ctx
	// still leaves the bytes already appended in place.
	WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error)
	// GetInfo returns the upload's current description.
	GetInfo(ctx context.Context) (Info, error)
	// GetReader returns the stored bytes, Offset of them. The caller closes
	// it. When the store can seek, the reader is also an io.ReadSeeker and
	// an io.ReaderAt, which lets downloads serve ranges.
	GetReader(ctx context.Context) (io.ReadCloser, error)
	// FinishUpload is called once every byte is stored, so the store can
	// seal the upload (an object store completes its multipart upload). It
	// is idempotent.
	FinishUpload(ctx context.Context) error
}

// Terminater deletes uploads.
type Terminater interface {
	// Terminate removes the upload and its bytes. Afterwards GetUpload of
	// its ID fails with ErrNotFound. Readers already open may keep working.
	Terminate(ctx context.Context, u Upload) error
}

// LengthDeclarer lets an upload be created with SizeIsDeferred and its
// length declared later.
type LengthDeclarer interface {
	// DeclareLength sets the size of an upload whose size is deferred. It
	// fails with ErrInvalidLength when the size is already known or length
	// is below the offset.
	DeclareLength(ctx context.Context, u Upload, length int64) error
}

// Concater builds a final upload from partial ones.
type Concater interface {
	// Concat stores the bytes of partials, in order, as the bytes of final,
	// which must be empty and have the sum of their sizes as its Size. All
	// partials must be finished. final is finished when Concat returns nil.
	Concat(ctx context.Context, final Upload, partials []Upload) error
}

// Lister enumerates uploads, for cleaning up expired ones.
type Lister interface {
	// List returns the IDs of all uploads, in no particular order.
	List(ctx context.Context) ([]string, error)
}

// AtomicWriter appends a chunk all or nothing.
type AtomicWriter interface {
	// WriteChunkAtomic is WriteChunk for a chunk that must be checked
	// before it counts (a tus Upload-Checksum, an RFC 9530 Content-Digest).
	// It reads src until io.EOF, then calls check; only when check returns
	// nil are the bytes appended, durably. When src or check fails,
	// nothing is appended and the error is returned with a count of 0.
	WriteChunkAtomic(ctx context.Context, u Upload, offset int64, src io.Reader, check func() error) (int64, error)
}

// Locker makes locks, one per upload ID, for exclusive access to uploads.
// A store shared by several processes provides locks that work across
// them; otherwise a [MemoryLocker] does.
type Locker interface {
	NewLock(id string) (Lock, error)
}

// Lock is exclusive access to one upload.
type Lock interface {
	// Lock acquires the lock, waiting until it is free or ctx is done, in
	// which case it returns an error wrapping [ErrLockTimeout].
	//
	// requestRelease is this holder's answer to others: while it holds the
	// lock, a later Lock on the same ID calls it (maybe concurrently, maybe
	// many times while it waits) to ask for the lock. The holder decides:
	// it may end its work early and Unlock, or carry on. requestRelease
	// must not block.
	Lock(ctx context.Context, requestRelease func()) error
	// Unlock releases the lock.
	Unlock() error
}

// Errors stores return, possibly wrapped.
var (
	ErrNotFound       = errors.New("store: upload not found")
	ErrOffsetMismatch = errors.New("store: offset does not match the upload's")
	ErrSizeExceeded   = errors.New("store: upload size exceeded")
	ErrInvalidLength  = errors.New("store: invalid upload length")
	ErrNotFinished    = errors.New("store: upload not finished")
	ErrLockTimeout    = errors.New("store: timed out waiting for the upload's lock")
	// ErrLost marks an upload whose stored bytes are fewer than its durable
	// offset said: storage lost data. Such an upload cannot continue.
	ErrLost = errors.New("store: upload data lost")
)

// NewID returns a new upload ID: 128 bits from crypto/rand, in lower-case
// hex, so that IDs cannot be guessed (draft-ietf-httpbis-resumable-upload
// security considerations) and are safe as file names.
func NewID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

// ValidID reports whether id has the form NewID returns. Stores use it to
// refuse IDs that could never name an upload, such as path tricks.
func ValidID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
