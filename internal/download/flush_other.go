//go:build !linux

package download

import "os"

func startWriteback(*os.File, int64, int64) {}

func preallocate(f *os.File, size int64) error { return f.Truncate(size) }
