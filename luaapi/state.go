package luaapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// DefaultTimeout is the deadline of a call into a module when none is configured.
const DefaultTimeout = 5 * time.Second

// stateOptions are the VM sizes of every module state (gopherlua.md §3.1):
// a small growable value stack and paged call frames keep an idle state small
// with no measurable cost per call. Threads inherit them.
var stateOptions = lua.Options{
	SkipOpenLibs:        true,
	CallStackSize:       200,
	RegistrySize:        256,
	RegistryMaxSize:     1 << 20,
	RegistryGrowStep:    256,
	MinimizeStackMemory: true,
}

// maxIdleThreads bounds the threads a state keeps for reuse.
const maxIdleThreads = 16

// Options configures one module state.
type Options struct {
	Module  string        // the module's name, used in logs and errors
	Dir     string        // the module's folder: require loads from here only
	Sandbox bool          // false opens the full standard library (trusted code)
	Timeout time.Duration // deadline of each call; DefaultTimeout when zero
	Env     *Env          // the outside world as the api table sees it
}

// A State is one Lua state of a module with the goroutine that owns it.
//
// Only the owner goroutine touches the LState, its threads, and every Lua
// value in it. Other goroutines hand it work through Call and its siblings,
// which may be called concurrently. Every call runs as a thread of the state;
// when Lua waits on Go (HTTP, sleep, a host call) the thread yields and the
// owner serves other calls until the result arrives (gopherlua.md §4).
type State struct {
	opts    Options
	L       *lua.LState
	log     *slog.Logger
	work    chan func()
	done    chan struct{}
	stopped chan struct{}
	closing sync.Once

	inflight atomic.Int64 // calls started and not yet finished

	// Owner-goroutine-only fields.
	module      *lua.LTable
	entries     map[string]*lua.LFunction
	idle        []*lua.LState
	timers      map[int]*timer
	nextID      int
	phase       phase
	flights     map[int]func(any, error) // cache computations led by calls in flight
	current     *call                    // the call being resumed
	tableErrors map[*lua.LTable]string   // where error tables were raised
	wrapAsync   *lua.LFunction
	reg         Registrar // set for the duration of Init
}

type phase int

const (
	phaseLoad  phase = iota // running the chunk and parse_config
	phaseInit               // running init: registration allowed
	phaseServe              // serving calls
	phaseClosed
)

// NewState creates a sandboxed state for the compiled module proto, installs
// the api table, and starts its owner goroutine. It does not run the chunk:
// call Load, then ParseConfig and Init.
func NewState(opts Options) (*State, error) {
	if opts.Env == nil {
		return nil, errors.New("luaapi: Options.Env is required")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	s := &State{
		opts:        opts,
		L:           lua.NewState(stateOptions),
		log:         opts.Env.logger().With("module", opts.Module),
		work:        make(chan func(), 256),
		done:        make(chan struct{}),
		stopped:     make(chan struct{}),
		entries:     make(map[string]*lua.LFunction),
		timers:      make(map[int]*timer),
		flights:     make(map[int]func(any, error)),
		tableErrors: make(map[*lua.LTable]string),
	}
	if err := s.openLibs(); err != nil {
		s.L.Close()
		return nil, err
	}
	s.installAPI()
	go s.loop()
	return s, nil
}

// Module returns the module name the state was created for.
func (s *State) Module() string { return s.opts.Module }

// Inflight returns the number of calls started and not yet finished.
func (s *State) Inflight() int64 { return s.inflight.Load() }

func (s *State) loop() {
	defer close(s.stopped)
	for {
		select {
		case f := <-s.work:
			f()
		case <-s.done:
			s.shutdown()
			return
		}
	}
}

// post queues f to run on the owner goroutine. It reports false when the
// state is closed or ctx ends first.
func (s *State) post(ctx context.Context, f func()) bool {
	select {
	case s.work <- f:
		return true
	case <-s.done:
		return false
	case <-ctx.Done():
		return false
	}
}

// postAlways queues f unless the state is closed; used for completions,
// which must not be lost while the state lives.
func (s *State) postAlways(f func()) {
	select {
	case s.work <- f:
	case <-s.done:
	}
}

// Close stops the timers, fails calls that are still waiting, and releases
// the state. It waits for the owner goroutine to finish. Safe to call twice.
func (s *State) Close() {
	s.closing.Do(func() { close(s.done) })
	<-s.stopped
}

func (s *State) shutdown() {
	s.phase = phaseClosed
	for token, complete := range s.flights {
		complete(nil, ErrClosed)
		delete(s.flights, token)
	}
	for id, t := range s.timers {
		t.stop()
		delete(s.timers, id)
	}
	for _, th := range s.idle {
		th.Close()
	}
	s.idle = nil
	s.L.Close()
}

// result is what a finished call hands back to its caller.
type result struct {
	values []any
	err    error
}

// Entry names a Lua function registered in the state (a callback, a route
// handler), as the Registrar was told.
type Entry = string

// Call runs the entry point key with args converted to Lua, under the
// module's timeout and ctx, and returns its results converted to Go.
func (s *State) Call(ctx context.Context, key Entry, args ...any) ([]any, error) {
	return s.Invoke(ctx, key, func(L *lua.LState) ([]lua.LValue, error) {
		lv := make([]lua.LValue, len(args))
		for i, a := range args {
			v, err := ToLua(L, a)
			if err != nil {
				return nil, fmt.Errorf("argument %d: %w", i+1, err)
			}
			lv[i] = v
		}
		return lv, nil
	}, nil)
}

// ArgsFunc builds the Lua arguments of a call on the owner goroutine.
type ArgsFunc func(L *lua.LState) ([]lua.LValue, error)

// ResultFunc converts a call's Lua results on the owner goroutine. The
// default converts each with FromLua.
type ResultFunc func(L *lua.LState, results []lua.LValue) ([]any, error)

// Invoke is Call with custom conversion of arguments and results, for
// callers (such as the HTTP bridge) that build or read Lua values directly.
func (s *State) Invoke(ctx context.Context, key Entry, args ArgsFunc, res ResultFunc) ([]any, error) {
	return s.run(ctx, func(L *lua.LState) (*lua.LFunction, []lua.LValue, error) {
		fn, ok := s.entries[key]
		if !ok {
			return nil, nil, fmt.Errorf("luaapi: module %s has no entry %q", s.opts.Module, key)
		}
		lv, err := args(L)
		return fn, lv, err
	}, res)
}

// setup picks the function and arguments of a call on the owner goroutine.
type setup func(L *lua.LState) (*lua.LFunction, []lua.LValue, error)

// run executes a call on the owner goroutine and waits for its result.
func (s *State) run(ctx context.Context, start setup, res ResultFunc) ([]any, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	s.inflight.Add(1)
	reply := make(chan result, 1)
	finish := func(vals []lua.LValue, err error) {
		defer s.inflight.Add(-1)
		if err != nil {
			reply <- result{err: err}
			return
		}
		if res == nil {
			res = convertResults
		}
		out, cerr := res(s.L, vals)
		reply <- result{values: out, err: cerr}
	}
	if !s.post(ctx, func() { s.startCall(ctx, start, finish) }) {
		s.inflight.Add(-1)
		return nil, s.abandoned(ctx)
	}
	select {
	case r := <-reply:
		return r.values, r.err
	case <-ctx.Done():
		return nil, s.abandoned(ctx)
	case <-s.stopped:
		return nil, ErrClosed
	}
}

func (s *State) abandoned(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return &ScriptError{Module: s.opts.Module, Message: "call did not finish: " + err.Error(), cause: err}
	}
	return ErrClosed
}

func convertResults(_ *lua.LState, vals []lua.LValue) ([]any, error) {
	out := make([]any, len(vals))
	for i, v := range vals {
		g, err := FromLua(v)
		if err != nil {
			return nil, fmt.Errorf("return value %d: %w", i+1, err)
		}
		out[i] = g
	}
	return out, nil
}

// call is one call in flight on the owner goroutine: a stack of threads, the
// bottom one running the entry function, the others pcall'd functions.
type call struct {
	ctx     context.Context
	frames  []frame
	finish  func([]lua.LValue, error)
	flights []int // cache computations this call leads
}

type frameKind int

const (
	frameRoot    frameKind = iota
	framePcall             // results go to the parent as true, ...
	frameXpcall            // like framePcall; on error the handler runs
	frameHandler           // an xpcall handler: results go to the parent as false, result
)

type frame struct {
	th      *lua.LState
	kind    frameKind
	handler *lua.LFunction
}

func (s *State) startCall(ctx context.Context, start setup, finish func([]lua.LValue, error)) {
	if err := ctx.Err(); err != nil {
		finish(nil, s.abandoned(ctx))
		return
	}
	fn, args, err := start(s.L)
	if err != nil {
		finish(nil, err)
		return
	}
	c := &call{ctx: ctx}
	c.finish = func(vals []lua.LValue, err error) {
		s.releaseFlights(c, err)
		finish(vals, err)
	}
	c.frames = append(c.frames, frame{th: s.thread(ctx), kind: frameRoot})
	s.drive(c, fn, args)
}

// thread returns a thread for a new frame, reusing one that finished cleanly.
func (s *State) thread(ctx context.Context) *lua.LState {
	var th *lua.LState
	if n := len(s.idle); n > 0 {
		th = s.idle[n-1]
		s.idle = s.idle[:n-1]
		th.Dead = false
	} else {
		th, _ = s.L.NewThread()
	}
	th.SetContext(ctx)
	return th
}

// recycle keeps a thread whose function returned normally: its call stack is
// empty, so gopher-lua starts it afresh on the next Resume.
func (s *State) recycle(th *lua.LState) {
	th.RemoveContext()
	if len(s.idle) < maxIdleThreads {
		s.idle = append(s.idle, th)
		return
	}
	th.Close()
}

// resume runs th until it yields, returns or fails. A Go panic escaping
// gopher-lua is turned into an error.
func (s *State) resume(th *lua.LState, fn *lua.LFunction, args []lua.LValue) (st lua.ResumeState, err error, vals []lua.LValue) {
	defer func() {
		if r := recover(); r != nil {
			st, err, vals = lua.ResumeError, &lua.ApiError{Type: lua.ApiErrorPanic, Object: lua.LString(fmt.Sprintf("internal error in the Lua VM: %v", r))}, nil
			s.log.Error("recovered a panic from the Lua VM", "panic", r)
		}
	}()
	return s.L.Resume(th, fn, args...)
}

// drive resumes the call's top thread until the call waits on Go or ends.
// fn is the function to start the top thread with (nil to continue it).
func (s *State) drive(c *call, fn *lua.LFunction, args []lua.LValue) {
	for {
		top := c.frames[len(c.frames)-1]
		s.current = c
		st, err, vals := s.resume(top.th, fn, args)
		s.current = nil
		fn = nil
		switch st {
		case lua.ResumeYield:
			req := requestOf(vals)
			switch r := req.(type) {
			case *pcallRequest:
				kind := framePcall
				if r.handler != nil {
					kind = frameXpcall
				}
				c.frames = append(c.frames, frame{th: s.thread(c.ctx), kind: kind, handler: r.handler})
				fn, args = r.fn, r.args
				continue
			case *awaitRequest:
				go s.await(c, r)
				return
			default:
				err = &lua.ApiError{Type: lua.ApiErrorRun, Object: lua.LString("yield outside the api (coroutines are not available to modules)")}
				top.th.Close()
				if !s.unwind(c, err, &fn, &args) {
					return
				}
			}
		case lua.ResumeOK:
			s.recycle(top.th)
			c.frames = c.frames[:len(c.frames)-1]
			if len(c.frames) == 0 {
				c.finish(vals, nil)
				return
			}
			switch top.kind {
			case frameHandler:
				args = []lua.LValue{lua.LFalse, vals[0]}
			default:
				args = append([]lua.LValue{lua.LTrue}, vals...)
			}
		case lua.ResumeError:
			top.th.Close()
			if !s.unwind(c, err, &fn, &args) {
				return
			}
		}
	}
}

// unwind handles a failed top frame: it pops it and sets what the parent is
// resumed with. It reports false when the call itself has ended.
func (s *State) unwind(c *call, err error, fn **lua.LFunction, args *[]lua.LValue) bool {
	top := c.frames[len(c.frames)-1]
	c.frames = c.frames[:len(c.frames)-1]
	obj := errorObject(err)
	if len(c.frames) == 0 {
		c.finish(nil, s.scriptError(err))
		return false
	}
	if top.kind == frameXpcall {
		c.frames = append(c.frames, frame{th: s.thread(c.ctx), kind: frameHandler})
		*fn, *args = top.handler, []lua.LValue{obj}
		return true
	}
	*args = []lua.LValue{lua.LFalse, obj}
	return true
}

// errorObject is the Lua error value of a failed thread.
func errorObject(err error) lua.LValue {
	var ae *lua.ApiError
	if !errors.As(err, &ae) {
		return lua.LString(err.Error())
	}
	if msg, ok := ae.Object.(lua.LString); ok {
		return lua.LString(preludePosition.ReplaceAllString(string(msg), ""))
	}
	return ae.Object
}

func (s *State) scriptError(err error) error {
	var ae *lua.ApiError
	if !errors.As(err, &ae) {
		return err
	}
	se := newScriptError(s.opts.Module, errorObject(err), ae.StackTrace)
	if t, ok := ae.Object.(*lua.LTable); ok && se.Source == "" {
		if where, ok := s.tableErrors[t]; ok {
			delete(s.tableErrors, t)
			if i := strings.LastIndex(where, ":"); i > 0 {
				se.Source = where[:i]
				se.Line, _ = strconv.Atoi(where[i+1:])
			}
		}
	}
	return se
}

// releaseFlights fails the cache computations a finished call led and did
// not complete (it timed out or failed between load and complete), so that
// their waiters do not wait forever.
func (s *State) releaseFlights(c *call, err error) {
	for _, token := range c.flights {
		if complete, ok := s.flights[token]; ok {
			delete(s.flights, token)
			if err == nil {
				err = errors.New("the computation ended without a result")
			}
			complete(nil, err)
		}
	}
}

// await runs an asynchronous request off the owner goroutine and resumes the
// call with its outcome.
func (s *State) await(c *call, r *awaitRequest) {
	deliver, err := r.run(c.ctx)
	s.postAlways(func() {
		var args []lua.LValue
		if err != nil {
			args = []lua.LValue{lua.LFalse, errorToLua(s.L, err)}
		} else {
			var vals []lua.LValue
			if deliver != nil {
				vals = deliver(s.L)
			}
			args = append(make([]lua.LValue, 0, len(vals)+2), lua.LTrue, lua.LNumber(len(vals)))
			args = append(args, vals...)
		}
		s.drive(c, nil, args)
	})
}
