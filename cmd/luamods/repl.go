package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/chzyer/readline"
	"github.com/labstack/echo/v4"
	"github.com/spf13/cobra"

	"luamods/engine"
	"luamods/httpbridge"
	"luamods/luaapi"
)

func replCmd() *cobra.Command {
	var src configSource
	cmd := &cobra.Command{
		Use:   "repl [-c FILE] [MODULE | FILE.lua]",
		Short: "Evaluate Lua inside a module's state (api and M in scope); :help lists the commands",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, cleanup, err := replOptions(src, args, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer cleanup()
			eng, err := engine.New(cmd.Context(), opts)
			if err != nil {
				return err
			}
			defer eng.Close()
			r := &repl{eng: eng, out: cmd.OutOrStdout(), web: echo.New()}
			httpbridge.New(eng).Mount(r.web)
			if mods := eng.Current().Modules; len(mods) > 0 {
				r.module = mods[0].Name
			}
			// With -c the argument names a module (names often end in .lua);
			// without, a .lua argument is a file loaded on its own.
			if len(args) == 1 && opts.Config == nil {
				if err := r.use(args[0]); err != nil {
					return err
				}
			}
			in, err := r.input(cmd.InOrStdin())
			if err != nil {
				return err
			}
			defer in.close()
			return r.loop(cmd.Context(), in)
		},
	}
	configFlags(cmd, &src)
	return cmd
}

// replOptions is the configuration to load: -c (or --default, or
// ./luamods.yaml, else the shipped default), or a lone module file with an
// empty config; cleanup removes what it needed.
func replOptions(src configSource, args []string, stderr io.Writer) (engine.Options, func(), error) {
	opts := engine.Options{Logger: newLogger(stderr, "warn")}
	if src.path == "" && !src.useDefault && len(args) == 1 && strings.HasSuffix(args[0], ".lua") {
		file, err := filepath.Abs(args[0])
		if err != nil {
			return opts, nil, err
		}
		opts.Config = &engine.Config{ServerName: "localhost", Modules: []engine.ModuleConfig{{Module: file}}}
		return opts, func() {}, nil
	}
	path, cleanup, err := src.resolve(stderr, true)
	opts.ConfigPath = path
	return opts, cleanup, err
}

// repl evaluates one statement or command per line; a chunk that is not
// complete yet continues on the next line.
type repl struct {
	eng    *engine.Engine
	module string
	out    io.Writer
	web    *echo.Echo // the real route table, served without a socket
}

// lineInput is where lines come from: a terminal (readline: history,
// completion, Ctrl-C) or anything else (one line at a time).
type lineInput interface {
	readLine(prompt string) (string, error) // errInterrupted on Ctrl-C at the prompt
	close()
}

var errInterrupted = errors.New("interrupted")

type pipeInput struct{ sc *bufio.Scanner }

func (p *pipeInput) readLine(string) (string, error) {
	if p.sc.Scan() {
		return p.sc.Text(), nil
	}
	if err := p.sc.Err(); err != nil {
		return "", err
	}
	return "", io.EOF
}
func (p *pipeInput) close() {}

type terminalInput struct{ rl *readline.Instance }

func (t *terminalInput) readLine(prompt string) (string, error) {
	t.rl.SetPrompt(prompt)
	line, err := t.rl.Readline()
	if errors.Is(err, readline.ErrInterrupt) {
		return "", errInterrupted
	}
	return line, err
}
func (t *terminalInput) close() { t.rl.Close() }

func (r *repl) input(stdin io.Reader) (lineInput, error) {
	if f, ok := stdin.(*os.File); ok && readline.IsTerminal(int(f.Fd())) {
		history := ""
		if home, err := os.UserHomeDir(); err == nil {
			history = filepath.Join(home, ".luamods_history")
		}
		rl, err := readline.NewEx(&readline.Config{
			Stdin: f, Stdout: r.out, HistoryFile: history, AutoComplete: completer{r},
			InterruptPrompt: "^C", EOFPrompt: ":quit",
		})
		if err != nil {
			return nil, err
		}
		fmt.Fprintln(r.out, "luamods repl: Lua runs in the module's state, with api and M in scope; :help for commands")
		return &terminalInput{rl}, nil
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return &pipeInput{sc}, nil
}

func (r *repl) use(name string) error {
	if r.eng.Current().Module(name) == nil {
		return fmt.Errorf("no module %q (see :modules)", name)
	}
	r.module = name
	return nil
}

func (r *repl) loop(ctx context.Context, in lineInput) error {
	var pending strings.Builder
	for {
		prompt := r.module + "> "
		if pending.Len() > 0 {
			prompt = r.module + ">> "
		}
		line, err := in.readLine(prompt)
		if errors.Is(err, errInterrupted) {
			pending.Reset()
			continue
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if pending.Len() == 0 && strings.HasPrefix(strings.TrimSpace(line), ":") {
			if quit := r.command(ctx, strings.TrimSpace(line)); quit {
				return nil
			}
			continue
		}
		if pending.Len() == 0 && strings.TrimSpace(line) == "" {
			continue
		}
		pending.WriteString(line)
		pending.WriteString("\n")
		src := strings.TrimPrefix(strings.TrimSpace(pending.String()), "=")
		vals, err := r.eval(ctx, src)
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
}

// interruptible runs f with a context that Ctrl-C (SIGINT) cancels: a
// runaway call stops, the REPL stays.
func interruptible(ctx context.Context, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	return f(ctx)
}

func (r *repl) eval(ctx context.Context, src string) (vals []string, err error) {
	gen, release := r.eng.Acquire()
	defer release()
	m := gen.Module(r.module)
	if m == nil {
		return nil, fmt.Errorf("no module selected (:modules, :use NAME)")
	}
	err = interruptible(ctx, func(ctx context.Context) error {
		vals, err = m.State().Eval(ctx, "stdin", src)
		return err
	})
	return vals, err
}

// isIncomplete tells a chunk that needs more lines from a real error.
func isIncomplete(err error) bool {
	return strings.Contains(err.Error(), "unexpected end of file")
}

const replHelp = `Lua runs in the module's state with api and M in scope; "=expr" or a bare expression prints its value.
A chunk that is not complete (function ... without end) continues on the next line; Ctrl-C cancels a running call.
  :modules                            list modules (* = the one in use)
  :use NAME                           evaluate in another module
  :callbacks                          registered callbacks, in dispatch order
  :routes                             web resources
  :invoke category.callback ARG...    run a callback through every module (each ARG one JSON value)
  :http METHOD PATH [JSON]            send a request through the route table
  :cache [NAME]                       the module's caches and their sizes
  :reload                             reload the configuration and scripts
  :help  :quit`

func (r *repl) command(ctx context.Context, line string) (quit bool) {
	name, rest, _ := strings.Cut(line, " ")
	rest = strings.TrimSpace(rest)
	switch name {
	case ":quit", ":q", ":exit":
		return true
	case ":help":
		fmt.Fprintln(r.out, replHelp)
	case ":modules":
		for _, m := range r.eng.Current().Modules {
			mark := " "
			if m.Name == r.module {
				mark = "*"
			}
			fmt.Fprintf(r.out, "%s %s (%s)\n", mark, m.Name, m.File)
		}
	case ":use":
		if err := r.use(rest); err != nil {
			fmt.Fprintln(r.out, "error:", err)
		}
	case ":callbacks":
		gen := r.eng.Current()
		for _, cb := range gen.CallbackNames() {
			var mods []string
			for _, m := range gen.Hooks(cb) {
				mods = append(mods, m.Name)
			}
			fmt.Fprintf(r.out, "%s: %s\n", cb, strings.Join(mods, ", "))
		}
	case ":routes":
		for _, rt := range r.eng.Current().Routes() {
			fmt.Fprintf(r.out, "%s %s (%s, %s)\n", rt.Path, allow(rt.Methods), rt.Module.Name, rt.Where)
		}
	case ":invoke":
		r.invoke(ctx, rest)
	case ":http":
		r.http(ctx, rest)
	case ":cache":
		r.caches(rest)
	case ":reload":
		report, err := r.eng.Reload(ctx)
		if err != nil {
			fmt.Fprintln(r.out, "error:", err)
		} else {
			fmt.Fprintln(r.out, report)
		}
	default:
		fmt.Fprintf(r.out, "unknown command %s (:help)\n", name)
	}
	return false
}

func (r *repl) invoke(ctx context.Context, rest string) {
	callback, argText, _ := strings.Cut(rest, " ")
	if callback == "" {
		fmt.Fprintln(r.out, "usage: :invoke category.callback [JSON-ARG ...]")
		return
	}
	args, err := jsonArgs(argText)
	if err != nil {
		fmt.Fprintln(r.out, "error:", err)
		return
	}
	var res any
	err = interruptible(ctx, func(ctx context.Context) error {
		res, err = r.eng.Invoke(ctx, callback, args...)
		return err
	})
	if err != nil {
		fmt.Fprintln(r.out, "error:", err)
		return
	}
	b, _ := luaapi.EncodeJSON(res)
	fmt.Fprintln(r.out, string(b))
}

// jsonArgs reads space-separated JSON values.
func jsonArgs(text string) ([]any, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var args []any
	for {
		var v any
		err := dec.Decode(&v)
		if err == io.EOF {
			return args, nil
		}
		if err != nil {
			return nil, fmt.Errorf("arguments must be JSON values: %v", err)
		}
		args = append(args, v)
	}
}

func (r *repl) http(ctx context.Context, rest string) {
	fields := strings.SplitN(rest, " ", 3)
	if len(fields) < 2 {
		fmt.Fprintln(r.out, "usage: :http METHOD PATH [JSON]")
		return
	}
	body := ""
	if len(fields) == 3 {
		body = fields[2]
	}
	req := httptest.NewRequest(strings.ToUpper(fields[0]), fields[1], strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	_ = interruptible(ctx, func(ctx context.Context) error {
		r.web.ServeHTTP(rec, req.WithContext(ctx))
		return nil
	})
	fmt.Fprintf(r.out, "%d %s\n", rec.Code, strings.TrimSpace(rec.Body.String()))
}

func (r *repl) caches(name string) {
	m := r.eng.Current().Module(r.module)
	if m == nil {
		return
	}
	all := m.Caches().Caches()
	names := make([]string, 0, len(all))
	for n := range all {
		if name == "" || strings.Contains(n, name) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		fmt.Fprintln(r.out, "no caches (api.cached) in", r.module)
	}
	for _, n := range names {
		fmt.Fprintf(r.out, "%s: %d entries\n", n, all[n].Len())
	}
}

// completer completes commands, the module's globals, and api fields.
type completer struct{ r *repl }

func (c completer) Do(line []rune, pos int) ([][]rune, int) {
	text := string(line[:pos])
	start := strings.LastIndexFunc(text, func(r rune) bool {
		return !(r == '_' || r == '.' || r == ':' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) + 1
	word := text[start:]
	var candidates []string
	if strings.HasPrefix(word, ":") && start == 0 {
		candidates = []string{":modules", ":use", ":callbacks", ":routes", ":invoke", ":http", ":cache", ":reload", ":help", ":quit"}
	} else {
		candidates = c.names(word)
	}
	var out [][]rune
	for _, cand := range candidates {
		if strings.HasPrefix(cand, word) {
			out = append(out, []rune(cand[len(word):]))
		}
	}
	return out, len(word)
}

// names lists the completions of word in the module's state.
func (c completer) names(word string) []string {
	m := c.r.eng.Current().Module(c.r.module)
	if m == nil {
		return nil
	}
	return m.State().Completions(context.Background(), word)
}
