package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"luamods/engine"
	"luamods/scripts"
)

// configSource is where a command's configuration comes from: -c FILE,
// --default (the shipped default), else ./luamods.yaml.
type configSource struct {
	path       string
	useDefault bool
}

// defaultConfigName is the file looked for without -c.
const defaultConfigName = "luamods.yaml"

// configFlags adds -c/--config and --default to cmd.
func configFlags(cmd *cobra.Command, src *configSource) {
	cmd.Flags().StringVarP(&src.path, "config", "c", "", "configuration file (default ./"+defaultConfigName+")")
	cmd.Flags().BoolVar(&src.useDefault, "default", false, "use the shipped default configuration and example modules")
}

// resolve returns the configuration file to load. Without -c and without
// ./luamods.yaml it is a usage error, unless --default asks for the shipped
// default, or fallback (serve, repl) takes the default and says so on
// stderr. The shipped default is copied to a temporary folder, which
// cleanup removes.
func (s configSource) resolve(stderr io.Writer, fallback bool) (path string, cleanup func(), err error) {
	if s.path != "" && s.useDefault {
		return "", nil, usageErrorf("-c and --default exclude each other")
	}
	if s.path != "" {
		return s.path, func() {}, nil
	}
	if !s.useDefault {
		if _, err := os.Stat(defaultConfigName); err == nil {
			return defaultConfigName, func() {}, nil
		}
		abs, _ := filepath.Abs(defaultConfigName)
		if !fallback {
			return "", nil, usageErrorf("no configuration: %s not found; pass -c FILE, or --default for the shipped default", abs)
		}
		defer func() {
			if err == nil {
				fmt.Fprintf(stderr, "luamods: no -c and no %s: running the shipped default configuration (%s)\n", abs, path)
			}
		}()
	}
	dir, err := os.MkdirTemp("", "luamods-default-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	if err := os.CopyFS(dir, scripts.Default); err != nil {
		cleanup()
		return "", nil, err
	}
	return filepath.Join(dir, defaultConfigName), cleanup, nil
}

// load resolves and reads the configuration, for a command that needs only
// its settings (not its modules).
func (s configSource) load(stderr io.Writer) (*engine.Config, error) {
	path, cleanup, err := s.resolve(stderr, false)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	return engine.LoadConfig(path)
}
