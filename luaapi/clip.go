package luaapi

import (
	"fmt"
	"unicode/utf8"
)

// maxLogText bounds a module's text that reaches the log: an error message
// or a print line. A 16 MiB error(string.rep(...)) was logged whole, 16 MiB
// a line, as often as a client asked.
const maxLogText = 8 << 10

// clipText returns s, or its first n bytes (cut at a character boundary)
// and how long it was.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return fmt.Sprintf("%s... (%d bytes in all)", s[:n], len(s))
}
