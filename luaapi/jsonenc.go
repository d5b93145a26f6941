package luaapi

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"
)

// EncodeLuaJSON encodes a Lua value as JSON directly, by the rules of
// FromLua (arrays are tables keyed 1..n or marked; other tables are objects
// with sorted keys; integral numbers print as integers), without building
// Go maps first. Its output equals EncodeJSON(FromLua(v)).
func EncodeLuaJSON(v lua.LValue) ([]byte, error) {
	return EncodeLuaJSONLimit(v, MaxValueSize)
}

// MaxValueSize bounds the JSON of a value leaving Lua: a table that holds
// the same large table many times would otherwise expand without end.
const MaxValueSize = 64 << 20

// ErrTooLarge is returned when a value leaving Lua is over its size limit.
var ErrTooLarge = errors.New("luaapi: value too large")

// EncodeLuaJSONLimit is EncodeLuaJSON refusing output over max bytes
// (ErrTooLarge) before it is written.
func EncodeLuaJSONLimit(v lua.LValue, max int) ([]byte, error) {
	var b bytes.Buffer
	if err := encodeLua(&b, v, 0, max); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func encodeLua(b *bytes.Buffer, v lua.LValue, depth, max int) error {
	switch x := v.(type) {
	case *lua.LNilType:
		b.WriteString("null")
	case lua.LBool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case lua.LString:
		if len(x)+2 > max-b.Len() {
			return fmt.Errorf("%w (over %d bytes of JSON)", ErrTooLarge, max)
		}
		writeJSONString(b, string(x))
	case lua.LNumber:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("luaapi: number %v has no JSON form", f)
		}
		if f == math.Trunc(f) && math.Abs(f) <= maxSafeInteger {
			b.WriteString(strconv.FormatInt(int64(f), 10))
		} else {
			writeJSONFloat(b, f)
		}
	case *lua.LTable:
		if depth >= MaxDepth {
			return ErrTooDeep
		}
		return encodeTable(b, x, depth, max)
	case *lua.LUserData:
		if !isJSONNull(x) {
			return fmt.Errorf("luaapi: a %s cannot leave Lua (only nil, booleans, numbers, strings and tables of those)", v.Type())
		}
		b.WriteString("null")
	default:
		return fmt.Errorf("luaapi: a %s cannot leave Lua (only nil, booleans, numbers, strings and tables of those)", v.Type())
	}
	return nil
}

func encodeTable(b *bytes.Buffer, t *lua.LTable, depth, max int) error {
	n := t.MaxN()
	if (n > 0 && isSequence(t, n)) || (n == 0 && isMarkedArray(t) && isEmpty(t)) {
		b.WriteByte('[')
		for i := 1; i <= n; i++ {
			if b.Len() > max {
				return fmt.Errorf("%w (over %d bytes of JSON)", ErrTooLarge, max)
			}
			if i > 1 {
				b.WriteByte(',')
			}
			if err := encodeLua(b, t.RawGetInt(i), depth+1, max); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		b.WriteByte(']')
		return nil
	}
	type field struct {
		key string
		val lua.LValue
	}
	var small [8]field // most objects: their keys sorted without an allocation
	fields := small[:0]
	var err error
	eachField(t, func(k, v lua.LValue) {
		switch kk := k.(type) {
		case lua.LString:
			fields = append(fields, field{string(kk), v})
		case lua.LNumber:
			fields = append(fields, field{kk.String(), v})
		default:
			if err == nil {
				err = fmt.Errorf("luaapi: a %s cannot be an object key", k.Type())
			}
		}
	})
	if err != nil {
		return err
	}
	slices.SortFunc(fields, func(a, b field) int { return strings.Compare(a.key, b.key) })
	b.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		if len(f.key)+3 > max-b.Len() {
			return fmt.Errorf("%w (over %d bytes of JSON)", ErrTooLarge, max)
		}
		writeJSONString(b, f.key)
		b.WriteByte(':')
		if err := encodeLua(b, f.val, depth+1, max); err != nil {
			return fmt.Errorf("%s: %w", f.key, err)
		}
	}
	b.WriteByte('}')
	return nil
}

// writeJSONFloat formats f as encoding/json does: plain digits, or an
// exponent below 1e-6 and from 1e21 on.
func writeJSONFloat(b *bytes.Buffer, f float64) {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	out := strconv.AppendFloat(make([]byte, 0, 24), f, format, -1, 64)
	if n := len(out); format == 'e' && n >= 4 && out[n-4] == 'e' && out[n-3] == '-' && out[n-2] == '0' {
		out[n-2] = out[n-1] // e-09 → e-9
		out = out[:n-1]
	}
	b.Write(out)
}

func isEmpty(t *lua.LTable) bool {
	k, _ := t.Next(lua.LNil)
	return k == lua.LNil
}

const hexDigits = "0123456789abcdef"

// writeJSONString writes s as a JSON string as encoding/json does without
// HTML escaping: invalid UTF-8 becomes U+FFFD.
func writeJSONString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b.WriteString(s[start:i])
			switch c {
			case '"', '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			case '\b':
				b.WriteString(`\b`)
			case '\f':
				b.WriteString(`\f`)
			default:
				b.WriteString(`\u00`)
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString(s[start:i])
			b.WriteString(`\ufffd`)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b.WriteString(s[start:i])
			b.WriteString(`\u202`)
			b.WriteByte(hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}
