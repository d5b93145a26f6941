// Command luamods runs Lua modules for a server: as a sidecar daemon
// (serve), or to check, call and try them (check, call, reload, repl).
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
