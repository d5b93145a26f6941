package luaapi

import (
	"math"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// TestEncodeLuaJSONMatchesEncodeJSON checks the direct encoder against
// FromLua + encoding/json on the same values.
func TestEncodeLuaJSONMatchesEncodeJSON(t *testing.T) {
	L := lua.NewState(stateOptions)
	defer L.Close()
	lua.OpenBase(L)
	for _, src := range []string{
		`return nil`, `return true`, `return 42`, `return -0.5`, `return 2^53`, `return 2^60`, `return 1e300`, `return 1.5e-9`, `return -3.25e21`,
		`return "plain"`, `return "quote\" back\\ nl\n tab\t ctl\1 <html>&"`, `return "caf\195\169 \255 bad \226\128\168"`,
		`return {}`, `return {1, 2, "x", {a = 1}}`, `return {b = 2, a = {c = {true, false}}, ["10"] = 1, [3] = "n"}`,
		`local t = {} t[1] = 1 t[3] = 3 return t`, `return {{}, {{}}}`,
	} {
		if err := L.DoString(src); err != nil {
			t.Fatal(err)
		}
		v := L.Get(-1)
		L.Pop(1)
		gv, err := FromLua(v)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := EncodeJSON(gv)
		got, err := EncodeLuaJSON(v)
		if err != nil || string(got) != string(want) {
			t.Errorf("%s: got %s (%v), want %s", src, got, err, want)
		}
	}
	arr := L.CreateTable(0, 0)
	markArray(L, arr)
	if got, _ := EncodeLuaJSON(arr); string(got) != "[]" {
		t.Errorf("marked empty array: %s", got)
	}
	for _, bad := range []lua.LValue{L.NewFunction(func(*lua.LState) int { return 0 }), lua.LNumber(math.NaN())} {
		if _, err := EncodeLuaJSON(bad); err == nil {
			t.Errorf("%v encoded", bad)
		}
	}
}

// FuzzJSONThroughLua decodes JSON, converts it into Lua and back both ways
// (FromLua + encoding/json, and EncodeLuaJSON), and requires the same text.
func FuzzJSONThroughLua(f *testing.F) {
	for _, seed := range []string{`null`, `[1,"a",{"b":[]}]`, `{"x":{"y":1.5e-9,"z":"\u2028\ufffd"}}`, `123456789012345678901`, `[[],{}]`, `"\u0000"`} {
		f.Add(seed)
	}
	L := lua.NewState(stateOptions)
	defer L.Close()
	f.Fuzz(func(t *testing.T, input string) {
		v, err := DecodeJSON([]byte(input))
		if err != nil {
			return
		}
		lv, err := ToLua(L, v)
		if err != nil {
			return
		}
		gv, err := FromLua(lv)
		if err != nil {
			t.Fatalf("FromLua(ToLua(%q)): %v", input, err)
		}
		want, err := EncodeJSON(gv)
		if err != nil {
			t.Fatal(err)
		}
		got, err := EncodeLuaJSON(lv)
		if err != nil || string(got) != string(want) {
			t.Fatalf("%q: EncodeLuaJSON = %s (%v), EncodeJSON(FromLua) = %s", input, got, err, want)
		}
	})
}

// BenchmarkEncodeLuaJSON encodes a web response's json: the hello route's
// one-key object, and an object of 12 keys with an array.
func BenchmarkEncodeLuaJSON(b *testing.B) {
	L := lua.NewState()
	defer L.Close()
	for _, bc := range []struct{ name, src string }{
		{"hello", `return {message = "hello, bench"}`},
		{"object12", `return {a = 1, b = 2.5, c = "three", d = true, e = {1, 2, 3}, f = "six", g = 7, h = 8, i = 9, j = 10, k = 11, l = "twelve"}`},
	} {
		if err := L.DoString(bc.src); err != nil {
			b.Fatal(err)
		}
		v := L.Get(-1)
		L.Pop(1)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := EncodeLuaJSON(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
