package cachebridge

import (
	"context"
	"strconv"
	"testing"
)

// benchKeys are distinct keys, built before the timer starts.
func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "[" + strconv.Itoa(i) + "]"
	}
	return keys
}

// BenchmarkGet is a lookup of a stored key (hit) and of an absent one.
func BenchmarkGet(b *testing.B) {
	c, _, _ := newTestCache(b, Options{})
	c.Prefill("[1]", "value")
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := c.Get("[1]"); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("absent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := c.Get("[2]"); ok {
				b.Fatal("hit")
			}
		}
	})
}

// BenchmarkMiss is a whole miss as luaapi's cached functions run it: Get,
// Load (this caller leads), complete with the computed value (stored). The
// key is new each time; making it is one of the allocations, as a real
// call's canonical encoding of its arguments is.
func BenchmarkMiss(b *testing.B) {
	c, _, _ := newTestCache(b, Options{MaxEntries: 1000})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		key := strconv.Itoa(i)
		i++
		if _, ok := c.Get(key); ok {
			b.Fatal("hit")
		}
		leader, _, complete := c.Load(key)
		if !leader {
			b.Fatal("not the leader")
		}
		complete("value", nil)
	}
}

// BenchmarkInvalidate drops a stored key (in-process: no Redis).
func BenchmarkInvalidate(b *testing.B) {
	c, _, _ := newTestCache(b, Options{MaxEntries: 1000})
	keys := benchKeys(1000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%len(keys) == 0 {
			b.StopTimer()
			for _, k := range keys {
				c.Prefill(k, "value")
			}
			b.StartTimer()
		}
		if err := c.InvalidateEverywhere(context.Background(), keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
