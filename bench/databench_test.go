package main

import (
	"strings"
	"testing"
)

// The section reports each client's median rate and each ferry's share of
// net/http's, against the goal.
func TestDataSection(t *testing.T) {
	clients := []dataClient{{name: "net/http"}, {name: "ferry (default)"}, {name: "ferry (ephemeral)"}}
	sec := dataSection(clients, map[string][]float64{
		"net/http":          {900, 1000, 1100},
		"ferry (default)":   {950, 920, 990},
		"ferry (ephemeral)": {500, 800, 700},
	}, 1000, 3, 4096)
	for _, want := range []string{
		dataSectionStart + "\n", "| net/http | 1000 | 1.00x |  |",
		"| ferry (default) | 950 | 0.95x | met |", "| ferry (ephemeral) | 700 | 0.70x | missed |", dataSectionEnd + "\n",
	} {
		if !strings.Contains(sec, want) {
			t.Errorf("section lacks %q:\n%s", want, sec)
		}
	}
}
