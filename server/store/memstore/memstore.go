// Package memstore is a [store.Store] in memory, for tests and examples:
// everything is lost with the process, and memory grows with the uploads.
// It has the capabilities Terminater, LengthDeclarer, Concater and Lister,
// but not AtomicWriter or Locker, so a handler on it exercises the paths
// other backends without them take.
package memstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ferryhq/ferry/server/store"
)

// Store keeps uploads in memory. The zero value is ready to use; it is safe
// for concurrent use.
type Store struct {
	mu      sync.Mutex
	uploads map[string]*upload
}

// Interface guards.
var (
	_ store.Store          = (*Store)(nil)
	_ store.Terminater     = (*Store)(nil)
	_ store.LengthDeclarer = (*Store)(nil)
	_ store.Concater       = (*Store)(nil)
	_ store.Lister         = (*Store)(nil)
)

// New returns an empty store.
func New() *Store { return &Store{} }

type upload struct {
	s    *Store
	id   string
	info store.Info // guarded by s.mu
	data []byte     // guarded by s.mu; len(data) == info.Offset
}

func (s *Store) NewUpload(ctx context.Context, info store.Info) (store.Upload, error) {
	if !store.ValidID(info.ID) {
		return nil, fmt.Errorf("memstore: invalid upload ID %q", info.ID)
	}
	now := time.Now().UTC()
	info.Offset, info.CreatedAt, info.UpdatedAt = 0, now, now
	info.MetaData = maps.Clone(info.MetaData)
	info.PartialUploads = slices.Clone(info.PartialUploads)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.uploads == nil {
		s.uploads = map[string]*upload{}
	}
	if _, dup := s.uploads[info.ID]; dup {
		return nil, fmt.Errorf("memstore: upload %s exists", info.ID)
	}
	u := &upload{s: s, id: info.ID, info: info}
	s.uploads[info.ID] = u
	return u, nil
}

func (s *Store) GetUpload(ctx context.Context, id string) (store.Upload, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.uploads[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", store.ErrNotFound, id)
	}
	return u, nil
}

func (s *Store) own(u store.Upload) (*upload, error) {
	mu, ok := u.(*upload)
	if !ok || mu.s != s {
		return nil, fmt.Errorf("memstore: upload %T is not from this store", u)
	}
	if s.uploads[mu.id] != mu {
		return nil, fmt.Errorf("%w: %s", store.ErrNotFound, mu.id)
	}
	return mu, nil
}

func (s *Store) Terminate(ctx context.Context, u store.Upload) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	mu, err := s.own(u)
	if err != nil {
		return err
	}
	delete(s.uploads, mu.id)
	return nil
}

func (s *Store) DeclareLength(ctx context.Context, u store.Upload, length int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	mu, err := s.own(u)
	if err != nil {
		return err
	}
	if !mu.info.SizeIsDeferred || length < mu.info.Offset {
		return fmt.Errorf("%w: %d for %s", store.ErrInvalidLength, length, mu.id)
	}
	mu.info.Size, mu.info.SizeIsDeferred = length, false
	mu.info.UpdatedAt = time.Now().UTC()
	return nil
}

func (s *Store) Concat(ctx context.Context, final store.Upload, partials []store.Upload) error {
	var buf bytes.Buffer
	for _, p := range partials {
		info, err := p.GetInfo(ctx)
		if err != nil {
			return err
		}
		if !info.Finished() {
			return fmt.Errorf("%w: partial upload %s", store.ErrNotFinished, info.ID)
		}
		r, err := p.GetReader(ctx)
		if err != nil {
			return err
		}
		_, err = io.Copy(&buf, r)
		r.Close()
		if err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mu, err := s.own(final)
	if err != nil {
		return err
	}
	if mu.info.Offset != 0 {
		return fmt.Errorf("memstore: concat into %s: not empty", mu.id)
	}
	n := int64(buf.Len())
	if !mu.info.SizeIsDeferred && mu.info.Size != n {
		return fmt.Errorf("%w: final %s has size %d, partials %d", store.ErrInvalidLength, mu.id, mu.info.Size, n)
	}
	mu.data = buf.Bytes()
	mu.info.Size, mu.info.SizeIsDeferred, mu.info.Offset = n, false, n
	mu.info.UpdatedAt = time.Now().UTC()
	return nil
}

func (s *Store) List(ctx context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Keys(s.uploads)), nil
}

func (u *upload) GetInfo(ctx context.Context) (store.Info, error) {
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	if _, err := u.s.own(u); err != nil {
		return store.Info{}, err
	}
	info := u.info
	info.MetaData = maps.Clone(info.MetaData)
	info.PartialUploads = slices.Clone(info.PartialUploads)
	return info, nil
}

// WriteChunk appends what src yields; bytes read before an error count.
func (u *upload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	u.s.mu.Lock()
	if _, err := u.s.own(u); err != nil {
		u.s.mu.Unlock()
		return 0, err
	}
	info := u.info
	u.s.mu.Unlock()
	if offset != info.Offset {
		return 0, fmt.Errorf("%w: %d, upload %s is at %d", store.ErrOffsetMismatch, offset, u.id, info.Offset)
	}
	room := int64(-1)
	if !info.SizeIsDeferred {
		room = info.Size - offset
		src = io.LimitReader(src, room+1)
	}
	var buf bytes.Buffer
	_, err := buf.ReadFrom(src)
	got := buf.Bytes()
	if room >= 0 && int64(len(got)) > room {
		got, err = got[:room], fmt.Errorf("%w: %s has size %d", store.ErrSizeExceeded, u.id, info.Size)
	}
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	u.data = append(u.data, got...)
	u.info.Offset += int64(len(got))
	u.info.UpdatedAt = time.Now().UTC()
	return int64(len(got)), err
}

// GetReader returns a snapshot of the stored bytes.
func (u *upload) GetReader(ctx context.Context) (io.ReadCloser, error) {
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	if _, err := u.s.own(u); err != nil {
		return nil, err
	}
	return readCloser{bytes.NewReader(u.data[:u.info.Offset:u.info.Offset])}, nil
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func (u *upload) FinishUpload(ctx context.Context) error {
	info, err := u.GetInfo(ctx)
	if err != nil {
		return err
	}
	if !info.Finished() {
		return fmt.Errorf("%w: %s at %d", store.ErrNotFinished, u.id, info.Offset)
	}
	return nil
}
