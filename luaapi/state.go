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
	RegistrySize:        128, // gopher-lua's least: below it, NewState takes its default, 5120 slots
	RegistryMaxSize:     1 << 20,
	RegistryGrowStep:    256,
	MinimizeStackMemory: true,
}

// workQueue is the buffer of a state's work channel. Callers past it wait
// in the channel's own queue (max_queued_calls bounds them); a larger
// buffer costs every idle state 16 bytes a slot.
const workQueue = 16

// maxPcallDepth bounds the pcall/xpcall levels of one call: each is a
// thread, and recursion through pcall got past the call-depth limit.
const maxPcallDepth = 200

// maxIdleThreads bounds the threads a state keeps for reuse.
const maxIdleThreads = 16

// Options configures one module state.
type Options struct {
	Module  string        // the module's name, used in logs and errors
	Dir     string        // the module's folder: require loads from here only
	Sandbox bool          // false opens the full standard library (trusted code)
	Timeout time.Duration // deadline of each call; DefaultTimeout when zero
	// BackgroundTimeout is the deadline of each background call;
	// DefaultBackgroundTimeout when zero.
	BackgroundTimeout time.Duration
	Limits            Limits // timers and queued calls; zero fields: their defaults
	Env               *Env   // the outside world as the api table sees it
}

// A State is one Lua state of a module and the lock that makes one
// goroutine at a time its owner.
//
// Only the owner touches the LState, its threads, and every Lua value in
// it. A caller that finds the state idle becomes the owner and runs its call
// on its own goroutine; otherwise its call is queued for the state's loop
// goroutine, which owns the state while it serves the queue. Call and its
// siblings may be called concurrently. Every call runs as a thread of the
// state; when Lua waits on Go (HTTP, sleep, a host call) the thread yields,
// the owner goes on with other work, and the loop resumes the thread when the
// result arrives (gopherlua.md §4).
type State struct {
	opts      Options
	L         *lua.LState
	log       *slog.Logger
	work      chan job
	done      chan struct{}
	stopped   chan struct{}
	closing   sync.Once
	exec      sync.Mutex // held by the owner: the loop or a caller that found the state idle
	deadlines *watchdog

	inflight       atomic.Int64 // calls started and not yet finished
	queued         atomic.Int64 // of them, the ones not yet started by the owner (Queued)
	liveTimers     atomic.Int64 // len(timers), for Timers
	active         atomic.Int64 // calls, background ones too, not finished nor waiting on the clock (Active)
	web            webRequests  // the requests behind request tables in flight (webrequest.go)
	resumeDeadline atomic.Int64 // unix ns: the deadline of the call Lua runs now; 0 between calls
	retired        atomic.Bool  // out of service: see Retire
	retireReason   atomic.Pointer[string]

	// Fields only the owner touches.
	module      *lua.LTable
	entries     map[string]*lua.LFunction
	idle        []*lua.LState
	timers      map[int]*timer
	nextID      int
	warned      map[string]bool // call sites already warned of a timer interval raised to the minimum
	phase       phase
	flights     map[int]func(any, error) // cache computations led by calls in flight
	current     *call                    // the call being resumed
	tableErrors map[*lua.LTable]string   // where error tables were raised
	spareMatch  *matchState              // the pattern builtins' matchState when not in use (matcher)
	vals        valueSlab                // string and number values made in blocks (valueslab.go)
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
// the api table, and starts its loop goroutine. It does not run the chunk:
// call Load, then ParseConfig and Init.
func NewState(opts Options) (*State, error) {
	if opts.Env == nil {
		return nil, errors.New("luaapi: Options.Env is required")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.BackgroundTimeout <= 0 {
		opts.BackgroundTimeout = DefaultBackgroundTimeout
	}
	opts.Limits = opts.Limits.withDefaults()
	s := &State{
		opts:        opts,
		L:           lua.NewState(stateOptions),
		log:         opts.Env.logger().With("module", opts.Module),
		work:        make(chan job, workQueue),
		done:        make(chan struct{}),
		stopped:     make(chan struct{}),
		entries:     make(map[string]*lua.LFunction),
		timers:      make(map[int]*timer),
		flights:     make(map[int]func(any, error)),
		deadlines:   newWatchdog(),
		tableErrors: make(map[*lua.LTable]string),
	}
	if err := s.openLibs(); err != nil {
		s.L.Close()
		return nil, err
	}
	statesByGlobal.Store(s.L.G, s)
	s.installAPI()
	s.installExposed()

	s.guardGoFunctions()
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
		case j := <-s.work:
			s.exec.Lock()
			j.run()
			s.drainLocked()
			s.exec.Unlock()
		case <-s.done:
			s.exec.Lock()
			s.shutdown()
			s.exec.Unlock()
			return
		}
	}
}

// drainLocked runs the work queued so far. The caller owns the state.
func (s *State) drainLocked() {
	for {
		select {
		case j := <-s.work:
			j.run()
		default:
			return
		}
	}
}

// job is work for the state's owner.
type job interface{ run() }

// funcJob is a function as a job.
type funcJob func()

func (f funcJob) run() { f() }

// post queues f for the loop goroutine. It reports false when the state is
// closed or ctx ends first.
func (s *State) post(ctx context.Context, j job) bool {
	return s.send(j, ctx.Done(), nil)
}

// queue queues the call c for the loop goroutine, as post, and passes its
// parent's end on to it (callContext.parentEnded) while it waits.
func (s *State) queue(c *call) bool {
	if s.send(c, c.ctx.done, c.ctx.parentDone) {
		return true
	}
	select {
	case <-c.ctx.parentDone:
		c.ctx.parentEnded()
	default:
	}
	return false
}

// send queues j unless the state is closed or end or alsoEnd (nil: never)
// is closed first.
func (s *State) send(j job, end, alsoEnd <-chan struct{}) bool {
	select {
	case s.work <- j: // the common case, without the cost of a select on four channels
		return true
	default:
	}
	select {
	case s.work <- j:
		return true
	case <-s.done:
	case <-end:
	case <-alsoEnd:
	}
	return false
}

// postAlways queues f unless the state is closed; used for completions,
// which must not be lost while the state lives.
func (s *State) postAlways(j job) {
	select {
	case s.work <- j:
	case <-s.done:
	}
}

// Close stops the timers, fails calls that are still waiting, and releases
// the state, once the call running now (if any) returns. It waits for that
// at most the call timeout and callGrace: a state stuck longer is retired
// and released when (if ever) its call returns. Safe to call twice.
func (s *State) Close() {
	s.closing.Do(func() { close(s.done) })
	if s.retired.Load() {
		return
	}
	bound := time.NewTimer(s.opts.Timeout + callGrace)
	defer bound.Stop()
	select {
	case <-s.stopped:
	case <-bound.C:
		s.Retire("still running a call when it was closed")
	}
}

func (s *State) shutdown() {
	s.phase = phaseClosed
	s.deadlines.close()
	for token, complete := range s.flights {
		complete(nil, ErrClosed)
		delete(s.flights, token)
	}
	for id, t := range s.timers {
		t.stop()
		s.dropTimer(id)
	}
	for _, th := range s.idle {
		th.Close()
	}
	s.idle = nil
	statesByGlobal.Delete(s.L.G)
	s.L.Close()
}

// result is what a finished call hands back to its caller.
type result struct {
	values []any
	resp   *Response // of a web request (Serve)
	err    error
}

// Entry names a Lua function registered in the state (a callback, a route
// handler), as the Registrar was told.
type Entry = string

// ArgsFunc builds the Lua arguments of a call; it runs as the state's owner.
type ArgsFunc func(L *lua.LState) ([]lua.LValue, error)

// ResultFunc converts a call's Lua results, as the state's owner. The
// default converts each with FromLua.
type ResultFunc func(L *lua.LState, results []lua.LValue) ([]any, error)

// setup picks the function and arguments of a call, as the state's owner.
type setup func(L *lua.LState) (*lua.LFunction, []lua.LValue, error)

// Call runs the entry point key with args converted to Lua, under the
// module's timeout and ctx, and returns its results converted to Go.
func (s *State) Call(ctx context.Context, key Entry, args ...any) ([]any, error) {
	return s.call(ctx, &call{entry: key, args: args})
}

// Invoke is Call with custom conversion of arguments and results, for
// callers (such as the HTTP bridge) that build or read Lua values directly.
func (s *State) Invoke(ctx context.Context, key Entry, args ArgsFunc, res ResultFunc) ([]any, error) {
	return s.call(ctx, &call{entry: key, argsFn: args, res: res})
}

// run runs the function start picks, and converts its results with res.
func (s *State) run(ctx context.Context, start setup, res ResultFunc) ([]any, error) {
	return s.call(ctx, &call{setup: start, res: res})
}

// call queues c for the state's loop and waits for its result, or for its
// deadline and callGrace: a call stuck in Go code does not hold its caller.
func (s *State) call(parent context.Context, c *call) ([]any, error) {
	c.s = s
	c.ctx = s.startDeadline(c, parent, s.opts.Timeout)
	defer s.stopDeadline(c)
	s.inflight.Add(1)
	if s.retired.Load() {
		s.inflight.Add(-1)
		return nil, s.retiredError()
	}
	if s.queued.Add(1) > int64(s.opts.Limits.MaxQueuedCalls) {
		s.queued.Add(-1)
		s.inflight.Add(-1)
		return nil, s.overloadedError()
	}
	s.active.Add(1)
	c.reply = make(chan struct{})
	if !s.queue(c) {
		s.queued.Add(-1)
		s.inflight.Add(-1)
		s.active.Add(-1)
		return nil, s.abandoned(c.ctx)
	}
	select {
	case <-c.reply:
		return c.out.values, c.out.err
	case <-c.ctx.Done():
	case <-c.ctx.parentDone:
		c.ctx.parentEnded()
	case <-s.stopped:
		return s.lastWord(c)
	}
	// The state stops the call at its deadline, at the next instruction or
	// the next look a long builtin takes at it: callGrace for its own
	// error, which says where. A state still running that call after it is
	// stuck in Go: it is retired, and the caller answered anyway.
	grace := time.NewTimer(callGrace)
	defer grace.Stop()
	select {
	case <-c.reply:
		return c.out.values, c.out.err
	case <-grace.C:
	case <-s.stopped:
		return s.lastWord(c)
	}
	if d := s.resumeDeadline.Load(); d != 0 && time.Now().UnixNano() >= d+int64(callGrace) {
		s.Retire("a call ran past its deadline in Go code that does not stop")
	}
	return nil, s.abandoned(c.ctx)
}

// callGrace is how long past a call's deadline its caller waits for the
// state's own answer, and how far past it a state still running the call
// is considered stuck.
const callGrace = 100 * time.Millisecond

// Retire takes the state out of service: it gets no new calls (they fail
// with ErrRetired) and Env.OnRetire is told, once, to replace it.
func (s *State) Retire(reason string) {
	if !s.retired.CompareAndSwap(false, true) {
		return
	}
	s.retireReason.Store(&reason)
	s.log.Error("module state retired", "reason", reason)
	if f := s.opts.Env.OnRetire; f != nil {
		go f(s, reason)
	}
}

// FailCalls ends every call in flight in the state with err (their Lua
// code stops at its next instruction, their callers are answered) and
// retires the state, whose memory may be what was wanted back.
func (s *State) FailCalls(err error) {
	s.deadlines.failAll(err)
	s.Retire(err.Error())
}

// Retired reports whether the state was taken out of service (see Retire).
func (s *State) Retired() bool { return s.retired.Load() }

func (s *State) retiredError() error {
	reason := "retired"
	if r := s.retireReason.Load(); r != nil {
		reason = *r
	}
	return fmt.Errorf("%w (module %s: %s)", ErrRetired, s.opts.Module, reason)
}

// lastWord is the result of a call whose state stopped: its reply if the
// call finished first, else why it did not.
func (s *State) lastWord(c *call) ([]any, error) {
	select {
	case <-c.reply:
		return c.out.values, c.out.err
	default:
		return nil, s.abandoned(c.ctx)
	}
}

func (s *State) abandoned(ctx context.Context) error {
	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return &ScriptError{Module: s.opts.Module, Message: "call did not finish: " + err.Error(), cause: err}
	}
	select {
	case <-s.done:
		return ErrClosed
	default:
	}
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

// call is one call into the state from its request to its result: the job
// queued for the state, the stack of threads it runs on (the bottom one
// running the entry function, the others pcall'd functions), and the reply.
type call struct {
	s   *State
	ctx *callContext

	// What to run: an entry with Go arguments (args) or with an ArgsFunc,
	// or whatever setup picks.
	entry  Entry
	args   []any
	argsFn ArgsFunc
	setup  setup
	res    ResultFunc
	// web is the request of a call to a web resource handler (Serve),
	// whose request table is webTable and whose answer is out.resp: a
	// field rather than an ArgsFunc and a ResultFunc, which cost four
	// allocations a request.
	web      *Request
	webTable *lua.LTable
	argBuf   [1]lua.LValue
	onDone   func([]lua.LValue, error) // background calls: instead of a reply
	parked   atomic.Bool               // waiting on the clock: not counted in State.active

	frames    []frame
	frameBuf  [2]frame
	flights   []int // cache computations this call leads
	allocated int64 // bytes builtins allocated for it (charge)

	ctxBuf callContext // what ctx points to (startDeadline)

	reply chan struct{} // closed when out is set; nil for background calls
	out   result
}

// run starts a call queued by State.call; the state's owner runs it.
func (c *call) run() {
	c.s.queued.Add(-1)
	c.s.startCall(c)
}

// prepare picks the function and converts the arguments, as the owner.
func (c *call) prepare(L *lua.LState) (*lua.LFunction, []lua.LValue, error) {
	if c.setup != nil {
		return c.setup(L)
	}
	fn, ok := c.s.entries[c.entry]
	if !ok {
		return nil, nil, fmt.Errorf("luaapi: module %s has no entry %q", c.s.opts.Module, c.entry)
	}
	if c.web != nil {
		return fn, c.webArgs(L), nil
	}
	if c.argsFn != nil {
		lv, err := c.argsFn(L)
		return fn, lv, err
	}
	lv := make([]lua.LValue, len(c.args))
	for i, a := range c.args {
		v, err := ToLua(L, a)
		if err != nil {
			return nil, nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		lv[i] = v
	}
	return fn, lv, nil
}

// finish ends the call with the Lua results or an error, as the owner.
func (c *call) finish(vals []lua.LValue, err error) {
	s := c.s
	s.releaseFlights(c, err)
	c.webDone()
	c.unpark()
	if c.onDone != nil {
		// Still active while onDone runs: a looping call schedules its next
		// tick there, and a test clock that saw the state idle before that
		// would move past the tick.
		c.onDone(vals, err)
		s.active.Add(-1)
		return
	}
	s.active.Add(-1)
	r := result{err: err}
	if err == nil && c.web != nil {
		r.resp, r.err = webResult(vals)
	} else if err == nil {
		res := c.res
		if res == nil {
			res = convertResults
		}
		r.values, r.err = res(s.L, vals)
	}
	s.inflight.Add(-1)
	c.out = r
	close(c.reply)
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

func (s *State) startCall(c *call) {
	if err := c.ctx.Err(); err != nil {
		c.finish(nil, s.abandoned(c.ctx))
		return
	}
	fn, args, err := c.prepare(s.L)
	if err != nil {
		c.finish(nil, err)
		return
	}
	c.frames = append(c.frameBuf[:0], frame{th: s.thread(c.ctx), kind: frameRoot})
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
// empty, so gopher-lua starts it afresh on the next Resume. The threads of
// loading (the chunk, parse_config, init) are not kept: a module that is
// never called would keep one for nothing (9 KB).
func (s *State) recycle(th *lua.LState) {
	th.RemoveContext()
	th.SetTop(0) // let go of the values of the call it ran: its arguments, what it built
	if len(s.idle) < maxIdleThreads && s.phase == phaseServe {
		s.idle = append(s.idle, th)
		return
	}
	th.Close()
}

// resume runs th until it yields, returns or fails. A Go panic escaping
// gopher-lua is turned into an error.
func (s *State) resume(th *lua.LState, fn *lua.LFunction, args []lua.LValue) (st lua.ResumeState, vals []lua.LValue, err error) {
	defer func() {
		if r := recover(); r != nil {
			st, vals, err = lua.ResumeError, nil, &lua.ApiError{Type: lua.ApiErrorPanic, Object: lua.LString(fmt.Sprintf("internal error in the Lua VM: %v", r))}
			s.log.Error("recovered a panic from the Lua VM", "panic", r)
			s.Retire("recovered a Go panic: the state may be inconsistent")
		}
	}()
	if d, ok := th.Context().Deadline(); ok {
		s.resumeDeadline.Store(d.UnixNano())
		defer s.resumeDeadline.Store(0)
	}
	st, err, vals = s.L.Resume(th, fn, args...)
	return st, vals, err
}

// drive resumes the call's top thread until the call waits on Go or ends.
// fn is the function to start the top thread with (nil to continue it).
func (s *State) drive(c *call, fn *lua.LFunction, args []lua.LValue) {
	for {
		top := c.frames[len(c.frames)-1]
		s.current = c
		lift := s.boundSlice(c)
		st, vals, err := s.resume(top.th, fn, args)
		if lift != nil {
			lift()
		}
		s.current = nil
		fn = nil
		switch st {
		case lua.ResumeYield:
			req := requestOf(vals)
			switch r := req.(type) {
			case *pcallRequest:
				if len(c.frames) >= maxPcallDepth { // as Lua 5.1's C stack: the pcall fails
					args = []lua.LValue{lua.LFalse, lua.LString(fmt.Sprintf("stack overflow (pcall/xpcall nested over %d levels)", maxPcallDepth))}
					continue
				}
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

// await runs an asynchronous request on a goroutine of its own and resumes the
// call with its outcome.
func (s *State) await(c *call, r *awaitRequest) {
	deliver, err := r.run(c.ctx)
	s.postAlways(funcJob(func() {
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
	}))
}
