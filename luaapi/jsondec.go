package luaapi

import (
	"encoding/json"
	"slices"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"
)

// DecodeJSONToLua decodes one JSON value straight into Lua values: the same
// values as ToLua(L, DecodeJSON(data)), without the Go maps and slices in
// between (an object's keys enter its table in document order). Input the
// direct path does not take (invalid JSON, nesting deeper than MaxDepth,
// escapes or invalid UTF-8 it hands to encoding/json and that fail) goes the
// long way, so errors are exactly DecodeJSON's and ToLua's.
func DecodeJSONToLua(L *lua.LState, data []byte) (lua.LValue, error) {
	var nameBuf [16]string
	var valBuf [32]lua.LValue
	d := jsonDecoder{L: L, data: data, names: nameBuf[:0], vals: valBuf[:0]}
	if v, ok := d.value(0); ok {
		d.space()
		if d.pos == len(d.data) {
			return v, nil
		}
	}
	v, err := DecodeJSON(data)
	if err != nil {
		return lua.LNil, err
	}
	return ToLua(L, v)
}

// jsonDecoder reads JSON text into Lua values; ok false means "take the
// long way", never a partial result.
type jsonDecoder struct {
	L    *lua.LState
	data []byte
	pos  int
	// names (and keys, the same as Lua values) and vals hold the members
	// and elements of the objects and arrays being read, innermost last,
	// until each is built in one step.
	names []string
	keys  []lua.LValue
	vals  []lua.LValue
	strs  valueSlab // the string values and member names, boxed in blocks
}

func (d *jsonDecoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// value reads one value at depth (ToLua's depth: 0 is the top).
func (d *jsonDecoder) value(depth int) (lua.LValue, bool) {
	if depth > MaxDepth {
		return lua.LNil, false
	}
	d.space()
	if d.pos >= len(d.data) {
		return lua.LNil, false
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		return d.object(depth)
	case c == '[':
		return d.array(depth)
	case c == '"':
		s, ok := d.string()
		return d.strs.str(s), ok
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	default:
		for _, lit := range []struct {
			text string
			v    lua.LValue
		}{{"true", lua.LTrue}, {"false", lua.LFalse}, {"null", lua.LNil}} {
			if len(d.data)-d.pos >= len(lit.text) && string(d.data[d.pos:d.pos+len(lit.text)]) == lit.text {
				d.pos += len(lit.text)
				return lit.v, true
			}
		}
		return lua.LNil, false
	}
}

// object reads {...} as ToLua builds a map: a null member sets nothing.
func (d *jsonDecoder) object(depth int) (lua.LValue, bool) {
	d.pos++ // {
	start, vstart := len(d.names), len(d.vals)
	defer func() { d.names, d.keys, d.vals = d.names[:start], d.keys[:start], d.vals[:vstart] }()
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return d.L.CreateTable(0, 0), true
	}
	for {
		d.space()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return lua.LNil, false
		}
		key, ok := d.string()
		if !ok {
			return lua.LNil, false
		}
		d.space()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return lua.LNil, false
		}
		d.pos++
		v, ok := d.value(depth + 1)
		if !ok {
			return lua.LNil, false
		}
		d.names, d.keys, d.vals = append(d.names, key), append(d.keys, d.strs.str(key)), append(d.vals, v)
		more, ok := d.separator('}')
		if !ok {
			return lua.LNil, false
		}
		if !more {
			break
		}
	}
	names, vals := d.names[start:], d.vals[vstart:]
	if repeatsASetName(names, vals) {
		return lua.LNil, false // the long way keeps the last, which may be null
	}
	return stringTable(names, d.keys[start:], vals), true
}

// repeatsASetName reports whether a member's name comes again after it
// was set (its value not null).
func repeatsASetName(names []string, vals []lua.LValue) bool {
	if len(names) <= 8 {
		for i, n := range names {
			if vals[i] != lua.LNil && slices.Contains(names[i+1:], n) {
				return true
			}
		}
		return false
	}
	set := make(map[string]struct{}, len(names))
	for i, n := range names {
		if _, ok := set[n]; ok {
			return true
		}
		if vals[i] != lua.LNil {
			set[n] = struct{}{}
		}
	}
	return false
}

// separator reads what follows a member or an element: ',' (more follows)
// or end, the closing bracket. ok is false for anything else.
func (d *jsonDecoder) separator(end byte) (more, ok bool) {
	d.space()
	if d.pos >= len(d.data) {
		return false, false
	}
	switch d.data[d.pos] {
	case ',':
		d.pos++
		return true, true
	case end:
		d.pos++
		return false, true
	}
	return false, false
}

// array reads [...] as ToLua builds a slice (Append, which skips nil; an
// empty array carries the array marker).
func (d *jsonDecoder) array(depth int) (lua.LValue, bool) {
	d.pos++ // [
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		t := d.L.CreateTable(0, 0)
		markArray(d.L, t)
		return t, true
	}
	start := len(d.vals)
	defer func() { d.vals = d.vals[:start] }()
	for {
		v, ok := d.value(depth + 1)
		if !ok {
			return lua.LNil, false
		}
		d.vals = append(d.vals, v)
		more, ok := d.separator(']')
		if !ok {
			return lua.LNil, false
		}
		if !more {
			return arrayTable(d.vals[start:]), true
		}
	}
}

// string reads a string token. Plain text (no escapes, no control
// characters, valid UTF-8) is taken as it is; anything else is unquoted by
// encoding/json, so escapes, surrogates and invalid bytes come out as
// DecodeJSON gives them.
func (d *jsonDecoder) string() (string, bool) {
	start := d.pos
	d.pos++ // "
	plain := true
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			if plain {
				return string(d.data[start+1 : d.pos-1]), true
			}
			var s string
			if err := json.Unmarshal(d.data[start:d.pos], &s); err != nil {
				return "", false
			}
			return s, true
		case c == '\\':
			plain = false
			d.pos += 2
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(d.data[d.pos:])
			if r == utf8.RuneError && size == 1 {
				plain = false
			}
			d.pos += size
		default:
			d.pos++
		}
	}
	return "", false
}

// number reads a number token (JSON's grammar) and converts it as ToLua
// converts a json.Number.
func (d *jsonDecoder) number() (lua.LValue, bool) {
	start := d.pos
	if d.data[d.pos] == '-' {
		d.pos++
	}
	digits := func() int {
		n := 0
		for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
			d.pos++
			n++
		}
		return n
	}
	switch {
	case d.pos < len(d.data) && d.data[d.pos] == '0':
		d.pos++
	case digits() == 0:
		return lua.LNil, false
	}
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		d.pos++
		if digits() == 0 {
			return lua.LNil, false
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if digits() == 0 {
			return lua.LNil, false
		}
	}
	return jsonNumberToLua(json.Number(d.data[start:d.pos])), true
}
