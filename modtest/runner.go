package modtest

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"luamods/luaapi"
)

// DefaultTimeout bounds each test function.
const DefaultTimeout = 60 * time.Second

// Runner runs test files and reports on Out.
type Runner struct {
	Out     io.Writer
	Logger  *slog.Logger // the test files' own log (print, api.log); nil: discarded
	Timeout time.Duration
}

// Result counts the tests run.
type Result struct {
	Passed, Failed int
}

// Discover lists the *_test.lua files in paths (files, or folders searched
// recursively), sorted, without duplicates.
func Discover(paths []string) ([]string, error) {
	seen := map[string]bool{}
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			if !seen[p] {
				seen[p] = true
				files = append(files, p)
			}
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(path, "_test.lua") && !seen[path] {
				seen[path] = true
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(files)
	return files, nil
}

// Run runs every test of every file. A file that does not load counts as
// one failed test.
func (r *Runner) Run(ctx context.Context, files []string) Result {
	var res Result
	for _, f := range files {
		p, fl := r.runFile(ctx, f)
		res.Passed += p
		res.Failed += fl
	}
	return res
}

// fileRun is one test file being run: its state and what its tests loaded.
type fileRun struct {
	runner   *Runner
	path     string
	state    *luaapi.State
	database string // the file's fresh SQLite database (and store)
	mu       sync.Mutex
	handles  []*handle // loaded by the current test; closed after it
	fakes    int       // answer functions registered (owner goroutine only)
}

func (r *Runner) runFile(ctx context.Context, path string) (passed, failed int) {
	fmt.Fprintln(r.Out, path)
	logger := r.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	state, err := luaapi.NewState(luaapi.Options{
		Module: path, Dir: filepath.Dir(path), Sandbox: true, Timeout: timeout,
		Env: &luaapi.Env{Logger: logger},
	})
	if err != nil {
		fmt.Fprintf(r.Out, "  FAIL  %s\n", err)
		return 0, 1
	}
	defer state.Close()
	dir, err := os.MkdirTemp("", "luamods-test-db-")
	if err != nil {
		fmt.Fprintf(r.Out, "  FAIL  %s\n", err)
		return 0, 1
	}
	defer os.RemoveAll(dir)
	fr := &fileRun{runner: r, path: path, state: state, database: filepath.Join(dir, "test.db")}
	defer fr.closeHandles()
	state.Do(ctx, fr.installGlobals)

	proto, err := luaapi.CompileFile(path)
	if err == nil {
		_, err = state.Run(ctx, proto)
	}
	if err != nil {
		fmt.Fprintf(r.Out, "  FAIL  (loading the file) %s\n", luaapi.WithoutModule(err))
		return 0, 1
	}
	var names []string
	state.Do(ctx, func(L *lua.LState) {
		tests := L.GetField(L.Get(lua.RegistryIndex), registryTests).(*lua.LTable)
		for i := 1; i <= tests.Len(); i++ {
			t := tests.RawGetInt(i).(*lua.LTable)
			names = append(names, lua.LVAsString(t.RawGetString("name")))
			state.Register(fmt.Sprintf("test:%d", i), t.RawGetString("fn").(*lua.LFunction))
		}
	})
	if len(names) == 0 {
		fmt.Fprintln(r.Out, "  (no tests: declare them with test(name, function() ... end))")
	}
	for i, name := range names {
		start := time.Now()
		_, err := state.Call(ctx, fmt.Sprintf("test:%d", i+1))
		fr.closeHandles()
		if err != nil {
			failed++
			fmt.Fprintf(r.Out, "  FAIL  %s\n        %s\n", name, strings.ReplaceAll(luaapi.WithoutModule(err), "\n", "\n        "))
			continue
		}
		passed++
		fmt.Fprintf(r.Out, "  ok    %s (%s)\n", name, time.Since(start).Round(time.Millisecond))
	}
	return passed, failed
}

const registryTests = "luamods.tests"

// installGlobals sets test, expect and luamods in the test file's state.
func (fr *fileRun) installGlobals(L *lua.LState) {
	tests := L.CreateTable(8, 0)
	L.SetField(L.Get(lua.RegistryIndex), registryTests, tests)
	L.SetGlobal("test", L.NewFunction(func(L *lua.LState) int {
		t := L.CreateTable(0, 2)
		t.RawSetString("name", lua.LString(L.CheckString(1)))
		t.RawSetString("fn", L.CheckFunction(2))
		tests.Append(t)
		return 0
	}))
	installExpect(L)
	lm := L.CreateTable(0, 2)
	lm.RawSetString("load", fr.state.AsyncFunction("luamods.load", fr.parseLoad))
	lm.RawSetString("load_config", fr.state.AsyncFunction("luamods.load_config", fr.parseLoadConfig))
	L.SetGlobal("luamods", lm)
}

func (fr *fileRun) track(h *handle) {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	fr.handles = append(fr.handles, h)
}

func (fr *fileRun) closeHandles() {
	fr.mu.Lock()
	hs := fr.handles
	fr.handles = nil
	fr.mu.Unlock()
	for _, h := range hs {
		h.close()
	}
}
