package main

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/cleantrack/jobs/internal/startup"
)

// newVersionCmd prints the version, commit and Go version the binary was
// built with; it needs no configuration, PostgreSQL or Redis.
func newVersionCmd(e *env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this build",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			b := startup.ReadBuild()
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(b)
			}
			b.Write(e.stdout, "cleantrack")
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON: version, commit, commit_time, modified, go")
	return c
}
