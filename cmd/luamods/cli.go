package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"luamods/engine"
	"luamods/httpbridge"
	"luamods/luaapi"
	"luamods/scripts"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// exitError carries an exit code through cobra.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }

// run is the whole program, so that tests can drive it.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "luamods",
		Short:         "Lua modules for servers, with Synapse's module API",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(serveCmd(), checkCmd(), callCmd(), reloadCmd(), replCmd(), testCmd(), versionCmd())
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "luamods:", err)
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	if strings.Contains(err.Error(), "unknown command") || strings.Contains(err.Error(), "flag") || strings.Contains(err.Error(), "arg(s)") {
		return exitUsage
	}
	return exitError
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// configPath resolves -c: the flag, else ./luamods.yaml, else the shipped
// default configuration written to a temporary folder (cleanup removes it).
func configPath(flag string, stderr io.Writer) (path string, cleanup func(), err error) {
	if flag != "" {
		return flag, func() {}, nil
	}
	if _, err := os.Stat("luamods.yaml"); err == nil {
		return "luamods.yaml", func() {}, nil
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
	fmt.Fprintf(stderr, "luamods: no -c and no ./luamods.yaml: running the shipped default configuration (%s)\n", filepath.Join(dir, "luamods.yaml"))
	return filepath.Join(dir, "luamods.yaml"), cleanup, nil
}

// configFlag adds -c/--config to cmd.
func configFlag(cmd *cobra.Command, cfg *string, usage string) {
	cmd.Flags().StringVarP(cfg, "config", "c", "", usage)
}

// loadEngine loads the configuration -c names (see configPath) for a
// command that does not serve; close releases it all.
func loadEngine(cmd *cobra.Command, cfg string) (eng *engine.Engine, path string, closeAll func(), err error) {
	path, cleanup, err := configPath(cfg, cmd.ErrOrStderr())
	if err != nil {
		return nil, "", nil, err
	}
	eng, err = engine.New(cmd.Context(), engine.Options{ConfigPath: path, Logger: newLogger(cmd.ErrOrStderr(), "warn")})
	if err != nil {
		cleanup()
		return nil, path, nil, err
	}
	return eng, path, func() { eng.Close(); cleanup() }, nil
}

func checkCmd() *cobra.Command {
	var cfg string
	cmd := &cobra.Command{
		Use:   "check -c FILE",
		Short: "Load the configuration and every module as serving would, then exit (like nginx -t)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			eng, path, closeAll, err := loadEngine(cmd, cfg)
			if err != nil {
				return &codedError{exitError, fmt.Errorf("%s: configuration has errors:\n%w", path, err)}
			}
			defer closeAll()
			gen := eng.Current()
			fmt.Fprintf(cmd.OutOrStdout(), "%s: OK: %d modules, %d callbacks, %d routes\n", path, len(gen.Modules), len(gen.CallbackNames()), len(gen.Routes()))
			return nil
		},
	}
	configFlag(cmd, &cfg, "configuration file (default ./luamods.yaml)")
	return cmd
}

func callCmd() *cobra.Command {
	var cfg string
	cmd := &cobra.Command{
		Use:   "call -c FILE CATEGORY.CALLBACK [JSON-ARG ...]",
		Short: "Invoke a callback on every module that registered it and print the combined result as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			callArgs := make([]any, 0, len(args)-1)
			for i, a := range args[1:] {
				v, err := luaapi.DecodeJSON([]byte(a))
				if err != nil {
					return &codedError{exitUsage, fmt.Errorf("argument %d is not one JSON value: %v", i+1, err)}
				}
				callArgs = append(callArgs, v)
			}
			eng, _, closeAll, err := loadEngine(cmd, cfg)
			if err != nil {
				return err
			}
			defer closeAll()
			res, err := eng.Invoke(cmd.Context(), args[0], callArgs...)
			if err != nil {
				return err
			}
			out, err := luaapi.EncodeJSON(res)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(out))
			return nil
		},
	}
	configFlag(cmd, &cfg, "configuration file (default ./luamods.yaml)")
	return cmd
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "luamods", engine.Version)
		},
	}
}

func reloadCmd() *cobra.Command {
	var cfg string
	cmd := &cobra.Command{
		Use:   "reload -c FILE",
		Short: "Ask the running luamods serve to reload (POST /_luamods/v1/reload) and print the answer",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, cleanup, err := configPath(cfg, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer cleanup()
			c, err := engine.LoadConfig(path)
			if err != nil {
				return err
			}
			body, err := adminRequest(cmd.Context(), c, "POST", "/_luamods/v1/reload")
			fmt.Fprintln(cmd.OutOrStdout(), strings.TrimSpace(string(body)))
			return err
		},
	}
	configFlag(cmd, &cfg, "configuration file (default ./luamods.yaml)")
	return cmd
}

var _ = httpbridge.New
var _ = context.Background

// adminRequest calls the admin API of the luamods serve that c configures.
func adminRequest(ctx context.Context, c *engine.Config, method, path string) ([]byte, error) {
	if c.AdminToken == "" {
		return nil, errors.New("the configuration has no admin_token or admin_token_file: the admin API is off")
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.Listen+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.AdminToken)
	client := &http.Client{Timeout: 5 * time.Minute}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return body, nil
}
