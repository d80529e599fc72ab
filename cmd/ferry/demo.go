package main

import "github.com/spf13/cobra"

func demoCmd(io stdio) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "A tour on loopback: an origin, a download interrupted and resumed",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return runDemo(c.Context(), io) },
	}
}
