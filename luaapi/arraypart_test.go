package luaapi

import (
	"runtime"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// TestHugeIntegerKeysStayInTheHashPart: a key far beyond the array part is
// one hash entry, not a padded array (gopher-lua's default bound made this
// assignment allocate over a gigabyte), and sequences keep their length.
func TestHugeIntegerKeysStayInTheHashPart(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := L.DoString(`t = {} t[67108863] = 1 assert(#t == 0 and t[67108863] == 1)`); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("t[67108863] = 1 allocated %d bytes", n)
	}
	if err := L.DoString(`local s = {} for i = 1, 100000 do s[#s + 1] = i end assert(#s == 100000 and s[100000] == 100000)`); err != nil {
		t.Fatal(err)
	}
}
