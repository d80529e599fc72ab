package ferry_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryhq/ferry"
)

// Every count a caller sets is refused above its documented bound, with the
// same typed error from every request type, before any file or request.
func TestRequestLimits(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	const u = "http://127.0.0.1:1/f"
	s := mustSession(t, ferry.EphemeralConfig())
	ctx := context.Background()
	tests := []struct {
		name  string
		field string
		start func() error
	}{
		{"download", "Connections", func() error {
			_, err := s.NewDownload(ctx, ferry.DownloadRequest{URL: u, Path: filepath.Join(dir, "d"), Connections: ferry.MaxConnections + 1})
			return err
		}},
		{"download 1e6", "Connections", func() error {
			_, err := s.NewDownload(ctx, ferry.DownloadRequest{URL: u, Path: filepath.Join(dir, "d"), Connections: 1_000_000})
			return err
		}},
		{"upload", "Connections", func() error {
			_, err := s.NewUpload(ctx, ferry.UploadRequest{URL: u, Path: src, Connections: ferry.MaxConnections + 1})
			return err
		}},
		{"upload chunk", "ChunkSize", func() error {
			_, err := s.NewUpload(ctx, ferry.UploadRequest{URL: u, Path: src, ChunkSize: ferry.MinChunkSize - 1})
			return err
		}},
		{"hls", "Connections", func() error {
			_, err := s.HLS(ctx, ferry.HLSRequest{URL: u, Dir: filepath.Join(dir, "h"), Connections: ferry.MaxConnections + 1})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.start()
			var le *ferry.LimitError
			if !errors.As(err, &le) || le.Field != tt.field || !errors.Is(err, ferry.ErrInvalidRequest) {
				t.Fatalf("err = %v (%T), want a *LimitError on %s that is ErrInvalidRequest", err, err, tt.field)
			}
		})
	}
	// At the bound itself, the request is taken.
	if _, err := s.NewDownload(ctx, ferry.DownloadRequest{URL: u, Path: filepath.Join(dir, "d"), Connections: ferry.MaxConnections}); err != nil {
		t.Errorf("Connections = MaxConnections: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("refused requests left files: %v", entries)
	}
}
