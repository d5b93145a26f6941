package luaapi

import (
	"context"
	"fmt"
	"math"
	"sync"

	lua "github.com/yuin/gopher-lua"
)

// Database runs a module's transactions: api.run_db_interaction. The engine
// binds one to each module (its name labels metrics and logs).
type Database interface {
	// Begin starts a transaction named desc, bound to ctx: it is rolled
	// back if ctx ends before Commit.
	Begin(ctx context.Context, desc string) (Transaction, error)
	// Retryable reports whether an error of Execute or Commit is a
	// serialization failure, after which the interaction may run again.
	Retryable(err error) bool
}

// Transaction is one open transaction of a Database. Execute takes `?`
// placeholders and returns every row (JSON-like values) and the row count.
type Transaction interface {
	Execute(ctx context.Context, query string, args []any) (rows [][]any, rowcount int64, err error)
	Commit(ctx context.Context) error
	Rollback()
}

// MaxInteractionAttempts is how many times run_db_interaction runs a
// function whose transaction hit a serialization failure.
const MaxInteractionAttempts = 5

// dbSource is api.run_db_interaction: run fn(txn, ...) in a transaction,
// commit, and return fn's results; on a serialization failure, run it
// again. Go primitives: begin(desc) → txn (no yield);
// finish(txn, ok, err, may_retry) → committed, err, retry (yields when a
// transaction was opened).
const dbSource = `
local begin, finish, pcall, error, select, unpack, type, attempts = ...
local function pack(...) return {n = select('#', ...), ...} end
return function(desc, fn, ...)
  if type(desc) ~= "string" then error("run_db_interaction: desc must be a string", 2) end
  if type(fn) ~= "function" then error("run_db_interaction: fn must be a function", 2) end
  for attempt = 1, attempts do
    local txn = begin(desc)
    local r = pack(pcall(fn, txn, ...))
    local ok, err, retry = finish(txn, r[1], r[2], attempt < attempts)
    if ok then return unpack(r, 2, r.n) end
    if not retry then error(err, 0) end
  end
end
`

var dbProto = mustCompile(dbSource, "=luamods.db")

// txnMetaKey is the registry key of the metatable of txn objects.
const txnMetaKey = "luamods.txn"

// dbTxn is the Go side of one txn object: the interaction's transaction,
// opened by the first execute, and the rows of the last statement.
type dbTxn struct {
	desc string

	mu        sync.Mutex // the owner and the goroutine running a statement
	tx        Transaction
	busy      bool // a statement is running
	ended     bool // the interaction is over
	retryable bool // the last failure was a serialization failure
	rows      [][]any
	next      int
	rowcount  int64
}

// apiRunDBInteraction builds api.run_db_interaction.
func (s *State) apiRunDBInteraction() *lua.LFunction {
	L := s.L
	L.Push(L.NewFunctionFromProto(dbProto))
	L.Push(L.NewFunction(s.dbBegin))
	L.Push(s.asyncLua("run_db_interaction", s.parseDBFinish))
	L.Push(L.GetGlobal("pcall"))
	L.Push(L.GetGlobal("error"))
	L.Push(L.GetGlobal("select"))
	L.Push(L.GetGlobal("unpack"))
	L.Push(L.GetGlobal("type"))
	L.Push(lua.LNumber(MaxInteractionAttempts))
	L.Call(8, 1)
	fn := L.Get(-1).(*lua.LFunction)
	L.Pop(1)
	return fn
}

// dbBegin is begin(desc): a new txn object; the transaction itself starts
// with the first execute, in the same trip to the database.
func (s *State) dbBegin(L *lua.LState) int {
	if s.opts.Env.Database == nil {
		L.RaiseError("run_db_interaction: no database is configured here")
	}
	ud := L.NewUserData()
	ud.Value = &dbTxn{desc: L.CheckString(1), rowcount: -1}
	ud.Metatable = s.txnMeta()
	L.Push(ud)
	return 1
}

func checkTxn(L *lua.LState, what string) *dbTxn {
	ud, ok := L.Get(1).(*lua.LUserData)
	if !ok {
		L.RaiseError("%s: call it as a method: txn:%s(...)", what, what)
	}
	t, ok := ud.Value.(*dbTxn)
	if !ok {
		L.RaiseError("%s: not a txn", what)
	}
	return t
}

// txnMeta is the metatable of txn objects, made once per state: methods
// execute, fetchone, fetchall, and the field rowcount.
func (s *State) txnMeta() *lua.LTable {
	L := s.L
	reg := L.Get(lua.RegistryIndex)
	if t, ok := L.GetField(reg, txnMetaKey).(*lua.LTable); ok {
		return t
	}
	methods := L.CreateTable(0, 3)
	methods.RawSetString("execute", s.asyncLua("txn:execute", s.parseExecute))
	methods.RawSetString("fetchone", L.NewFunction(txnFetchOne))
	methods.RawSetString("fetchall", L.NewFunction(txnFetchAll))
	meta := L.CreateTable(0, 2)
	meta.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		t := L.CheckUserData(1).Value.(*dbTxn)
		key := L.CheckString(2)
		if key == "rowcount" {
			t.mu.Lock()
			L.Push(lua.LNumber(t.rowcount))
			t.mu.Unlock()
			return 1
		}
		L.Push(methods.RawGetString(key))
		return 1
	}))
	meta.RawSetString("__metatable", lua.LString("txn"))
	L.SetField(reg, txnMetaKey, meta)
	return meta
}

// sqlArg converts a Lua value into a SQL parameter.
func sqlArg(v lua.LValue) (any, error) {
	switch x := v.(type) {
	case *lua.LNilType:
		return nil, nil
	case lua.LBool:
		return bool(x), nil
	case lua.LString:
		return string(x), nil
	case lua.LNumber:
		f := float64(x)
		if f == math.Trunc(f) && math.Abs(f) <= maxSafeInteger {
			return int64(f), nil
		}
		return f, nil
	}
	return nil, fmt.Errorf("a %s cannot be a SQL parameter (encode tables with api.json.encode)", v.Type())
}

// parseExecute is txn:execute(sql, ...).
func (s *State) parseExecute(L *lua.LState) (AsyncFunc, error) {
	t := checkTxn(L, "execute")
	query := L.CheckString(2)
	args := make([]any, 0, L.GetTop()-2)
	for i := 3; i <= L.GetTop(); i++ {
		a, err := sqlArg(L.Get(i))
		if err != nil {
			return nil, fmt.Errorf("parameter %d: %w", i-2, err)
		}
		args = append(args, a)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.ended:
		return nil, fmt.Errorf("%s: the transaction has ended (use a txn only inside its function)", t.desc)
	case t.busy:
		return nil, fmt.Errorf("%s: the txn is running another statement", t.desc)
	}
	t.busy = true
	db := s.opts.Env.Database
	tx := t.tx
	return func(ctx context.Context) (func(*lua.LState) []lua.LValue, error) {
		// busy keeps every other use of tx away: the lock is not held
		// while the statement runs, so the owner never waits for it.
		var err error
		if tx == nil {
			if tx, err = db.Begin(ctx, t.desc); err != nil {
				t.mu.Lock()
				t.busy = false
				t.mu.Unlock()
				return nil, fmt.Errorf("%s: %w", t.desc, err)
			}
		}
		rows, n, err := tx.Execute(ctx, query, args)
		t.mu.Lock()
		defer t.mu.Unlock()
		t.tx, t.busy = tx, false
		if err != nil {
			t.retryable = db.Retryable(err)
			return nil, fmt.Errorf("%s: %w", t.desc, err)
		}
		t.rows, t.next, t.rowcount = rows, 0, n
		return nil, nil
	}, nil
}

// rowToLua makes a row list; a NULL leaves its position nil.
func rowToLua(L *lua.LState, row []any) *lua.LTable {
	t := L.CreateTable(len(row), 0)
	for i, v := range row {
		lv, err := ToLua(L, v)
		if err != nil {
			lv = lua.LString(fmt.Sprint(v))
		}
		t.RawSetInt(i+1, lv)
	}
	return t
}

// txnFetchOne is txn:fetchone(): the next row as a list, or nil.
func txnFetchOne(L *lua.LState) int {
	t := checkTxn(L, "fetchone")
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.next >= len(t.rows) {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(rowToLua(L, t.rows[t.next]))
	t.next++
	return 1
}

// txnFetchAll is txn:fetchall(): the remaining rows, a list of row lists.
func txnFetchAll(L *lua.LState) int {
	t := checkTxn(L, "fetchall")
	t.mu.Lock()
	defer t.mu.Unlock()
	rest := t.rows[min(t.next, len(t.rows)):]
	out := L.CreateTable(len(rest), 0)
	for _, row := range rest {
		out.Append(rowToLua(L, row))
	}
	if len(rest) == 0 {
		markArray(L, out)
	}
	t.next = len(t.rows)
	L.Push(out)
	return 1
}

// parseDBFinish is finish(txn, ok, err, may_retry): commit after fn
// returned, or roll back after it failed; → committed, error, retry.
func (s *State) parseDBFinish(L *lua.LState) (AsyncFunc, error) {
	t := checkTxn(L, "run_db_interaction")
	ok := lua.LVAsBool(L.Get(2))
	failure := L.Get(3)
	mayRetry := lua.LVAsBool(L.Get(4))
	t.mu.Lock()
	t.ended = true
	tx, busy, retryable := t.tx, t.busy, t.retryable && mayRetry
	t.mu.Unlock()
	if busy {
		// fn returned while one of its statements runs (it was pcall'd
		// from another coroutine): the statement's goroutine still owns tx.
		return nil, fmt.Errorf("%s: the interaction ended while a statement was running", t.desc)
	}
	if tx == nil {
		if ok {
			return nil, immediate{lua.LTrue}
		}
		return nil, immediate{lua.LFalse, failure, lua.LBool(retryable)}
	}
	db := s.opts.Env.Database
	if !ok {
		return func(context.Context) (func(*lua.LState) []lua.LValue, error) {
			tx.Rollback()
			return func(*lua.LState) []lua.LValue { return []lua.LValue{lua.LFalse, failure, lua.LBool(retryable)} }, nil
		}, nil
	}
	return func(ctx context.Context) (func(*lua.LState) []lua.LValue, error) {
		if err := tx.Commit(ctx); err != nil {
			retry := db.Retryable(err) && mayRetry
			msg := lua.LString(fmt.Sprintf("run_db_interaction: %s: commit: %v", t.desc, err))
			return func(*lua.LState) []lua.LValue { return []lua.LValue{lua.LFalse, msg, lua.LBool(retry)} }, nil
		}
		return func(*lua.LState) []lua.LValue { return []lua.LValue{lua.LTrue} }, nil
	}, nil
}
