//go:build !unix

package server

import "io/fs"

// fileID has no portable identity to offer outside Unix; the ETag then rests
// on size and modification time alone.
func fileID(fs.FileInfo) (dev, ino uint64) { return 0, 0 }

// changeTime has no portable status change time to offer outside Unix.
func changeTime(fs.FileInfo) int64 { return 0 }
