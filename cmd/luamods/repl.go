package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"luamods/engine"
	"luamods/luaapi"
)

func replCmd() *cobra.Command {
	var cfg string
	cmd := &cobra.Command{
		Use:   "repl [-c FILE] [MODULE]",
		Short: "Evaluate Lua inside a module's state (api and M in scope); :help lists commands",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, cleanup, err := configPath(cfg, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer cleanup()
			eng, err := engine.New(cmd.Context(), engine.Options{ConfigPath: path, Logger: newLogger(cmd.ErrOrStderr(), "warn")})
			if err != nil {
				return err
			}
			defer eng.Close()
			r := &repl{eng: eng, out: cmd.OutOrStdout()}
			if len(args) == 1 {
				if err := r.use(args[0]); err != nil {
					return err
				}
			} else if mods := eng.Current().Modules; len(mods) > 0 {
				r.module = mods[0].Name
			}
			return r.loop(cmd, cmd.InOrStdin())
		},
	}
	cmd.Flags().StringVarP(&cfg, "config", "c", "", "configuration file (default ./luamods.yaml)")
	return cmd
}

// repl evaluates one statement or command per line (a chunk that is not
// complete yet continues on the next line).
type repl struct {
	eng    *engine.Engine
	module string
	out    io.Writer
}

func (r *repl) use(name string) error {
	if r.eng.Current().Module(name) == nil {
		return fmt.Errorf("no module %q (see :modules)", name)
	}
	r.module = name
	return nil
}

func (r *repl) loop(cmd *cobra.Command, in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var pending strings.Builder
	for sc.Scan() {
		line := sc.Text()
		if pending.Len() == 0 && strings.HasPrefix(strings.TrimSpace(line), ":") {
			if quit := r.command(cmd, strings.TrimSpace(line)); quit {
				return nil
			}
			continue
		}
		pending.WriteString(line)
		pending.WriteString("\n")
		src := strings.TrimPrefix(strings.TrimSpace(pending.String()), "=")
		vals, err := r.eval(cmd, src)
		if err != nil && isIncomplete(err) {
			continue
		}
		pending.Reset()
		if err != nil {
			fmt.Fprintln(r.out, "error:", err)
			continue
		}
		if len(vals) > 0 {
			fmt.Fprintln(r.out, strings.Join(vals, "\t"))
		}
	}
	return sc.Err()
}

func (r *repl) eval(cmd *cobra.Command, src string) ([]string, error) {
	gen, release := r.eng.Acquire()
	defer release()
	m := gen.Module(r.module)
	if m == nil {
		return nil, fmt.Errorf("no module selected")
	}
	return m.State().Eval(cmd.Context(), "stdin", src)
}

// isIncomplete tells a chunk that needs more lines from a real error.
func isIncomplete(err error) bool {
	s := err.Error()
	return strings.Contains(s, "<eof>") || strings.Contains(s, "EOF")
}

func (r *repl) command(cmd *cobra.Command, line string) (quit bool) {
	fields := strings.Fields(line)
	switch fields[0] {
	case ":quit", ":q", ":exit":
		return true
	case ":modules":
		for _, m := range r.eng.Current().Modules {
			mark := " "
			if m.Name == r.module {
				mark = "*"
			}
			fmt.Fprintf(r.out, "%s %s (%s)\n", mark, m.Name, m.File)
		}
	case ":use":
		if len(fields) != 2 {
			fmt.Fprintln(r.out, "usage: :use MODULE")
		} else if err := r.use(fields[1]); err != nil {
			fmt.Fprintln(r.out, "error:", err)
		}
	case ":callbacks":
		gen := r.eng.Current()
		for _, name := range gen.CallbackNames() {
			var mods []string
			for _, m := range gen.Hooks(name) {
				mods = append(mods, m.Name)
			}
			fmt.Fprintf(r.out, "%s: %s\n", name, strings.Join(mods, ", "))
		}
	case ":routes":
		for _, rt := range r.eng.Current().Routes() {
			fmt.Fprintf(r.out, "%s %s (%s, %s)\n", rt.Path, allow(rt.Methods), rt.Module.Name, rt.Where)
		}
	case ":invoke":
		if len(fields) < 2 {
			fmt.Fprintln(r.out, "usage: :invoke category.callback [JSON-ARG ...]")
			break
		}
		var args []any
		for _, a := range fields[2:] {
			v, err := luaapi.DecodeJSON([]byte(a))
			if err != nil {
				fmt.Fprintln(r.out, "error: argument is not JSON:", a)
				return false
			}
			args = append(args, v)
		}
		res, err := r.eng.Invoke(cmd.Context(), fields[1], args...)
		if err != nil {
			fmt.Fprintln(r.out, "error:", err)
			break
		}
		b, _ := luaapi.EncodeJSON(res)
		fmt.Fprintln(r.out, string(b))
	case ":reload":
		report, err := r.eng.Reload(cmd.Context())
		if err != nil {
			fmt.Fprintln(r.out, "error:", err)
		} else {
			fmt.Fprintln(r.out, report)
		}
	case ":help":
		fmt.Fprintln(r.out, ":modules  :use NAME  :callbacks  :routes  :invoke category.callback ARG...  :reload  :quit\nanything else is Lua, run in the module's state with api and M in scope; =expr prints a value")
	default:
		fmt.Fprintf(r.out, "unknown command %s (:help)\n", fields[0])
	}
	return false
}
