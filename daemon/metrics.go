package daemon

import (
	"fmt"
	"net/http"
	"sort"

	"github.com/ferryhq/ferry/internal/bgapi"
)

// metrics serves the Prometheus text format: tasks by state and the
// running transfers' bytes.
func (d *daemon) metrics(w http.ResponseWriter, r *http.Request) {
	ts, err := d.j.Tasks("")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	byState := map[bgapi.State]int{}
	for _, t := range ts {
		byState[t.State]++
	}
	d.mu.Lock()
	var done int64
	var speed float64
	for _, r := range d.running {
		if r.ended || r.task == nil {
			continue
		}
		p := r.task.Progress()
		done += p.Done
		speed += p.Speed
	}
	running, queued := d.transferring(), len(d.q.members)
	d.mu.Unlock()

	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintln(w, "# HELP ferry_daemon_tasks Tasks in the journal by state.")
	fmt.Fprintln(w, "# TYPE ferry_daemon_tasks gauge")
	states := []bgapi.State{bgapi.Queued, bgapi.Running, bgapi.Paused, bgapi.Waiting, bgapi.Done, bgapi.Failed, bgapi.Canceled}
	sort.Slice(states, func(i, j int) bool { return states[i] < states[j] })
	for _, s := range states {
		fmt.Fprintf(w, "ferry_daemon_tasks{state=%q} %d\n", s, byState[s])
	}
	fmt.Fprintln(w, "# HELP ferry_daemon_running_transfers Transfers running now.")
	fmt.Fprintln(w, "# TYPE ferry_daemon_running_transfers gauge")
	fmt.Fprintf(w, "ferry_daemon_running_transfers %d\n", running)
	fmt.Fprintln(w, "# HELP ferry_daemon_queued_tasks Tasks waiting for their turn.")
	fmt.Fprintln(w, "# TYPE ferry_daemon_queued_tasks gauge")
	fmt.Fprintf(w, "ferry_daemon_queued_tasks %d\n", queued)
	fmt.Fprintln(w, "# HELP ferry_daemon_running_bytes Bytes done by the running transfers.")
	fmt.Fprintln(w, "# TYPE ferry_daemon_running_bytes gauge")
	fmt.Fprintf(w, "ferry_daemon_running_bytes %d\n", done)
	fmt.Fprintln(w, "# HELP ferry_daemon_speed_bytes_per_second The running transfers' recent speed together.")
	fmt.Fprintln(w, "# TYPE ferry_daemon_speed_bytes_per_second gauge")
	fmt.Fprintf(w, "ferry_daemon_speed_bytes_per_second %.0f\n", speed)
}
