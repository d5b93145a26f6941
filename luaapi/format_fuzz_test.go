package luaapi

import (
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// refItem is one piece of a format string as Lua 5.1's lstrlib.c reads it:
// literal text, or a conversion with its flags, width and precision.
type refItem struct {
	literal          string
	conv             byte // 0: literal
	flags            string
	width, precision int // -1: absent
}

// refParseFormat is lstrlib.c's str_format loop and scanformat, written
// from the C source: flags from "-+ #0" (six or more is an error), at most
// two digits of width and of precision, a Lua 5.1 conversion. The error
// is the message Lua gives, with the items before the one it is about.
func refParseFormat(format string) ([]refItem, string) {
	var items []refItem
	var lit strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			lit.WriteByte(format[i])
			continue
		}
		if i+1 < len(format) && format[i+1] == '%' {
			lit.WriteByte('%')
			i++
			continue
		}
		if lit.Len() > 0 {
			items = append(items, refItem{literal: lit.String()})
			lit.Reset()
		}
		i++
		it := refItem{width: -1, precision: -1}
		start := i
		for i < len(format) && strings.IndexByte("-+ #0", format[i]) >= 0 {
			i++
		}
		if i-start >= 6 {
			return items, "invalid format (repeated flags)"
		}
		it.flags = format[start:i]
		digits := func() int {
			n := -1
			for k := 0; k < 2 && i < len(format) && format[i] >= '0' && format[i] <= '9'; k++ {
				n = max(n, 0)*10 + int(format[i]-'0')
				i++
			}
			return n
		}
		it.width = digits()
		if i < len(format) && format[i] == '.' {
			i++
			it.precision = max(digits(), 0)
		}
		if i < len(format) && format[i] >= '0' && format[i] <= '9' {
			return items, "invalid format (width or precision too long)"
		}
		if i >= len(format) || strings.IndexByte("cdiouxXeEfgGqs", format[i]) < 0 {
			return items, "invalid option"
		}
		it.conv = format[i]
		items = append(items, it)
	}
	if lit.Len() > 0 {
		items = append(items, refItem{literal: lit.String()})
	}
	return items, ""
}

// refFormat is what Lua 5.1 prints for one conversion, for the cases this
// test can say without C's printf: strings, characters and %q by lstrlib's
// rules (widths count bytes), integers and finite floats by Go's fmt, whose
// flags, width and precision mean C's for them. ok is false elsewhere.
func refFormat(it refItem, n float64, s string) (out string, ok bool) {
	pad := func(str string) string {
		if fill := it.width - len(str); fill > 0 {
			if strings.Contains(it.flags, "-") {
				return str + strings.Repeat(" ", fill)
			}
			return strings.Repeat(" ", fill) + str
		}
		return str
	}
	spec := func(flags string) string {
		f := "%" + flags
		if it.width >= 0 {
			f += strconv.Itoa(it.width)
		}
		if it.precision >= 0 {
			f += "." + strconv.Itoa(it.precision)
		}
		return f
	}
	switch it.conv {
	case 's':
		if strings.Trim(it.flags, "-") != "" {
			return "", false // C leaves 0, +, space and # undefined for %s
		}
		if it.precision >= 0 && len(s) > it.precision {
			s = s[:it.precision]
		}
		return pad(s), true
	case 'c':
		if n < 0 || n >= 256 || strings.Trim(it.flags, "-") != "" {
			return "", false
		}
		return pad(string([]byte{byte(n)})), true
	case 'q':
		r := strings.NewReplacer(`"`, `\"`, `\`, `\\`, "\n", "\\\n", "\r", `\r`, "\x00", `\000`)
		return `"` + r.Replace(s) + `"`, true
	case 'd', 'i':
		if math.Abs(n) >= 1<<53 || math.IsNaN(n) {
			return "", false
		}
		return fmt.Sprintf(spec(it.flags)+"d", int64(n)), true
	case 'o', 'u', 'x', 'X':
		if n < 0 || n >= 1<<53 || math.IsNaN(n) {
			return "", false
		}
		conv := string(it.conv)
		if conv == "u" {
			conv = "d"
		}
		flags := strings.NewReplacer("+", "", " ", "").Replace(it.flags)
		if n < 1 && conv != "o" {
			flags = strings.ReplaceAll(flags, "#", "") // C: no 0x before a zero
		}
		return fmt.Sprintf(spec(flags)+conv, uint64(n)), true
	case 'e', 'E', 'f', 'g', 'G':
		if math.IsInf(n, 0) || math.IsNaN(n) {
			return "", false
		}
		if it.precision < 0 {
			it.precision = 6
		}
		return fmt.Sprintf(spec(it.flags)+string(it.conv), n), true
	}
	return "", false
}

// FuzzStringFormat runs string.format as the sandbox provides it on a
// fuzzed format, with a number for the numeric conversions and a string
// for %s and %q. It must never panic, never allocate much more than the
// call's budget, fail exactly when Lua 5.1 fails (a conversion Lua 5.1 does
// not have, a width of three digits, six flags), and print what Lua prints
// where refFormat can say it.
func FuzzStringFormat(f *testing.F) {
	for _, seed := range []struct {
		format string
		n      float64
		s      string
	}{
		{"%d|%5d|%-5d|%05d|%+d|% d", 42, ""}, {"%x|%X|%o|%#x|%u", 255, ""}, {"%e|%.2f|%g|%G|%.3g", 12345.678, ""},
		{"%s|%10s|%-10s|%.2s|%5.1s|", 0, "abc"}, {"%q", 0, "a \"q\"\n\\\r\x00"}, {"%c", 76, ""}, {"%%|%s|%d", -7.9, "x"},
		{"%p %T", 1, "x"}, {"%100d", 1, ""}, {"%------d", 1, ""}, {"%99.99f", 1e308, ""}, {"%", 0, ""}, {"%5.", 0, ""},
		{"%99s", 0, "ünï"}, {"%g", math.Inf(-1), ""}, {"%d", math.NaN(), ""}, {"%.0e", 0.5, ""},
	} {
		f.Add(seed.format, seed.n, seed.s)
	}
	const budget = 1 << 20
	st, _ := newTestState(f, apiModule(`local f, n, s, kinds = ...
local args = {}
for i = 1, #kinds do args[i] = kinds:sub(i, i) == "n" and n or s end
return string.format(f, unpack(args, 1, #kinds))`), &Env{MaxCallMemory: budget})
	f.Fuzz(func(t *testing.T, format string, n float64, s string) {
		if len(format) > 256 || len(s) > 256 {
			t.Skip()
		}
		items, refErr := refParseFormat(format)
		var kinds strings.Builder
		for _, it := range items {
			switch it.conv {
			case 0:
			case 's', 'q':
				kinds.WriteByte('s')
			default:
				kinds.WriteByte('n')
			}
		}
		if refErr != "" {
			kinds.WriteByte('n') // Lua 5.1 wants the item's argument before it reads the item
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		got, err := callRun(t, st, format, n, s, kinds.String())
		runtime.ReadMemStats(&after)
		if st.Retired() {
			t.Fatalf("%q: the state was retired (a Go panic?): %v", format, err)
		}
		if used := after.TotalAlloc - before.TotalAlloc; used > 4*budget {
			t.Fatalf("%q: the call allocated %d bytes, budget %d", format, used, budget)
		}
		if refErr != "" {
			if err == nil || !strings.Contains(err.Error(), refErr) {
				t.Fatalf("%q: got %v, want Lua 5.1's error %q", format, err, refErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q (n=%v, s=%q): Lua 5.1 formats it, got %v", format, n, s, err)
		}
		var want strings.Builder
		for _, it := range items {
			if it.conv == 0 {
				want.WriteString(it.literal)
				continue
			}
			out, ok := refFormat(it, n, s)
			if !ok {
				return // an item only C's printf can say
			}
			want.WriteString(out)
		}
		if got[0] != want.String() {
			t.Fatalf("string.format(%q, n=%v, s=%q) = %q, want %q", format, n, s, got[0], want.String())
		}
	})
}
