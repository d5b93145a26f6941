package engine

import (
	"strconv"

	"gopkg.in/yaml.v3"

	"luamods/luaapi"
)

// limitKeys are the keys of luaapi.Limits, valid at the top level (for
// every module) and in each entry of modules: (for that module).
var limitKeys = []string{"max_timers", "min_timer_interval", "max_queued_calls"}

// limit reads one of limitKeys into l.
func (p *configParser) limit(key string, v *yaml.Node, at []string, l *luaapi.Limits) {
	switch key {
	case "max_timers":
		l.MaxTimers = p.count(v, at)
	case "min_timer_interval":
		l.MinTimerInterval = p.duration(v, at)
	case "max_queued_calls":
		l.MaxQueuedCalls = p.count(v, at)
	}
}

// count reads a whole number of at least 1.
func (p *configParser) count(v *yaml.Node, at []string) int {
	n, err := strconv.Atoi(v.Value)
	if v.Kind != yaml.ScalarNode || err != nil || n < 1 {
		p.fail(v, at, "expected a whole number of at least 1")
		return 0
	}
	return n
}
