// Package daemon is ferry's background daemon: it runs transfers on behalf
// of programs that may exit before the transfers end, and keeps what
// happened for them until they come back.
//
// Tasks and a per-session event log live in an embedded database (bbolt,
// internal/journal). Every change of a task's state is written together
// with its event in one transaction before anyone is told, so a kill -9 at
// any moment loses neither: on restart, tasks that were running continue
// from their engines' own resume state (a download's .part and control
// file, an upload's offset on the server, an HLS directory's finished
// segments), and events not yet acknowledged are delivered again.
//
// The API is HTTP with JSON over a unix socket (docs/API.md); clients use
// internal/bgapi. One ferry.Session runs every task, so the per-host
// connection cap and the bandwidth budget hold across all of them.
package daemon
