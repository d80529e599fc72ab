package statefile

import (
	"os"
	"path/filepath"
	"testing"
)

type state struct {
	N    int      `json:"n"`
	Tags []string `json:"tags"`
}

func TestStores(t *testing.T) {
	dir := t.TempDir()
	for name, s := range map[string]Store[state]{"file": File[state]{Path: filepath.Join(dir, "s.json")}, "mem": NewMem[state](nil)} {
		t.Run(name, func(t *testing.T) {
			if v, err := s.Load(); v != nil || err != nil {
				t.Fatalf("empty Load = %v, %v", v, err)
			}
			in := &state{N: 7, Tags: []string{"a"}}
			if err := s.Save(in); err != nil {
				t.Fatal(err)
			}
			in.Tags[0] = "changed after save"
			v, err := s.Load()
			if err != nil || v.N != 7 || v.Tags[0] != "a" {
				t.Fatalf("Load = %+v, %v", v, err)
			}
			if err := s.Remove(); err != nil {
				t.Fatal(err)
			}
			if v, _ := s.Load(); v != nil {
				t.Fatal("Load after Remove found a value")
			}
			if err := s.Remove(); err != nil {
				t.Fatalf("second Remove: %v", err)
			}
		})
	}
}

func TestFileIgnoresDebris(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.json")
	os.WriteFile(p, []byte("{torn"), 0o644)
	if v, err := (File[state]{Path: p}).Load(); v != nil || err != nil {
		t.Fatalf("Load of a torn file = %v, %v; want nothing", v, err)
	}
}
