package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"luamods/engine"
	"luamods/modtest"
)

func testCmd() *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "test [PATH ...]",
		Short: "Run *_test.lua files (default: next to each module of ./luamods.yaml, and under scripts/)",
		RunE: func(cmd *cobra.Command, args []string) error {
			paths := args
			if len(paths) == 0 {
				paths = defaultTestPaths()
			}
			files, err := modtest.Discover(paths)
			if err != nil {
				return &codedError{exitUsage, err}
			}
			r := &modtest.Runner{Out: cmd.OutOrStdout()}
			if verbose {
				r.Logger = newLogger(cmd.ErrOrStderr(), "debug")
			}
			res := r.Run(cmd.Context(), files)
			fmt.Fprintf(cmd.OutOrStdout(), "%d passed, %d failed\n", res.Passed, res.Failed)
			if res.Failed > 0 {
				return &codedError{exitError, fmt.Errorf("%d test(s) failed", res.Failed)}
			}
			if res.Passed == 0 {
				return &codedError{exitError, fmt.Errorf("no tests found in %v", paths)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show the test files' own log (print, api.log)")
	return cmd
}

// defaultTestPaths are the folders of ./luamods.yaml's modules and scripts/.
func defaultTestPaths() []string {
	seen := map[string]bool{}
	var paths []string
	add := func(p string) {
		if _, err := os.Stat(p); err == nil && !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	if cfg, err := engine.LoadConfig("luamods.yaml"); err == nil {
		for _, m := range cfg.Modules {
			add(filepath.Dir(m.File))
		}
	}
	add("scripts")
	return paths
}
