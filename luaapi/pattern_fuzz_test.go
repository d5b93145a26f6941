package luaapi

import (
	"context"
	"strings"
	"testing"

	"github.com/yuin/gopher-lua/pm"
)

// FuzzPatternsMatchReference compares the deadline-aware matcher with
// gopher-lua's own on the first match and its captures. Inputs where the
// reference panics, or where it departs from Lua 5.1 (%f, a range ending in
// '-', patterns it rejects that Lua accepts), are skipped.
func FuzzPatternsMatchReference(f *testing.F) {
	for _, seed := range [][2]string{
		{"hello world", "o w"}, {"key = value", "(%w+)%s*=%s*(%w+)"}, {"abc", "()b()"},
		{"f(a(b)c)d", "%b()"}, {"aaab", "a-b"}, {"abcabc", "(abc)%1"}, {"a-b", "[a%-]+"},
		{"0x1F", "^0[xX](%x+)$"}, {"  trim  ", "^%s*(.-)%s*$"}, {"x", "[^%s]?x*$"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, src, pat string) {
		if len(src) > 256 || len(pat) > 64 || referenceDiffers(pat) {
			t.Skip()
		}
		want, ok := referenceFind(src, pat)
		if !ok {
			t.Skip()
		}
		var got []int
		func() {
			defer func() {
				if r := recover(); r != nil {
					if _, ok := r.(*patternError); !ok {
						panic(r)
					}
					got = nil
					ok = false
				}
			}()
			ms := newMatchState(context.Background(), src, pat)
			s, e := ms.find(0)
			if s < 0 {
				got = []int{}
				return
			}
			got = []int{s, e}
			for i := range ms.level {
				c := ms.cap[i]
				if c.len == capPosition {
					got = append(got, c.init, c.init)
				} else {
					got = append(got, c.init, c.init+c.len)
				}
			}
		}()
		if !ok {
			return // the reference accepted a pattern Lua 5.1 refuses
		}
		if len(got) != len(want) {
			t.Fatalf("find(%q, %q) = %v, reference %v", src, pat, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("find(%q, %q) = %v, reference %v", src, pat, got, want)
			}
		}
	})
}

// referenceDiffers reports patterns on which gopher-lua's matcher departs
// from Lua 5.1's: %f, a range ending in '-' or at a class (-%), NUL bytes, back-references to
// position captures (Lua never matches them).
func referenceDiffers(pat string) bool {
	return strings.Contains(pat, "%f") || strings.Contains(pat, "-]") || strings.Contains(pat, "-%") || strings.ContainsRune(pat, 0) ||
		(strings.Contains(pat, "()") && strings.ContainsAny(pat, "123456789"))
}

// referenceFind is gopher-lua's first match as offsets (position captures
// as a pair of equal offsets); ok is false when it errs or panics.
func referenceFind(src, pat string) (out []int, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	mds, err := pm.Find(pat, []byte(src), 0, 1)
	if err != nil {
		return nil, false
	}
	if len(mds) == 0 {
		return []int{}, true
	}
	md := mds[0]
	for i := 0; i < md.CaptureLength(); i += 2 {
		if md.IsPosCapture(i) {
			out = append(out, md.Capture(i)-1, md.Capture(i)-1)
		} else {
			out = append(out, md.Capture(i), md.Capture(i+1))
		}
	}
	return out, true
}
