package luaapi

import (
	"math"
	"testing"
	"time"
)

func TestFloatDurationSaturates(t *testing.T) {
	for _, c := range []struct {
		n    float64
		unit time.Duration
		want time.Duration
	}{
		{1.5, time.Second, 1500 * time.Millisecond},
		{10, time.Millisecond, 10 * time.Millisecond},
		{0, time.Second, 0},
		{-1, time.Second, 0},
		{-1e300, time.Millisecond, 0},
		{math.NaN(), time.Second, 0},
		{1e300, time.Millisecond, math.MaxInt64},
		{math.Inf(1), time.Second, math.MaxInt64},
		{math.Pow(2, 63), time.Nanosecond, math.MaxInt64},
	} {
		if got := floatDuration(c.n, c.unit); got != c.want {
			t.Errorf("floatDuration(%v, %v) = %v, want %v", c.n, c.unit, got, c.want)
		}
	}
}
