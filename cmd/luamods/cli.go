package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"luamods/engine"
	"luamods/luaapi"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// codedError carries an exit code through cobra: every error that is not
// one exits with exitError.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }

func (e *codedError) Unwrap() error { return e.err }

// usageErrorf is a usage error: exit code 2.
func usageErrorf(format string, args ...any) error {
	return &codedError{exitUsage, fmt.Errorf(format, args...)}
}

// usageArgs makes the errors of an argument check usage errors.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return &codedError{exitUsage, err}
		}
		return nil
	}
}

// run is the whole program, so that tests can drive it.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "luamods",
		Short:         "Lua modules for servers, with Synapse's module API",
		Args:          usageArgs(cobra.NoArgs), // an unknown verb
		RunE:          func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(serveCmd(), checkCmd(), callCmd(), reloadCmd(), replCmd(), testCmd(), versionCmd(), registrationCmd())
	// Usage errors, wherever cobra finds them, leave with exitUsage.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &codedError{exitUsage, err} })
	for _, c := range root.Commands() {
		if c.Args != nil {
			c.Args = usageArgs(c.Args)
		}
	}
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "luamods:", err)
	if ce := (*codedError)(nil); errors.As(err, &ce) {
		return ce.code
	}
	return exitError
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// loadEngine loads the configuration src names for a command that does not
// serve; closeAll releases it all.
func loadEngine(cmd *cobra.Command, src configSource) (eng *engine.Engine, path string, closeAll func(), err error) {
	path, cleanup, err := src.resolve(cmd.ErrOrStderr(), false)
	if err != nil {
		return nil, "", nil, err
	}
	eng, err = engine.New(cmd.Context(), engine.Options{ConfigPath: path, Logger: newLogger(cmd.ErrOrStderr(), "warn")})
	if err != nil {
		cleanup()
		return nil, path, nil, &codedError{exitError, fmt.Errorf("%s: configuration has errors:\n%w", path, err)}
	}
	return eng, path, func() { eng.Close(); cleanup() }, nil
}

func checkCmd() *cobra.Command {
	var src configSource
	cmd := &cobra.Command{
		Use:   "check -c FILE",
		Short: "Load the configuration and every module as serving would, then exit (like nginx -t)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			eng, path, closeAll, err := loadEngine(cmd, src)
			if err != nil {
				return err
			}
			defer closeAll()
			gen := eng.Current()
			fmt.Fprintf(cmd.OutOrStdout(), "%s: OK: %d modules, %d callbacks, %d routes\n", path, len(gen.Modules), len(gen.CallbackNames()), len(gen.Routes()))
			return nil
		},
	}
	configFlags(cmd, &src)
	return cmd
}

func callCmd() *cobra.Command {
	var src configSource
	cmd := &cobra.Command{
		Use:   "call -c FILE CATEGORY.CALLBACK [JSON-ARG ...]",
		Short: "Invoke a callback on every module that registered it and print the combined result as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			callArgs := make([]any, 0, len(args)-1)
			for i, a := range args[1:] {
				v, err := luaapi.DecodeJSON([]byte(a))
				if err != nil {
					return usageErrorf("argument %d is not one JSON value: %v", i+1, err)
				}
				callArgs = append(callArgs, v)
			}
			eng, _, closeAll, err := loadEngine(cmd, src)
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
	configFlags(cmd, &src)
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
	var src configSource
	cmd := &cobra.Command{
		Use:   "reload -c FILE",
		Short: "Ask the running luamods serve to reload (POST /_luamods/v1/reload) and print the answer",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := src.load(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			body, err := adminRequest(cmd.Context(), c, "POST", "/_luamods/v1/reload")
			fmt.Fprintln(cmd.OutOrStdout(), strings.TrimSpace(string(body)))
			return err
		},
	}
	configFlags(cmd, &src)
	return cmd
}

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
