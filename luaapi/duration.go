package luaapi

import (
	"math"
	"time"
)

// floatDuration is n units as a Duration, saturated: a negative n or NaN
// is 0 and a count past Duration's range is its largest value. A plain
// conversion made api.delayed_background_call(1e300, f) run f at once and
// looping_background_call(f, 1e300) run it every min_timer_interval.
func floatDuration(n float64, unit time.Duration) time.Duration {
	switch d := n * float64(unit); {
	case !(d > 0):
		return 0
	case d >= math.MaxInt64:
		return math.MaxInt64
	default:
		return time.Duration(d)
	}
}
