package luaapi

import (
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// maxResults bounds the values one builtin pushes (unpack, string.byte), as
// Lua 5.1's LUAI_MAXCSTACK does: gopher-lua pushed a million values in a
// loop no deadline could stop.
const maxResults = 8000

// capBuf builds a builtin's string result, refusing a write that would take
// it over the size cap before making it.
type capBuf struct {
	b    strings.Builder
	L    *lua.LState
	max  int
	what string
}

func (s *State) newCapBuf(L *lua.LState, what string) *capBuf {
	return &capBuf{L: L, max: s.maxString(), what: what}
}

func (c *capBuf) room(n int) {
	if n > c.max-c.b.Len() {
		c.L.RaiseError("%s: result over the limit of %d bytes", c.what, c.max)
	}
}

func (c *capBuf) add(x string) {
	c.room(len(x))
	c.b.WriteString(x)
}

func (c *capBuf) addByte(x byte) {
	c.room(1)
	c.b.WriteByte(x)
}

// result charges the string to the call's budget and returns it.
func (c *capBuf) result(s *State) lua.LString {
	s.charge(c.L, c.b.Cap())
	return lua.LString(c.b.String())
}

// stringRep is string.rep(s, n [, sep]) refusing results over the size cap.
func (s *State) stringRep(L *lua.LState) int {
	str := L.CheckString(1)
	n := L.CheckInt(2)
	sep := L.OptString(3, "")
	if n <= 0 || (str == "" && sep == "") {
		L.Push(lua.LString(""))
		return 1
	}
	max := int64(s.maxString())
	unit := int64(len(str)) + int64(len(sep))
	if int64(n) > (max+int64(len(sep)))/unit { // n*unit - len(sep) > max, without overflow
		L.RaiseError("string.rep: result of %d repetitions of %d bytes is over the limit of %d bytes", n, unit, max)
	}
	size := int(int64(n)*unit - int64(len(sep)))
	s.charge(L, size)
	L.Push(lua.LString(strings.Repeat(str+sep, n-1) + str))
	return 1
}

// stringByte is string.byte(s [, i [, j]]) pushing at most maxResults values.
func (s *State) stringByte(L *lua.LState) int {
	str := L.CheckString(1)
	start := relPos(L.OptInt(2, 1), len(str))
	end := relPos(L.OptInt(3, start), len(str))
	if start < 1 {
		start = 1
	}
	if end > len(str) {
		end = len(str)
	}
	if start > end {
		return 0
	}
	n := end - start + 1
	if n > maxResults {
		L.RaiseError("string.byte: %d results are over the limit of %d", n, maxResults)
	}
	for i := start - 1; i < end; i++ {
		L.Push(lua.LNumber(str[i]))
	}
	return n
}

// relPos is lstrlib.c's posrelat: a negative position counts from the end.
func relPos(pos, n int) int {
	if pos < 0 {
		pos += n + 1
	}
	if pos < 0 {
		return 0
	}
	return pos
}

// baseUnpack is unpack(t [, i [, j]]) pushing at most maxResults values.
func baseUnpack(L *lua.LState) int {
	t := L.CheckTable(1)
	i := L.OptInt(2, 1)
	j := L.OptInt(3, t.Len())
	if i > j {
		return 0
	}
	n := int64(j) - int64(i) + 1
	if n > maxResults {
		L.RaiseError("unpack: %d results are over the limit of %d", n, maxResults)
	}
	for k := i; k <= j; k++ {
		L.Push(t.RawGetInt(k))
	}
	return int(n)
}

// tableConcat is table.concat(t [, sep [, i [, j]]]) with Lua 5.1's
// semantics, refusing a result over the size cap before building it.
func (s *State) tableConcat(L *lua.LState) int {
	t := L.CheckTable(1)
	sep := L.OptString(2, "")
	i := L.OptInt(3, 1)
	j := L.OptInt(4, t.Len())
	b := s.newCapBuf(L, "table.concat")
	for k := i; k <= j; k++ {
		v := t.RawGetInt(k)
		if !lua.LVCanConvToString(v) {
			L.RaiseError("invalid value (at index %d) in table for 'concat'", k)
		}
		b.add(lua.LVAsString(v))
		if k != j {
			b.add(sep)
		}
		if k == j { // j may be the largest int
			break
		}
	}
	L.Push(b.result(s))
	return 1
}

// stringCase returns string.upper, string.lower or string.reverse charging
// their result to the call's budget.
func (s *State) stringCase(f func(string) string) lua.LGFunction {
	return func(L *lua.LState) int {
		str := L.CheckString(1)
		s.charge(L, len(str))
		L.Push(s.vals.str(f(str)))
		return 1
	}
}

func reverse(str string) string {
	b := make([]byte, len(str))
	for i := range len(str) {
		b[len(str)-1-i] = str[i]
	}
	return string(b)
}

// patternCall runs a pattern builtin, turning the matcher's errors into Lua
// errors.
func patternCall(L *lua.LState, fn func() int) (n int) {
	defer func() {
		if r := recover(); r != nil {
			if pe, ok := r.(*patternError); ok {
				L.RaiseError("%s", pe.msg)
			}
			panic(r)
		}
	}()
	return fn()
}

// pushCapture pushes capture i of the match src[s:e].
func (st *State) pushCapture(L *lua.LState, ms *matchState, i, s, e int) {
	str, pos, isPos := ms.capture(i, s, e)
	if isPos {
		L.Push(st.vals.num(pos))
	} else {
		L.Push(st.vals.str(str))
	}
}

func (st *State) pushCaptures(L *lua.LState, ms *matchState, s, e int, wholeMatch bool) int {
	n := ms.captures(wholeMatch)
	for i := range n {
		st.pushCapture(L, ms, i, s, e)
	}
	return n
}

// matcher returns a matchState for pat against src under L's context:
// the state's spare one when no other builtin is using it (a gsub
// replacement function may call string.find). release gives it back.
func (s *State) matcher(L *lua.LState, src, pat string) *matchState {
	ms := s.spareMatch
	if ms == nil {
		ms = &matchState{}
	}
	s.spareMatch = nil
	ms.reset(L.Context(), src, pat)
	return ms
}

// release makes ms the state's spare matchState, holding no strings.
func (s *State) release(ms *matchState) {
	ms.src, ms.pat, ms.ctx = "", "", nil
	s.spareMatch = ms
}

// stringFind is string.find(s, pattern [, init [, plain]]) (find) and
// string.match(s, pattern [, init]) (!find), as Lua 5.1's str_find_aux.
func (s *State) stringFind(find bool) lua.LGFunction {
	return func(L *lua.LState) int {
		str := L.CheckString(1)
		pat := L.CheckString(2)
		init := relPos(L.OptInt(3, 1), len(str)) - 1
		if init < 0 {
			init = 0
		} else if init > len(str) {
			init = len(str)
		}
		if find && (lua.LVAsBool(L.Get(4)) || !strings.ContainsAny(pat, "^$*+?.([%-")) {
			if i := strings.Index(str[init:], pat); i >= 0 {
				L.Push(s.vals.num(init + i + 1))
				L.Push(s.vals.num(init + i + len(pat)))
				return 2
			}
			L.Push(lua.LNil)
			return 1
		}
		ms := s.matcher(L, str, pat)
		defer s.release(ms)
		return patternCall(L, func() int {
			start, end := ms.find(init)
			if start < 0 {
				L.Push(lua.LNil)
				return 1
			}
			if find {
				L.Push(s.vals.num(start + 1))
				L.Push(s.vals.num(end))
				return s.pushCaptures(L, ms, start, end, false) + 2
			}
			return s.pushCaptures(L, ms, start, end, true)
		})
	}
}

// stringGmatch is string.gmatch(s, pattern): an iterator that finds one
// match per call (gopher-lua's found them all first), on a matchState of
// its own. As in Lua 5.1, '^' is no anchor here.
func (s *State) stringGmatch(L *lua.LState) int {
	str := L.CheckString(1)
	pat := L.CheckString(2)
	ms := &matchState{src: str, pat: pat}
	pos := 0
	L.Push(L.NewFunction(func(L *lua.LState) int {
		if pos > len(str) {
			return 0
		}
		return patternCall(L, func() int {
			ms.ctx = L.Context()
			start, end := ms.findFrom(pos, 0, false)
			if start < 0 {
				pos = len(str) + 1
				return 0
			}
			pos = end
			if end == start {
				pos++ // an empty match: go on at least one position
			}
			return s.pushCaptures(L, ms, start, end, true)
		})
	}))
	return 1
}

// stringGsub is string.gsub(s, pattern, repl [, n]) with Lua 5.1's
// semantics, built in one pass (gopher-lua's copied the whole string for
// every replacement) and refused before it grows over the size cap.
func (s *State) stringGsub(L *lua.LState) int {
	src := L.CheckString(1)
	pat := L.CheckString(2)
	L.CheckTypes(3, lua.LTString, lua.LTNumber, lua.LTTable, lua.LTFunction)
	repl := L.Get(3)
	maxN := L.OptInt(4, len(src)+1)
	anchor := strings.HasPrefix(pat, "^")
	p := 0
	if anchor {
		p = 1
	}
	b := s.newCapBuf(L, "string.gsub")
	n := 0
	ms := s.matcher(L, src, pat)
	defer s.release(ms)
	patternCall(L, func() int {
		at := 0
		for n < maxN {
			start, end := ms.findFrom(at, p, anchor)
			if start < 0 {
				break
			}
			b.add(src[at:start]) // no match between
			n++
			s.gsubValue(L, ms, b, repl, start, end)
			switch {
			case end > start:
				at = end
			case start < len(src):
				b.addByte(src[start])
				at = start + 1
			default:
				at = len(src) + 1
			}
			if at > len(src) || anchor {
				break
			}
		}
		if at < len(src) {
			b.add(src[at:])
		}
		return 0
	})
	L.Push(b.result(s))
	L.Push(lua.LNumber(n))
	return 2
}

// gsubValue writes the replacement of the match src[s:e] (lstrlib.c's
// add_value): a string with %0-%9 expanded, or what a table or function
// gives for it (nil or false keep the match).
func (st *State) gsubValue(L *lua.LState, ms *matchState, b *capBuf, repl lua.LValue, s, e int) {
	var v lua.LValue
	switch r := repl.(type) {
	case lua.LString, lua.LNumber:
		gsubExpand(L, ms, b, lua.LVAsString(r), s, e)
		return
	case *lua.LTable:
		st.pushCapture(L, ms, 0, s, e)
		v = L.GetTable(r, L.Get(-1))
		L.Pop(1)
	case *lua.LFunction:
		L.Push(r)
		n := st.pushCaptures(L, ms, s, e, true)
		L.Call(n, 1)
		v = L.Get(-1)
		L.Pop(1)
	}
	switch x := v.(type) {
	case *lua.LNilType:
		b.add(ms.src[s:e])
	case lua.LBool:
		if x {
			L.RaiseError("invalid replacement value (a boolean)")
		}
		b.add(ms.src[s:e])
	case lua.LString, lua.LNumber:
		b.add(lua.LVAsString(x))
	default:
		L.RaiseError("invalid replacement value (a %s)", v.Type())
	}
}

// gsubExpand writes a string replacement: %0 is the match, %1-%9 its
// captures, % before any other character that character.
func gsubExpand(L *lua.LState, ms *matchState, b *capBuf, repl string, s, e int) {
	for i := 0; i < len(repl); i++ {
		c := repl[i]
		if c != '%' {
			b.addByte(c)
			continue
		}
		i++
		var d byte // past the end: C's terminating NUL
		if i < len(repl) {
			d = repl[i]
		}
		switch {
		case !isdigit(d):
			b.addByte(d)
		case d == '0':
			b.add(ms.src[s:e])
		default:
			str, pos, isPos := ms.capture(int(d-'1'), s, e)
			if isPos {
				str = lua.LNumber(pos).String()
			}
			b.add(str)
		}
	}
}
