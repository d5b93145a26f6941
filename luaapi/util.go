package luaapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"regexp/syntax"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// logTable is api.log: debug, info, warn (alias warning) and error, each
// log(fmt, ...) formatted like string.format, with the module name attached.
func (s *State) logTable() *lua.LTable {
	L := s.L
	t := L.CreateTable(0, 5)
	format := L.GetField(L.GetGlobal("string"), "format")
	for _, lvl := range []struct {
		name  string
		level slog.Level
	}{{"debug", slog.LevelDebug}, {"info", slog.LevelInfo}, {"warn", slog.LevelWarn}, {"warning", slog.LevelWarn}, {"error", slog.LevelError}} {
		level := lvl.level
		t.RawSetString(lvl.name, L.NewFunction(func(L *lua.LState) int {
			msg := L.ToStringMeta(L.Get(1)).String()
			if L.GetTop() > 1 {
				L.Insert(format, 1)
				L.Call(L.GetTop()-1, 1)
				msg = L.ToStringMeta(L.Get(-1)).String()
			}
			s.log.Log(context.Background(), level, msg, "where", trimWhere(L.Where(1)))
			return 0
		}))
	}
	return t
}

// trimWhere turns L.Where's "file:line:" into "file:line".
func trimWhere(w string) string {
	return strings.TrimRight(w, ": ")
}

// jsonTable is api.json: encode(value), decode(string), array([t]),
// is_array(v) and null.
func (s *State) jsonTable() *lua.LTable {
	L := s.L
	t := L.CreateTable(0, 5)
	t.RawSetString("null", jsonNullValue(L))
	t.RawSetString("is_array", L.NewFunction(apiIsArray))
	t.RawSetString("encode", L.NewFunction(func(L *lua.LState) int {
		b, err := EncodeLuaJSONLimit(L.Get(1), s.maxString())
		if err != nil {
			L.RaiseError("json.encode: %v", err)
		}
		s.charge(L, len(b))
		L.Push(lua.LString(b))
		return 1
	}))
	t.RawSetString("decode", L.NewFunction(func(L *lua.LState) int {
		src := []byte(L.CheckString(1))
		sh := ScanJSON(src)
		if err := sh.depthError(); err != nil {
			L.RaiseError("json.decode: %v", err)
		}
		s.charge(L, jsonCost(src, sh))
		lv, err := DecodeJSONToLua(L, src)
		if err != nil {
			L.RaiseError("json.decode: %v", err)
		}
		L.Push(lv)
		return 1
	}))
	t.RawSetString("array", L.NewFunction(func(L *lua.LState) int {
		arr, ok := L.Get(1).(*lua.LTable)
		if !ok {
			arr = L.CreateTable(0, 0)
		}
		markArray(L, arr)
		L.Push(arr)
		return 1
	}))
	return t
}

// EncodeJSON encodes a JSON-like value without escaping <, > and &.
func EncodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// DecodeJSON decodes one JSON value, keeping numbers exact (json.Number) so
// that integers beyond 2^53 reach Lua as strings.
func DecodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("unexpected data after the JSON value")
	}
	return v, nil
}

// maxFindall bounds the matches regex:findall returns.
const maxFindall = 1 << 18

// regexTable is api.regex: compile(pattern) → object with :search(s),
// :match(s), :fullmatch(s) and :findall(s) (Go RE2 syntax).
func (s *State) regexTable() *lua.LTable {
	L := s.L
	meta := L.CreateTable(0, 2)
	methods := L.CreateTable(0, 4)
	methods.RawSetString("search", L.NewFunction(regexMethod(func(r *compiledRegex) *regexp.Regexp { return r.re })))
	methods.RawSetString("match", L.NewFunction(regexMethod(func(r *compiledRegex) *regexp.Regexp { return r.prefix })))
	methods.RawSetString("fullmatch", L.NewFunction(regexMethod(func(r *compiledRegex) *regexp.Regexp { return r.full })))
	methods.RawSetString("findall", L.NewFunction(func(L *lua.LState) int {
		re := checkRegex(L).re
		str := L.CheckString(2)
		all := re.FindAllStringIndex(str, maxFindall+1)
		if len(all) > maxFindall {
			L.RaiseError("regex findall: more than %d matches", maxFindall)
		}
		s.charge(L, 48*len(all))
		t := L.CreateTable(len(all), 0)
		for _, m := range all {
			t.Append(lua.LString(str[m[0]:m[1]]))
		}
		L.Push(t)
		return 1
	}))
	meta.RawSetString("__index", methods)
	meta.RawSetString("__metatable", lua.LString("regex"))
	t := L.CreateTable(0, 1)
	t.RawSetString("compile", L.NewFunction(func(L *lua.LState) int {
		pattern := L.CheckString(1)
		if parsed, err := syntax.Parse(pattern, syntax.Perl); err == nil && regexSize(parsed, maxRegexSize) > maxRegexSize {
			L.RaiseError("regex.compile: the pattern expands to over %d characters and repetitions", maxRegexSize)
		}
		compiled := &compiledRegex{}
		var err error
		for _, c := range []struct {
			re     **regexp.Regexp
			source string
		}{{&compiled.re, pattern}, {&compiled.prefix, `^(?:` + pattern + `)`}, {&compiled.full, `^(?:` + pattern + `)$`}} {
			if *c.re, err = regexp.Compile(c.source); err != nil {
				L.RaiseError("regex.compile: invalid pattern %q: %v", pattern, err)
			}
		}
		ud := L.NewUserData()
		ud.Value = compiled
		ud.Metatable = meta
		L.Push(ud)
		return 1
	}))
	return t
}

// maxRegexSize bounds the characters and repetitions a regex.compile
// pattern expands to: Go compiles each repetition out, in code the deadline
// cannot stop, and ("x{1000}"):rep(1000) took a second.
const maxRegexSize = 1 << 16

// regexSize estimates the size of re's compiled program: its characters,
// with each repetition counted as often as it repeats. It stops counting
// past limit.
func regexSize(re *syntax.Regexp, limit int) int {
	n := 1 + len(re.Rune)
	for _, sub := range re.Sub {
		if n += regexSize(sub, limit); n > limit {
			return n
		}
	}
	if re.Op == syntax.OpRepeat {
		n *= max(1, re.Min, re.Max)
	}
	return n
}

// compiledRegex is a pattern with its anchored forms for match and fullmatch.
type compiledRegex struct {
	re, prefix, full *regexp.Regexp
}

func checkRegex(L *lua.LState) *compiledRegex {
	ud := L.CheckUserData(1)
	re, ok := ud.Value.(*compiledRegex)
	if !ok {
		L.ArgError(1, "regex expected (call methods with ':')")
	}
	return re
}

// regexMethod returns nil on no match, else a match table:
// {text = whole match, start = 1-based start, ["end"] = end, groups = {...},
// named = {name = text}}. Unmatched groups are false.
func regexMethod(pick func(*compiledRegex) *regexp.Regexp) lua.LGFunction {
	return func(L *lua.LState) int {
		re := pick(checkRegex(L))
		str := L.CheckString(2)
		m := re.FindStringSubmatchIndex(str)
		if m == nil {
			L.Push(lua.LNil)
			return 1
		}
		res := L.CreateTable(0, 5)
		res.RawSetString("text", lua.LString(str[m[0]:m[1]]))
		res.RawSetString("start", lua.LNumber(m[0]+1))
		res.RawSetString("end", lua.LNumber(m[1]))
		groups := L.CreateTable(re.NumSubexp(), 0)
		named := L.CreateTable(0, 0)
		for i := 1; i <= re.NumSubexp(); i++ {
			var v lua.LValue = lua.LFalse
			if m[2*i] >= 0 {
				v = lua.LString(str[m[2*i]:m[2*i+1]])
			}
			groups.Append(v)
			if name := re.SubexpNames()[i]; name != "" {
				named.RawSetString(name, v)
			}
		}
		res.RawSetString("groups", groups)
		res.RawSetString("named", named)
		L.Push(res)
		return 1
	}
}

// Describe renders a Lua value for people: JSON for data, "function
// (file:line)" for functions, tostring otherwise.
func Describe(v lua.LValue) string {
	switch x := v.(type) {
	case lua.LString:
		b, _ := EncodeJSON(string(x))
		return string(b)
	case *lua.LFunction:
		return "function (" + definedAt(x) + ")"
	case *lua.LTable:
		if g, err := FromLua(x); err == nil {
			if b, err := EncodeJSON(g); err == nil {
				return string(b)
			}
		}
		return x.String()
	default:
		return v.String()
	}
}
