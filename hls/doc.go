// Package hls reads and writes HLS playlists (RFC 8216): multivariant
// (master) playlists with their variants and renditions, and media
// playlists with their segments, keys, byte ranges and initialization
// sections.
//
// Parse reads either kind; Encode writes one back. Parsing is strict about
// what a downloader must get right (a segment without EXTINF, a byte range
// that cannot be resolved, a malformed attribute list) and ignores tags it
// does not know, as RFC 8216 §6.3.1 asks of clients.
package hls
