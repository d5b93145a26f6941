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
		{"one, two", "%a+"}, {"a,b,,c", "[^,]+"}, {" x ", "%s*"}, {"abc", "."}, {"x$", "$+"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, src, pat string) {
		if len(src) > 256 || len(pat) > 64 || referenceDiffers(pat) {
			t.Skip()
		}
		checkClassRun(t, src, pat)
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

// checkClassRun compares, for a pattern that is one class run, the linear
// scan (with and without its byte set) with the recursive matcher from
// every position of src.
func checkClassRun(t *testing.T, src, pat string) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(*patternError); !ok {
				panic(r)
			}
		}
	}()
	ms := newMatchState(context.Background(), src, pat)
	ep, rep, ok := ms.classRun(0)
	if !ok {
		return
	}
	for init := 0; init <= len(src); init++ {
		ws, we := ms.tryEach(init, 0, false)
		ms.setOf = ""
		if s, e := ms.scanClass(init, 0, ep, rep); s != ws || e != we {
			t.Fatalf("scan of %q for %q from %d = %d, %d; the matcher's %d, %d", src, pat, init, s, e, ws, we)
		}
		ms.classSet(0, ep, classSetMin)
		if s, e := ms.scanClass(init, 0, ep, rep); s != ws || e != we {
			t.Fatalf("scan of %q for %q from %d with the byte set = %d, %d; the matcher's %d, %d", src, pat, init, s, e, ws, we)
		}
	}
}

// referenceDiffers reports patterns on which gopher-lua's matcher departs
// from Lua 5.1's: %f, a range ending in '-' or at a class (-%), a range
// followed by '-' ([0-0-0]) or ending at one ([1--0]), NUL bytes,
// back-references to position captures (Lua never matches them).
func referenceDiffers(pat string) bool {
	return strings.Contains(pat, "%f") || strings.Contains(pat, "-]") || strings.Contains(pat, "-%") || strings.ContainsRune(pat, 0) ||
		(strings.Contains(pat, "()") && strings.ContainsAny(pat, "123456789")) || rangeThenDash(pat)
}

// rangeThenDash reports a '-' one or two bytes after another ("1--0",
// "0-0-0").
func rangeThenDash(pat string) bool {
	for i := 0; i+1 < len(pat); i++ {
		if pat[i] == '-' && (pat[i+1] == '-' || i+2 < len(pat) && pat[i+2] == '-') {
			return true
		}
	}
	return false
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
