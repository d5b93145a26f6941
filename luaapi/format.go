package luaapi

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// stringFormat is string.format(fmt, ...) with Lua 5.1's conversions only
// (c d i o u x X e E f g G q s, flags "-+ #0", width and precision of at
// most two digits each) and a result capped like string.rep's.
// gopher-lua handed the format to Go's fmt: "%1000000s" built a megabyte
// from a few bytes, and %p and %T printed Go addresses and type names.
func (s *State) stringFormat(L *lua.LState) int {
	format := L.CheckString(1)
	b := s.newCapBuf(L, "string.format")
	arg := 1
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			b.addByte(c)
			continue
		}
		if i++; i < len(format) && format[i] == '%' {
			b.addByte('%')
			continue
		}
		arg++
		if arg > L.GetTop() {
			L.ArgError(arg, "no value")
		}
		spec, next := scanFormat(L, format, i)
		i = next
		var conv byte
		if i < len(format) {
			conv = format[i]
		}
		if conv == 'q' {
			quoteLua(b, L.CheckString(arg))
			continue
		}
		b.add(formatItem(L, spec, conv, arg))
	}
	L.Push(b.result(s))
	return 1
}

// formatSpec is the flags, width and precision of one format item.
type formatSpec struct {
	flags     string
	width     int
	precision int // -1: none
}

// scanFormat reads the flags, width and precision starting at format[i]
// (lstrlib.c's scanformat) and returns them with the index of the
// conversion character.
func scanFormat(L *lua.LState, format string, i int) (formatSpec, int) {
	at := func(i int) byte {
		if i < len(format) {
			return format[i]
		}
		return 0
	}
	start := i
	for at(i) != 0 && strings.IndexByte("-+ #0", at(i)) >= 0 {
		i++
	}
	if i-start >= len("-+ #0")+1 {
		L.RaiseError("invalid format (repeated flags)")
	}
	spec := formatSpec{flags: format[start:i], precision: -1}
	digits := func() int {
		n := 0
		for k := 0; k < 2 && isdigit(at(i)); k++ {
			n = n*10 + int(at(i)-'0')
			i++
		}
		return n
	}
	spec.width = digits()
	if at(i) == '.' {
		i++
		spec.precision = digits()
	}
	if isdigit(at(i)) {
		L.RaiseError("invalid format (width or precision too long)")
	}
	return spec, i
}

// formatItem formats argument arg by one conversion.
func formatItem(L *lua.LState, spec formatSpec, conv byte, arg int) string {
	switch conv {
	case 'c':
		return spec.pad(string([]byte{byte(int(L.CheckNumber(arg)))}))
	case 'd', 'i':
		return spec.number(formatInt(L.CheckNumber(arg)), 'd')
	case 'o', 'u', 'x', 'X':
		v := uint64(formatInt(L.CheckNumber(arg)))
		if conv == 'u' {
			conv = 'd'
		}
		spec.flags = strings.NewReplacer("+", "", " ", "").Replace(spec.flags) // signs are for signed conversions
		if v == 0 && conv != 'o' {
			spec.flags = strings.ReplaceAll(spec.flags, "#", "") // C's %#x prints 0 as 0, Go's as 0x0
		}
		return spec.number(v, conv)
	case 'e', 'E', 'f', 'g', 'G':
		f := float64(L.CheckNumber(arg))
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return spec.pad(nonFinite(f, conv))
		}
		if spec.precision < 0 {
			spec.precision = 6 // C's default; Go's %g would print the shortest form
		}
		return spec.number(f, conv)
	case 's':
		var str string
		if v := L.Get(arg); lua.LVCanConvToString(v) {
			str = lua.LVAsString(v)
		} else {
			str = L.ToStringMeta(v).String()
		}
		if spec.precision >= 0 && len(str) > spec.precision {
			str = str[:spec.precision]
		}
		return spec.pad(str)
	default:
		L.RaiseError("invalid option '%%%c' to 'format'", conv)
		return ""
	}
}

// formatInt is C's cast of a Lua number to an integer: truncation, with
// values out of range clamped rather than undefined.
func formatInt(n lua.LNumber) int64 {
	f := math.Trunc(float64(n))
	switch {
	case math.IsNaN(f):
		return 0
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

func nonFinite(f float64, conv byte) string {
	s := "nan"
	switch {
	case math.IsInf(f, 1):
		s = "inf"
	case math.IsInf(f, -1):
		s = "-inf"
	}
	if conv == 'E' || conv == 'G' {
		s = strings.ToUpper(s)
	}
	return s
}

// number formats v with Go's fmt, whose flags, width and precision mean
// what C's do for these conversions (widths are bytes here: digits only).
func (spec formatSpec) number(v any, conv byte) string {
	f := "%" + spec.flags
	if spec.width > 0 {
		f += strconv.Itoa(spec.width)
	}
	if spec.precision >= 0 {
		f += "." + strconv.Itoa(spec.precision)
	}
	return fmt.Sprintf(f+string(conv), v)
}

// pad pads str to the width in bytes, as C does (Go's fmt counts runes).
func (spec formatSpec) pad(str string) string {
	n := spec.width - len(str)
	if n <= 0 {
		return str
	}
	if strings.IndexByte(spec.flags, '-') >= 0 {
		return str + strings.Repeat(" ", n)
	}
	return strings.Repeat(" ", n) + str
}

// quoteLua writes %q: a string Lua reads back as the same bytes.
func quoteLua(b *capBuf, s string) {
	b.addByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '"':
			esc = `\"`
		case '\\':
			esc = `\\`
		case '\n':
			esc = "\\\n"
		case '\r':
			esc = `\r`
		case 0:
			esc = `\000`
		default:
			continue
		}
		b.add(s[start:i])
		b.add(esc)
		start = i + 1
	}
	b.add(s[start:])
	b.addByte('"')
}
