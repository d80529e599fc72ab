// Package transfer holds the vocabulary every ferry engine shares: progress,
// events, metrics and errors. The root package re-exports these types, so the
// engines (download, upload, HLS) and the public API speak one language.
package transfer
