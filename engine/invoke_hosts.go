package engine

import (
	"context"
	"fmt"
)

// InvokeAll runs callback name in every module that registered it, in
// modules: order, whatever each one returns: for a host that fires a
// callback in the background and ignores the answer (synapse-http-antispam's
// async callbacks), so that no module misses the event because an earlier
// one decided. A module's error is logged and the next module runs. It
// returns how many modules ran the callback.
func (e *Engine) InvokeAll(ctx context.Context, name string, args ...any) (int, error) {
	gen, release := e.Acquire()
	defer release()
	return gen.InvokeAll(ctx, name, args...)
}

// InvokeAll runs the callback on this generation; see Engine.InvokeAll.
func (g *Generation) InvokeAll(ctx context.Context, name string, args ...any) (int, error) {
	cb, ok := g.engine.catalog.Lookup(name)
	if !ok {
		return 0, fmt.Errorf("%w %q", ErrUnknownCallback, name)
	}
	if cb.Keyed || len(args) > len(cb.Args) {
		return 0, fmt.Errorf("engine: %s cannot run in every module with %d arguments (%v)", name, len(args), cb.Args)
	}
	all := *cb
	all.Combine, all.OnError = RunAll(), FailOpen
	hooks := g.hooks[name]
	if _, err := g.combine(ctx, &all, hooks, args); err != nil {
		return 0, err
	}
	return len(hooks), nil
}

// InvokeOnly is Invoke without the callback Synapse runs next
// (Callback.Then: user_may_invite after federated_user_may_invite allows),
// for a host that runs that one itself, as Synapse does when
// synapse-http-antispam forwards both.
func (e *Engine) InvokeOnly(ctx context.Context, name string, args ...any) (any, error) {
	gen, release := e.Acquire()
	defer release()
	return gen.invoke(ctx, name, args, false)
}
