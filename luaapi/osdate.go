package luaapi

import lua "github.com/yuin/gopher-lua"

// maxDateFormat bounds os.date's format: gopher-lua expands it in Go code
// the deadline cannot stop, at about 20 bytes per "%c", so a 16 MiB format
// ran a call a second past its deadline and built a 160 MiB string.
const maxDateFormat = 1024

// osDate wraps gopher-lua's os.date, refusing a format over maxDateFormat.
func osDate(date lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		if s, ok := L.Get(1).(lua.LString); ok && len(s) > maxDateFormat {
			L.RaiseError("os.date: the format is %d bytes, over the limit of %d", len(s), maxDateFormat)
		}
		return date(L)
	}
}
