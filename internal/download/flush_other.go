//go:build !linux

package download

import "os"

func startWriteback(*os.File, int64, int64) {}
