//go:build race

package journal

// raceDetector: the race detector slows JSON tenfold; the damage tests
// run fewer trials under it (the seeds differ from run to run).
const raceDetector = true
