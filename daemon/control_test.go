package daemon

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/bgapi"
	"github.com/ferryhq/ferry/internal/journal"
)

// A task running in the journal with no run registered is not running:
// its run ended without recording its end (the daemon stopping, or the
// journal refusing the record). Pause and cancel act on its record at
// once, with their event, instead of looking for a run that is gone and
// answering 409; resume leaves it as it is.
func TestControlStaleRunning(t *testing.T) {
	for action, want := range map[string]bgapi.State{"pause": bgapi.Paused, "cancel": bgapi.Canceled, "resume": bgapi.Running} {
		t.Run(action, func(t *testing.T) {
			d := bareDaemon(t)
			tk, _, err := d.j.Create(&journal.Task{Session: "s", Kind: bgapi.KindGet, State: bgapi.Running,
				Request: json.RawMessage(`{"url":"http://127.0.0.1:1/f","path":"/nonexistent/f"}`)})
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			d.routes().ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/tasks/"+tk.ID+"/"+action, nil))
			var got bgapi.Task
			if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &got) != nil || got.State != want {
				t.Fatalf("%s of a stale running task: %d %s, want 200 %s", action, w.Code, w.Body, want)
			}
			evs, err := d.j.Events("s", 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			last := evs[len(evs)-1].Type
			if action != "resume" && last != string(want) {
				t.Errorf("last event %q, want %q", last, want)
			}
		})
	}
}

// An acknowledgement the journal cannot take is the daemon's failure, not
// the client's: a damaged journal is answered 503, not 400 bad-request;
// an acknowledgement beyond the last event stays a 400.
func TestAckFailureStatus(t *testing.T) {
	d := bareDaemon(t)
	if _, _, err := d.j.Create(&journal.Task{Session: "s", Kind: bgapi.KindGet}); err != nil {
		t.Fatal(err)
	}
	ack := func(seq string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		d.routes().ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/sessions/s/ack", strings.NewReader(`{"seq":`+seq+`}`)))
		return w
	}
	if w := ack("2"); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), bgapi.ProblemBadRequest) {
		t.Errorf("ack beyond the last event: %d %s, want 400 bad-request", w.Code, w.Body)
	}
	zeroJournal(t, journalPath(d.cfg.StateDir))
	if w := ack("1"); w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), bgapi.ProblemBadRequest) {
		t.Errorf("ack on a damaged journal: %d %s, want 503", w.Code, w.Body)
	}
}
