package ferry_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
)

// A task tells of each state it enters, and a download that continues
// from kept bytes tells where it resumes.
func TestStateAndResumeEvents(t *testing.T) {
	srv := ferrytest.NewServer(t, ferrytest.Size(1<<20), ferrytest.DropAfter(300<<10, 1))
	cfg := testConfig(false)
	cfg.Retry.MaxAttempts = -1 // the cut connection ends the first run
	s := mustSession(t, cfg)
	req := ferry.DownloadRequest{URL: srv.URL + "/f", Path: filepath.Join(t.TempDir(), "f"), Connections: 1}
	if _, _, err := download(t, s, req); err == nil {
		t.Fatal("the first run survived its cut connection")
	}
	_, events, err := download(t, s, req)
	if err != nil {
		t.Fatal(err)
	}
	var states []ferry.State
	var resumed []ferry.ResumeEvent
	for _, ev := range events {
		switch e := ev.(type) {
		case ferry.StateEvent:
			states = append(states, e.State)
		case ferry.ResumeEvent:
			resumed = append(resumed, e)
		}
	}
	if want := []ferry.State{ferry.StateRunning, ferry.StateCompleted}; !slices.Equal(states, want) {
		t.Errorf("states %v, want %v", states, want)
	}
	if len(resumed) != 1 || resumed[0].Offset < 300<<10 || resumed[0].Expected != 1<<20 {
		t.Errorf("resume events %+v, want one from the kept bytes of 1 MiB", resumed)
	}

	// Suspended and resumed: each state once, in order.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	task, err := s.NewDownload(ctx, ferry.DownloadRequest{URL: srv.URL + "/f", Path: filepath.Join(t.TempDir(), "g")})
	if err != nil {
		t.Fatal(err)
	}
	evs := task.Events()
	task.Resume()
	task.Suspend()
	task.Resume()
	states = nil
	for ev := range evs {
		if e, ok := ev.(ferry.StateEvent); ok {
			states = append(states, e.State)
		}
	}
	if want := []ferry.State{ferry.StateRunning, ferry.StateSuspended, ferry.StateRunning, ferry.StateCompleted}; !slices.Equal(states, want) && !slices.Equal(states, []ferry.State{ferry.StateRunning, ferry.StateCompleted}) {
		t.Errorf("states %v, want %v (or, when the download ended before the suspension, running and completed)", states, want)
	}
}
