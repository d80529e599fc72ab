package bgapi

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The client talks only to a daemon of its own user: it hangs up on a
// socket served by anyone else before sending a byte.
func TestClientRefusesForeignDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "d.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, _ := io.ReadAll(c)
			got <- len(b)
			c.Close()
		}
	}()
	c := NewClient(sock)
	defer c.Close()
	c.uid = os.Geteuid() + 4242
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a client that sends waits for an answer that never comes
	defer cancel()
	_, err = c.Health(ctx)
	var fe *ForeignDaemonError
	if !errors.Is(err, ErrForeignDaemon) || !errors.As(err, &fe) || fe.UID != os.Geteuid() {
		t.Fatalf("got %v, want a ForeignDaemonError naming uid %d", err, os.Geteuid())
	}
	select {
	case n := <-got:
		if n != 0 {
			t.Errorf("the client sent %d bytes to a foreign daemon", n)
		}
	case <-time.After(time.Minute):
		t.Fatal("the client never hung up")
	}
}
