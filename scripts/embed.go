// Package scripts holds the example modules and the default configuration
// that `luamods serve` runs when given no configuration.
package scripts

import "embed"

// Default is luamods.yaml and the example modules, as shipped.
//
//go:embed luamods.yaml *.lua
var Default embed.FS
