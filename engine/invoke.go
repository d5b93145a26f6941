package engine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"luamods/luaapi"
)

// Invoke runs the callback on this generation; see Engine.Invoke.
func (g *Generation) Invoke(ctx context.Context, name string, args ...any) (any, error) {
	return g.invoke(ctx, name, args, true)
}

// invoke runs the callback, and its Then callback when then is set.
func (g *Generation) invoke(ctx context.Context, name string, args []any, then bool) (any, error) {
	cb, ok := g.engine.catalog.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownCallback, name)
	}
	if len(args) > len(cb.Args) {
		msg := fmt.Sprintf("%s takes %d arguments (%v), got %d", name, len(cb.Args), cb.Args, len(args))
		he := NewHTTPError(http.StatusBadRequest, "M_INVALID_PARAM", msg)
		he.Err = errors.New("engine: " + msg)
		return nil, he // the caller's mistake: a 400 through the invoke API
	}
	if cb.Keyed {
		return g.invokeKeyed(ctx, cb, args)
	}
	res, err := g.combine(ctx, cb, g.hooks[name], args)
	if err == nil && then && cb.Then != "" && res == luaapi.NotSpam {
		return g.Invoke(ctx, cb.Then, cb.ThenArgs(args)...)
	}
	return res, err
}

// combine calls the hooks in order and folds their results.
func (g *Generation) combine(ctx context.Context, cb *Callback, hooks []hook, args []any) (any, error) {
	acc := cb.Combine.Start()
	if cb.Mutates > 0 {
		// A private copy with room for every argument: each module's changes
		// replace the mutable one for the next.
		padded := make([]any, len(cb.Args))
		copy(padded, args)
		args = padded
	}
	if len(hooks) > 1 {
		// Converted once for every module: each builds only its own tables.
		args = luaapi.PrepareArgs(args, cb.Mutates)
	}
	for _, h := range hooks {
		ret, mutated, err := g.call(ctx, cb, h, args)
		if err != nil {
			if err = g.onError(cb, h, err); err != nil {
				return nil, err
			}
			continue
		}
		if cb.Mutates > 0 {
			args[cb.Mutates-1] = mutated
			acc = mutated
		}
		warn := func(msg string) {
			g.engine.log.Warn(cb.FullName()+": "+msg, "module", h.module.Name, "where", h.reg.Where)
		}
		var stop bool
		acc, stop, err = cb.Combine.Step(acc, ret, warn)
		if err != nil {
			return nil, &CallbackError{Callback: cb.FullName(), Module: h.module.Name, Where: h.reg.Where, Err: fmt.Errorf("%s: %w", h.reg.Where, err), Status: 500}
		}
		if stop {
			break
		}
	}
	if cb.Mutates > 0 && acc == nil {
		acc = args[cb.Mutates-1]
	}
	return acc, nil
}

// onError applies the callback's policy to a module's error: nil means go on.
func (g *Generation) onError(cb *Callback, h hook, err error) error {
	cerr := &CallbackError{Callback: cb.FullName(), Module: h.module.Name, Where: h.reg.Where, Err: err, Status: 500}
	switch cb.OnError {
	case FailOpen:
		g.engine.log.Warn(cb.FullName()+" failed; going on without it", "module", h.module.Name, "error", luaapi.WithoutModule(err))
		return nil
	case Forbid:
		if _, _, isTable := synapseErrorOf(err); !isTable {
			cerr.Status = 403
		}
	}
	if status, _, isTable := synapseErrorOf(err); isTable {
		cerr.Status = status
	}
	return cerr
}

// invokeKeyed runs auth_checkers: only the checkers of the login type, in
// order, each given only its declared fields.
func (g *Generation) invokeKeyed(ctx context.Context, cb *Callback, args []any) (any, error) {
	padded := make([]any, 3)
	copy(padded, args)
	loginType, _ := padded[1].(string)
	login, _ := padded[2].(map[string]any)
	var hooks []hook
	for _, h := range g.hooks[cb.FullName()] {
		if h.reg.Key == loginType {
			hooks = append(hooks, h)
		}
	}
	if len(hooks) == 0 {
		return nil, nil
	}
	var missing []string
	fields := map[string]any{}
	for _, h := range hooks {
		for _, f := range h.reg.Fields {
			v, ok := login[f]
			if !ok {
				missing = append(missing, f)
			}
			fields[f] = v
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, &CallbackError{Callback: cb.FullName(), Module: hooks[0].module.Name, Where: hooks[0].reg.Where,
			Err: &MissingParamsError{LoginType: loginType, Fields: missing}, Status: 400}
	}
	return g.combine(ctx, cb, hooks, []any{padded[0], loginType, fields})
}

// MissingParamsError is a login without the fields its login type's
// checkers declared (Synapse answers 400).
type MissingParamsError struct {
	LoginType string
	Fields    []string
}

// Error is Synapse's message for it.
func (e *MissingParamsError) Error() string {
	return fmt.Sprintf("Missing parameters for login type %s: %v", e.LoginType, e.Fields)
}

// call runs one module's callback and records its metrics. mutated is the
// argument cb.Mutates as the module left it.
func (g *Generation) call(ctx context.Context, cb *Callback, h hook, args []any) (ret []any, mutated any, err error) {
	h.metrics.inflight.Inc()
	start := time.Now()
	err = h.module.withState(func(s *luaapi.State) (err error) {
		ret, mutated, err = s.InvokeCallback(ctx, h.reg.Entry, &cb.spec, args)
		return err
	})
	h.metrics.inflight.Dec()
	h.metrics.latency.Observe(time.Since(start).Seconds())
	h.metrics.calls.Inc()
	if err != nil {
		h.metrics.errors.Inc()
	}
	return ret, mutated, err
}
