package luaapi

import (
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/pm"
)

// stringGsub is string.gsub(s, pattern, repl [, n]) with Lua 5.1's
// semantics, built in one pass. gopher-lua's own copies the whole string for
// every replacement, so a gsub over a few hundred kilobytes ran for minutes
// inside one builtin that no deadline can stop. The result is capped like
// string.rep's.
func (s *State) stringGsub(L *lua.LState) int {
	str := L.CheckString(1)
	pat := L.CheckString(2)
	L.CheckTypes(3, lua.LTString, lua.LTTable, lua.LTFunction)
	repl := L.Get(3)
	limit := L.OptInt(4, -1)
	matches, err := pm.Find(pat, []byte(str), 0, limit)
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	if len(matches) == 0 {
		L.Push(lua.LString(str))
		L.Push(lua.LNumber(0))
		return 2
	}
	max := s.maxString()
	var b strings.Builder
	b.Grow(len(str))
	last := 0
	for _, m := range matches {
		start, end := m.Capture(0), m.Capture(1)
		b.WriteString(str[last:start])
		switch r := repl.(type) {
		case lua.LString:
			gsubExpand(L, &b, string(r), str, m)
		case *lua.LTable:
			gsubValue(L, &b, L.GetTable(r, firstCapture(str, m)), str[start:end])
		case *lua.LFunction:
			L.Push(r)
			n := gsubPushCaptures(L, str, m)
			L.Call(n, 1)
			v := L.Get(-1)
			L.Pop(1)
			gsubValue(L, &b, v, str[start:end])
		}
		last = end
		if b.Len() > max {
			L.RaiseError("string.gsub: result over the limit of %d bytes", max)
		}
	}
	b.WriteString(str[last:])
	L.Push(lua.LString(b.String()))
	L.Push(lua.LNumber(len(matches)))
	return 2
}

// gsubExpand writes a string replacement: %0 is the match, %1-%9 its
// captures, %% a percent sign, % before any other character that character.
func gsubExpand(L *lua.LState, b *strings.Builder, repl, str string, m *pm.MatchData) {
	for i := 0; i < len(repl); i++ {
		c := repl[i]
		if c != '%' || i+1 == len(repl) {
			b.WriteByte(c)
			continue
		}
		i++
		c = repl[i]
		if c < '0' || c > '9' {
			b.WriteByte(c)
			continue
		}
		b.WriteString(lua.LVAsString(capture(L, str, m, int(c-'0'))))
	}
}

// capture is capture n of a match (0: the whole match; 1 without captures:
// the whole match too, as Lua does).
func capture(L *lua.LState, str string, m *pm.MatchData, n int) lua.LValue {
	idx := 2 * n
	if idx >= m.CaptureLength() {
		if n == 1 && m.CaptureLength() == 2 {
			idx = 0
		} else {
			L.RaiseError("invalid capture index %%%d", n)
		}
	}
	if m.IsPosCapture(idx) {
		return lua.LNumber(m.Capture(idx))
	}
	return lua.LString(str[m.Capture(idx):m.Capture(idx+1)])
}

// firstCapture is what a table or function replacement is keyed by: the
// first capture, or the whole match.
func firstCapture(str string, m *pm.MatchData) lua.LValue {
	idx := 0
	if m.CaptureLength() > 2 {
		idx = 2
	}
	if m.IsPosCapture(idx) {
		return lua.LNumber(m.Capture(idx))
	}
	return lua.LString(str[m.Capture(idx):m.Capture(idx+1)])
}

// gsubPushCaptures pushes a function replacement's arguments: every
// capture, or the whole match.
func gsubPushCaptures(L *lua.LState, str string, m *pm.MatchData) int {
	if m.CaptureLength() <= 2 {
		L.Push(lua.LString(str[m.Capture(0):m.Capture(1)]))
		return 1
	}
	n := 0
	for idx := 2; idx < m.CaptureLength(); idx += 2 {
		if m.IsPosCapture(idx) {
			L.Push(lua.LNumber(m.Capture(idx)))
		} else {
			L.Push(lua.LString(str[m.Capture(idx):m.Capture(idx+1)]))
		}
		n++
	}
	return n
}

// gsubValue writes a table or function replacement: false or nil keeps the
// match, a string or number replaces it, anything else is an error.
func gsubValue(L *lua.LState, b *strings.Builder, v lua.LValue, match string) {
	switch x := v.(type) {
	case *lua.LNilType:
		b.WriteString(match)
	case lua.LBool:
		if x {
			L.RaiseError("invalid replacement value (a boolean)")
		}
		b.WriteString(match)
	case lua.LString:
		b.WriteString(string(x))
	case lua.LNumber:
		b.WriteString(strconv.FormatFloat(float64(x), 'g', 14, 64))
	default:
		L.RaiseError("invalid replacement value (a %s)", v.Type())
	}
}
