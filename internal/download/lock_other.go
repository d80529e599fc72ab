//go:build !linux

package download

import "os"

func lock(*os.File) error { return nil }
