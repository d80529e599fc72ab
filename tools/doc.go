// Package tools pins the Go programs the interop suite runs as real peers
// (tusd), in a module of their own so that the library's module does not
// depend on them. Build one with:
//
//	go build -C tools -o tusd github.com/tus/tusd/v2/cmd/tusd
package tools
