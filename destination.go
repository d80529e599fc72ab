package ferry

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ferryhq/ferry/internal/atomicfile"
)

// ErrMissingDir reports a destination whose directory does not exist; the
// request's CreateDirs makes it. It comes wrapped in ErrInvalidRequest.
var ErrMissingDir = errors.New("ferry: the destination's directory does not exist")

// maxRemoteName bounds RemoteName in bytes, leaving room under the usual
// 255-byte limit for the .part and .ferry suffixes.
const maxRemoteName = 200

// RemoteName is the file name a download of rawURL takes in a directory
// (and the ferry command's default, as curl -O and wget name files): the
// last segment of the URL's decoded path, made safe to use as a name. The
// path is decoded before it is split, so an encoded slash (%2F) ends a
// segment as "/" does: "http://h/a%2Fb" gives "b". A backslash (a path
// separator on Windows) and bytes that are not UTF-8 become "_", control
// and invisible formatting characters (such as a right-to-left override)
// are dropped, leading dots and spaces go, and the name is cut to 200
// bytes. An empty result, or a URL whose path ends in "/", gives
// "index.html".
//
// The name comes from the URL that was asked for, not from where redirects
// led: a server must not choose the names of a user's files.
func RemoteName(rawURL string) string {
	const fallback = "index.html"
	u, err := url.Parse(rawURL)
	if err != nil || u.Path == "" || strings.HasSuffix(u.Path, "/") {
		return fallback
	}
	var b strings.Builder
	for _, r := range path.Base(u.Path) {
		switch {
		case r == '\\' || r == utf8.RuneError:
			b.WriteByte('_')
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
		default:
			b.WriteRune(r)
		}
	}
	name := shorten(strings.TrimRight(strings.TrimLeft(b.String(), ". "), " "), maxRemoteName)
	if strings.Trim(name, ".") == "" {
		return fallback
	}
	return name
}

// shorten cuts name to at most n bytes on a character boundary, keeping a
// short extension.
func shorten(name string, n int) string {
	if len(name) <= n {
		return name
	}
	ext := path.Ext(name)
	if len(ext) > 16 {
		ext = ""
	}
	stem := name[:len(name)-len(ext)]
	for len(stem)+len(ext) > n {
		_, size := utf8.DecodeLastRuneInString(stem)
		stem = stem[:len(stem)-size]
	}
	return stem + ext
}

// resolveDestination decides where a download of rawURL to p goes: inside p
// under RemoteName when p is a directory (or a link to one) or ends in a
// separator, in place when it is a device or FIFO (stream), else p itself.
// It refuses what ferry must not replace or write through, and a missing
// directory unless createDirs.
func resolveDestination(p, rawURL string, createDirs bool) (resolved string, stream bool, err error) {
	d, err := classify(p)
	if err != nil {
		return "", false, err
	}
	if d == atomicfile.Dir || strings.HasSuffix(p, string(filepath.Separator)) {
		p = filepath.Join(p, RemoteName(rawURL))
		if d, err = classify(p); err != nil {
			return "", false, err
		}
		if d == atomicfile.Dir {
			return "", false, fmt.Errorf("%w: %s is a directory", ErrInvalidRequest, p)
		}
	}
	if d == atomicfile.Stream {
		return p, true, nil
	}
	return p, false, checkDir(filepath.Dir(p), createDirs)
}

// checkDir refuses a destination directory that is not one, or that is
// missing unless it is to be made.
func checkDir(dir string, createDirs bool) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && createDirs:
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %w: %s", ErrInvalidRequest, ErrMissingDir, dir)
	case err != nil:
		return fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	case !fi.IsDir():
		return fmt.Errorf("%w: %s is not a directory", ErrInvalidRequest, dir)
	}
	return nil
}

// checkHLSPaths refuses an HLS download's directory that is something else
// than a directory (it is made when missing, with its parents), and a
// --concat file ferry could not write: its rules are a download's, except
// that a directory is an error.
func checkHLSPaths(dir, concat string) error {
	d, err := classify(dir)
	if err != nil {
		return err
	}
	if d != atomicfile.Dir && d != atomicfile.Missing {
		return fmt.Errorf("%w: %s is not a directory", ErrInvalidRequest, dir)
	}
	if concat == "" {
		return nil
	}
	switch d, err := classify(concat); {
	case err != nil:
		return err
	case d == atomicfile.Dir:
		return fmt.Errorf("%w: --concat %s is a directory", ErrInvalidRequest, concat)
	case d == atomicfile.Stream:
		return nil
	}
	return checkDir(filepath.Dir(concat), false)
}

// classify is atomicfile.Classify with a failure to look (a parent that is
// a file, no permission) as an invalid request and an unsafe file as an
// *UnsafeFileError.
func classify(p string) (atomicfile.Destination, error) {
	d, err := atomicfile.Classify(p)
	if ue, ok := errors.AsType[*atomicfile.UnsafeError](err); ok {
		return d, (*UnsafeFileError)(ue)
	}
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return d, err
}

// mkdirs makes dir and its missing parents (0777 less the umask) and
// returns those it made, deepest first, so that they can be removed again.
func mkdirs(dir string) ([]string, error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || d == filepath.Dir(d) {
			break
		}
		missing = append(missing, d)
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, err
	}
	return missing, nil
}

// removeDirs removes the directories mkdirs made, if they are empty.
func removeDirs(dirs []string) {
	for _, d := range dirs {
		if os.Remove(d) != nil {
			return
		}
	}
}
