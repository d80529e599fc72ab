// Package filestore is a [store.Store] on a local directory.
//
// Each upload is two files named by its ID: <id>.bin holds the bytes and
// <id>.info the [store.Info] as JSON, its metadata in Base64 so that any
// bytes survive at 4/3 of their size. The info file is only ever replaced
// atomically (temporary file, fsync, rename, fsync of the directory), and
// the data file is fsynced before an info file with a larger offset is
// written, so the offset on disk is always durable.
//
// A crash can leave bytes past that offset in a data file: they were
// received but never counted, and the client was never told about them.
// The first time an upload is opened after [New], its data file is cut back
// to the recorded offset. A data file shorter than its offset means storage
// lost acknowledged bytes; such an upload fails with [store.ErrLost].
//
// Long chunks are made durable piecewise, every [Config.CheckpointBytes], so
// a crash in the middle of a large PATCH loses at most that much.
//
// One process owns a directory: the store keeps no cross-process locks.
package filestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferryhq/ferry/internal/atomicfile"
	"github.com/ferryhq/ferry/server/store"
)

// DefaultCheckpointBytes is how many bytes of one chunk are written between
// checkpoints when Config.CheckpointBytes is zero.
const DefaultCheckpointBytes = 16 << 20

// Config configures a FileStore.
type Config struct {
	// Dir holds the uploads. It is created if missing.
	Dir string
	// CheckpointBytes is how many bytes WriteChunk writes before it makes
	// them durable and records the new offset. Zero means
	// DefaultCheckpointBytes.
	CheckpointBytes int64
}

// FileStore keeps uploads in a directory. It is safe for concurrent use;
// changes to one upload must be serialised by the caller (see
// [store.Locker]).
type FileStore struct {
	dir        string
	checkpoint int64

	mu         sync.Mutex
	reconciled map[string]bool // uploads checked against their info since New
}

// Interface guards.
var (
	_ store.Store          = (*FileStore)(nil)
	_ store.Terminater     = (*FileStore)(nil)
	_ store.LengthDeclarer = (*FileStore)(nil)
	_ store.Concater       = (*FileStore)(nil)
	_ store.Lister         = (*FileStore)(nil)
	_ store.AtomicWriter   = (*FileStore)(nil)
)

// New returns a store on cfg.Dir, creating the directory if needed and
// removing temporary files a crash left behind.
func New(cfg Config) (*FileStore, error) {
	if cfg.Dir == "" {
		return nil, errors.New("filestore: Config.Dir is required")
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	fi, err := os.Stat(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("filestore: %s is not a directory", cfg.Dir)
	}
	if cfg.CheckpointBytes <= 0 {
		cfg.CheckpointBytes = DefaultCheckpointBytes
	}
	s := &FileStore{dir: cfg.Dir, checkpoint: cfg.CheckpointBytes, reconciled: map[string]bool{}}
	// Temporary info files (atomicfile names them ".<id>.info.tmp*") are
	// never live once a process starts.
	tmps, _ := filepath.Glob(filepath.Join(cfg.Dir, ".*.info.tmp*"))
	for _, t := range tmps {
		os.Remove(t)
	}
	return s, nil
}

// Dir returns the directory the store keeps its files in.
func (s *FileStore) Dir() string { return s.dir }

func (s *FileStore) infoPath(id string) string { return filepath.Join(s.dir, id+".info") }

// DataPath returns the path of the file holding the bytes of upload id.
func (s *FileStore) DataPath(id string) string { return filepath.Join(s.dir, id+".bin") }

// NewUpload creates the data file (exclusively: IDs never collide) and the
// info file, both durable when it returns.
func (s *FileStore) NewUpload(ctx context.Context, info store.Info) (store.Upload, error) {
	if !store.ValidID(info.ID) {
		return nil, fmt.Errorf("filestore: invalid upload ID %q", info.ID)
	}
	if info.Size < 0 {
		return nil, store.ErrInvalidLength
	}
	now := time.Now().UTC()
	info.Offset = 0
	info.CreatedAt, info.UpdatedAt = now, now
	f, err := os.OpenFile(s.DataPath(info.ID), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("filestore: new upload: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("filestore: new upload: %w", err)
	}
	if err := s.writeInfo(info); err != nil {
		os.Remove(s.DataPath(info.ID))
		return nil, fmt.Errorf("filestore: new upload: %w", err)
	}
	s.mu.Lock()
	s.reconciled[info.ID] = true
	s.mu.Unlock()
	return &upload{s: s, id: info.ID}, nil
}

// GetUpload returns upload id; the first time in this process it
// reconciles the data file with the recorded offset (see the package doc).
func (s *FileStore) GetUpload(ctx context.Context, id string) (store.Upload, error) {
	if !store.ValidID(id) {
		return nil, fmt.Errorf("%w: %q", store.ErrNotFound, id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.reconciled[id] {
		if err := s.reconcile(id); err != nil {
			return nil, err
		}
		s.reconciled[id] = true
	} else if _, err := os.Stat(s.infoPath(id)); err != nil {
		return nil, notFound(id, err)
	}
	return &upload{s: s, id: id}, nil
}

// reconcile cuts bytes past the durable offset off the data file.
func (s *FileStore) reconcile(id string) error {
	info, err := s.readInfo(id)
	if err != nil {
		return err
	}
	fi, err := os.Stat(s.DataPath(id))
	switch {
	case errors.Is(err, fs.ErrNotExist) && info.Offset == 0:
		f, err := os.OpenFile(s.DataPath(id), os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("filestore: recreate data of %s: %w", id, err)
		}
		return f.Close()
	case err != nil:
		return fmt.Errorf("%w: %s: %w", store.ErrLost, id, err)
	case fi.Size() < info.Offset:
		return fmt.Errorf("%w: %s: %d bytes stored, %d recorded", store.ErrLost, id, fi.Size(), info.Offset)
	case fi.Size() > info.Offset:
		f, err := os.OpenFile(s.DataPath(id), os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("filestore: reconcile %s: %w", id, err)
		}
		defer f.Close()
		if err := f.Truncate(info.Offset); err != nil {
			return fmt.Errorf("filestore: reconcile %s: %w", id, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("filestore: reconcile %s: %w", id, err)
		}
	}
	return nil
}

func notFound(id string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", store.ErrNotFound, id)
	}
	return fmt.Errorf("filestore: %s: %w", id, err)
}

// record is the JSON of an info file: the store.Info with its metadata as
// Base64 pairs, which keep any bytes exactly (JSON strings hold only
// UTF-8, and escape a NUL byte in six), at 4/3 of their size.
type record struct {
	store.Info
	// Meta is the metadata, a [key, value] pair each.
	Meta [][2][]byte `json:"meta,omitempty"`
	// MetaData shadows Info.MetaData: it is read from info files written
	// before Meta, and never written.
	MetaData map[string]string `json:"metadata,omitempty"`
}

func (s *FileStore) readInfo(id string) (store.Info, error) {
	data, err := os.ReadFile(s.infoPath(id))
	if err != nil {
		return store.Info{}, notFound(id, err)
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return store.Info{}, fmt.Errorf("filestore: info of %s: %w", id, err)
	}
	info := rec.Info
	info.MetaData = rec.MetaData
	if len(rec.Meta) > 0 {
		info.MetaData = make(map[string]string, len(rec.Meta))
		for _, kv := range rec.Meta {
			info.MetaData[string(kv[0])] = string(kv[1])
		}
	}
	return info, nil
}

func (s *FileStore) writeInfo(info store.Info) error {
	rec := record{Info: info}
	keys := slices.Sorted(maps.Keys(info.MetaData))
	for _, k := range keys {
		rec.Meta = append(rec.Meta, [2][]byte{[]byte(k), []byte(info.MetaData[k])})
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(s.infoPath(info.ID), data, 0o644)
}

// Terminate removes the info file first, so a crash in between leaves an
// orphan data file rather than an upload without bytes.
func (s *FileStore) Terminate(ctx context.Context, u store.Upload) error {
	id, err := s.own(u)
	if err != nil {
		return err
	}
	if err := os.Remove(s.infoPath(id)); err != nil {
		return notFound(id, err)
	}
	if err := os.Remove(s.DataPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("filestore: terminate %s: %w", id, err)
	}
	s.mu.Lock()
	delete(s.reconciled, id)
	s.mu.Unlock()
	return atomicfile.SyncDir(s.dir)
}

// DeclareLength records the length of an upload created with its size
// deferred.
func (s *FileStore) DeclareLength(ctx context.Context, u store.Upload, length int64) error {
	id, err := s.own(u)
	if err != nil {
		return err
	}
	info, err := s.readInfo(id)
	if err != nil {
		return err
	}
	if !info.SizeIsDeferred || length < info.Offset {
		return fmt.Errorf("%w: %d for %s (offset %d, deferred %v)", store.ErrInvalidLength, length, id, info.Offset, info.SizeIsDeferred)
	}
	info.Size, info.SizeIsDeferred = length, false
	info.UpdatedAt = time.Now().UTC()
	return s.writeInfo(info)
}

// Concat copies the partial uploads into final (with copy_file_range where
// the kernel has it) and makes the result durable.
func (s *FileStore) Concat(ctx context.Context, final store.Upload, partials []store.Upload) error {
	id, err := s.own(final)
	if err != nil {
		return err
	}
	info, err := s.readInfo(id)
	if err != nil {
		return err
	}
	if info.Offset != 0 {
		return fmt.Errorf("filestore: concat into %s: not empty (offset %d)", id, info.Offset)
	}
	var total int64
	for _, p := range partials {
		pi, err := p.GetInfo(ctx)
		if err != nil {
			return err
		}
		if !pi.Finished() {
			return fmt.Errorf("%w: partial upload %s", store.ErrNotFinished, pi.ID)
		}
		total += pi.Size
	}
	if !info.SizeIsDeferred && info.Size != total {
		return fmt.Errorf("%w: final %s has size %d, partials %d", store.ErrInvalidLength, id, info.Size, total)
	}
	f, err := os.OpenFile(s.DataPath(id), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("filestore: concat into %s: %w", id, err)
	}
	defer f.Close()
	for _, p := range partials {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := p.GetReader(ctx)
		if err != nil {
			return err
		}
		_, err = copyAll(f, r)
		r.Close()
		if err != nil {
			return fmt.Errorf("filestore: concat into %s: %w", id, err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("filestore: concat into %s: %w", id, err)
	}
	info.Size, info.SizeIsDeferred, info.Offset = total, false, total
	info.UpdatedAt = time.Now().UTC()
	return s.writeInfo(info)
}

// copyAll copies r to f through f.ReadFrom, which uses copy_file_range or
// sendfile when r is (a section of) a file.
func copyAll(f *os.File, r io.Reader) (int64, error) {
	if rs, ok := r.(*readCloser); ok {
		return f.ReadFrom(&io.LimitedReader{R: rs.f, N: rs.size})
	}
	return f.ReadFrom(r)
}

// List returns the IDs of the uploads in the directory.
func (s *FileStore) List(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("filestore: list: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), ".info"); ok && store.ValidID(id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// own returns the ID of u, which must come from s.
func (s *FileStore) own(u store.Upload) (string, error) {
	fu, ok := u.(*upload)
	if !ok || fu.s != s {
		return "", fmt.Errorf("filestore: upload %T is not from this store", u)
	}
	return fu.id, nil
}

// upload is a handle on one upload; all state is on disk.
type upload struct {
	s  *FileStore
	id string
}

func (u *upload) GetInfo(ctx context.Context) (store.Info, error) { return u.s.readInfo(u.id) }

func (u *upload) FinishUpload(ctx context.Context) error {
	info, err := u.s.readInfo(u.id)
	if err != nil {
		return err
	}
	if !info.Finished() {
		return fmt.Errorf("%w: %s at %d", store.ErrNotFinished, u.id, info.Offset)
	}
	return nil
}

// GetReader returns the first Offset bytes of the data file, which is all
// that counts even while a chunk is being written past it.
func (u *upload) GetReader(ctx context.Context) (io.ReadCloser, error) {
	info, err := u.s.readInfo(u.id)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(u.s.DataPath(u.id))
	if err != nil {
		return nil, notFound(u.id, err)
	}
	return &readCloser{SectionReader: io.NewSectionReader(f, 0, info.Offset), f: f, size: info.Offset}, nil
}

// readCloser is a section of a data file: an io.ReadSeeker and io.ReaderAt.
type readCloser struct {
	*io.SectionReader
	f    *os.File
	size int64
}

func (r *readCloser) Close() error { return r.f.Close() }

var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// WriteChunk appends src; see store.Upload. Every CheckpointBytes it makes
// the bytes so far durable and records the offset, so a chunk cut short, or
// a crash, loses at most one checkpoint's worth.
func (u *upload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	w, err := u.begin(offset)
	if err != nil {
		return 0, err
	}
	defer w.f.Close()
	n, err := w.copy(ctx, src, u.s.checkpoint)
	if n > w.committed-offset {
		if cerr := w.commit(offset + n); cerr != nil {
			return w.committed - offset, cerr
		}
	}
	return w.committed - offset, err
}

// WriteChunkAtomic appends src only if check passes once src is drained.
func (s *FileStore) WriteChunkAtomic(ctx context.Context, u store.Upload, offset int64, src io.Reader, check func() error) (int64, error) {
	if _, err := s.own(u); err != nil {
		return 0, err
	}
	w, err := u.(*upload).begin(offset)
	if err != nil {
		return 0, err
	}
	defer w.f.Close()
	n, err := w.copy(ctx, src, 0)
	if err == nil {
		err = check()
	}
	if err != nil {
		// Nothing of the chunk counts: cut it off again.
		if terr := w.f.Truncate(offset); terr != nil {
			return 0, errors.Join(err, terr)
		}
		return 0, err
	}
	if err := w.commit(offset + n); err != nil {
		w.f.Truncate(offset)
		return 0, err
	}
	return n, nil
}

// chunkWriter appends one chunk to a data file.
type chunkWriter struct {
	u         *upload
	f         *os.File
	info      store.Info
	committed int64 // durable offset recorded in the info file
}

func (u *upload) begin(offset int64) (*chunkWriter, error) {
	info, err := u.s.readInfo(u.id)
	if err != nil {
		return nil, err
	}
	if offset != info.Offset {
		return nil, fmt.Errorf("%w: %d, upload %s is at %d", store.ErrOffsetMismatch, offset, u.id, info.Offset)
	}
	f, err := os.OpenFile(u.s.DataPath(u.id), os.O_WRONLY, 0)
	if err != nil {
		return nil, notFound(u.id, err)
	}
	// Bytes past the durable offset are what a failed chunk left; the
	// new chunk replaces them.
	if fi, err := f.Stat(); err != nil || fi.Size() != offset {
		if err := f.Truncate(offset); err != nil {
			f.Close()
			return nil, fmt.Errorf("filestore: write %s: %w", u.id, err)
		}
	}
	return &chunkWriter{u: u, f: f, info: info, committed: offset}, nil
}

// copy writes src at the committed offset onwards, committing every
// checkpoint bytes (never when checkpoint is 0). It returns how many bytes
// it wrote in all.
func (w *chunkWriter) copy(ctx context.Context, src io.Reader, checkpoint int64) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	start := w.committed
	room := int64(-1) // unlimited while the size is deferred
	if !w.info.SizeIsDeferred {
		room = w.info.Size - start
	}
	var n, uncommitted int64
	for {
		if err := ctx.Err(); err != nil {
			return n, context.Cause(ctx)
		}
		m, rerr := src.Read(buf)
		if m > 0 {
			exceeded := false
			if room >= 0 && n+int64(m) > room {
				m, exceeded = int(room-n), true
			}
			k, werr := w.f.WriteAt(buf[:m], start+n)
			n += int64(k)
			uncommitted += int64(k)
			if werr != nil {
				return n, fmt.Errorf("filestore: write %s: %w", w.u.id, werr)
			}
			if exceeded {
				return n, fmt.Errorf("%w: %s has size %d", store.ErrSizeExceeded, w.u.id, w.info.Size)
			}
			if checkpoint > 0 && uncommitted >= checkpoint {
				if err := w.commit(start + n); err != nil {
					return n, err
				}
				uncommitted = 0
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// commit makes the data up to offset durable, then records offset.
func (w *chunkWriter) commit(offset int64) error {
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("filestore: sync %s: %w", w.u.id, err)
	}
	info := w.info
	info.Offset = offset
	info.UpdatedAt = time.Now().UTC()
	if err := w.u.s.writeInfo(info); err != nil {
		return fmt.Errorf("filestore: record offset of %s: %w", w.u.id, err)
	}
	w.info, w.committed = info, offset
	return nil
}
