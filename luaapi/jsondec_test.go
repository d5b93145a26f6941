package luaapi

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// decodeBothWays decodes input directly and the long way (DecodeJSON +
// ToLua) and returns both as Go values (FromLua), with both errors.
func decodeBothWays(L *lua.LState, input string) (direct, long any, derr, lerr error) {
	lv, derr := DecodeJSONToLua(L, []byte(input))
	if derr == nil {
		direct, derr = FromLua(lv)
	}
	v, lerr := DecodeJSON([]byte(input))
	if lerr == nil {
		var lv lua.LValue
		if lv, lerr = ToLua(L, v); lerr == nil {
			long, lerr = FromLua(lv)
		}
	}
	return direct, long, derr, lerr
}

func TestDecodeJSONToLuaIsTheLongWay(t *testing.T) {
	L := lua.NewState(stateOptions)
	defer L.Close()
	deep := strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)
	for _, input := range []string{
		`null`, `true`, `false`, ` 1 `, `-0`, `0.5`, `-1.25e3`, `1E+2`, `9007199254740993`, `-9007199254740993`,
		`12345678901234567890`, `1e400`, `1.0`, `"plain"`, `"caf\u00e9 \ud83d\ude00 \u2028"`, `"\ud800"`,
		"\"bad \xff utf8\"", `"esc \" \\ \/ \b \f \n \r \t"`, `"ünïcödé"`, `[]`, `{}`, `[[],{}]`, `[1,null,2]`,
		`[null]`, `{"a":null}`, `{"a":1,"a":2}`, `{"a":null,"a":1}`, `{"a":1,"a":null}`, `{"1":"x","2":"y"}`,
		`{"nested":{"list":[1,2,{"deep":[true,false,null]}],"s":"v"}}`, "{\n\t\"ws\" : [ 1 , 2 ] \r\n}",
		``, ` `, `nul`, `tru`, `[1,]`, `{"a":1,}`, `{"a"}`, `{a:1}`, `[1 2]`, `01`, `1.`, `.5`, `-`, `1e`, `+1`,
		`"unterminated`, "\"ctl \x01\"", `"bad \x escape"`, `1 2`, `[1]x`, `{"a":1}}`, deep,
		strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth),
	} {
		direct, long, derr, lerr := decodeBothWays(L, input)
		if (derr == nil) != (lerr == nil) || derr != nil && derr.Error() != lerr.Error() {
			t.Errorf("%q: errors %v / %v (direct / the long way)", input, derr, lerr)
			continue
		}
		if !reflect.DeepEqual(direct, long) {
			t.Errorf("%q: %#v, the long way %#v", input, direct, long)
		}
	}
}

func TestDecodeJSONToLuaKeepsDocumentOrder(t *testing.T) {
	L := lua.NewState(stateOptions)
	defer L.Close()
	lv, err := DecodeJSONToLua(L, []byte(`{"z":1,"a":2,"m":3}`))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string // in pairs order (ForEach walks Go's map)
	tbl := lv.(*lua.LTable)
	for k, _ := tbl.Next(lua.LNil); k != lua.LNil; k, _ = tbl.Next(k) {
		keys = append(keys, k.String())
	}
	if strings.Join(keys, ",") != "z,a,m" {
		t.Fatalf("keys in order %v", keys)
	}
}

// FuzzDecodeJSONToLua: the direct decoder gives what the long way gives,
// values and errors.
func FuzzDecodeJSONToLua(f *testing.F) {
	for _, seed := range []string{`null`, `[1,"a",{"b":[]}]`, `{"x":{"y":1.5e-9,"z":"\u2028\ufffd"}}`, `123456789012345678901`, `[[],{}]`, `"\u0000"`, `{"a":1,"a":null}`} {
		f.Add(seed)
	}
	L := lua.NewState(stateOptions)
	defer L.Close()
	f.Fuzz(func(t *testing.T, input string) {
		direct, long, derr, lerr := decodeBothWays(L, input)
		if (derr == nil) != (lerr == nil) || derr != nil && derr.Error() != lerr.Error() {
			t.Fatalf("%q: errors %v / %v (direct / the long way)", input, derr, lerr)
		}
		if !reflect.DeepEqual(direct, long) {
			t.Fatalf("%q: %#v, the long way %#v", input, direct, long)
		}
	})
}

// BenchmarkDecodeJSON decodes tools/bench/realistic.json (2 KB) into Lua
// directly and the long way.
// BenchmarkDecodeJSON decodes the realistic route's body (a long text and
// an array of 20 strings) and a Matrix event (nested objects), straight
// into Lua and the long way.
func BenchmarkDecodeJSON(b *testing.B) {
	realistic, err := os.ReadFile("../tools/bench/realistic.json")
	if err != nil {
		b.Fatal(err)
	}
	event, err := json.Marshal(event20())
	if err != nil {
		b.Fatal(err)
	}
	L := lua.NewState(stateOptions)
	defer L.Close()
	for _, doc := range []struct {
		name string
		body []byte
	}{{"realistic", realistic}, {"event", event}} {
		b.Run("direct/"+doc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeJSONToLua(L, doc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("long/"+doc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				v, err := DecodeJSON(doc.body)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := ToLua(L, v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestDecodeJSONToLuaTakesValidJSONDirectly(t *testing.T) {
	L := lua.NewState(stateOptions)
	defer L.Close()
	for _, input := range []string{
		`null`, `-1.25e3`, `12345678901234567890`, `"caf\u00e9 \ud83d\ude00"`, `"ünïcödé"`, `[1,null,2]`,
		`{"nested":{"list":[1,2,{"deep":[true,false,null]}],"s":"v"}}`, `{"a":null,"a":1}`,
	} {
		d := jsonDecoder{L: L, data: []byte(input)}
		if _, ok := d.value(0); !ok || d.pos != len(input) {
			t.Errorf("%q went the long way (stopped at %d)", input, d.pos)
		}
	}
}
