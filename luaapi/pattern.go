package luaapi

import (
	"context"
	"strings"
)

// This file is Lua 5.1's pattern matcher (lstrlib.c), in Go, for
// string.find, match, gmatch and gsub. gopher-lua's own collects every match
// before returning and cannot be interrupted: string.find(("a"):rep(30000),
// "a*b") ran 22 s under a 2 s deadline. This one polls the call's context
// every patternPoll steps and bounds its recursion as Lua 5.2 does.

const (
	maxCaptures   = 32   // LUA_MAXCAPTURES
	maxMatchDepth = 200  // MAXCCALLS of Lua 5.2's matcher: "pattern too complex"
	patternPoll   = 4096 // steps between two looks at the deadline
	capUnfinished = -1
	capPosition   = -2
)

// patternError is raised (as a panic) inside the matcher and turned into a
// Lua error by the builtin that called it.
type patternError struct{ msg string }

// matchState is lstrlib.c's MatchState: the subject, the pattern, the
// captures of the match being tried, and the step count of the deadline poll.
type matchState struct {
	src   string
	pat   string
	ctx   context.Context
	level int
	depth int
	steps int
	cap   [maxCaptures]struct{ init, len int }

	// set is the class of the pattern setOf at setAt as a set of bytes,
	// kept across reset while the pattern stays the same (classSet).
	set   byteSet
	setOf string
	setAt int
}

func newMatchState(ctx context.Context, src, pat string) *matchState {
	ms := &matchState{}
	ms.reset(ctx, src, pat)
	return ms
}

// reset makes ms ready to match pat against src under ctx.
func (ms *matchState) reset(ctx context.Context, src, pat string) {
	ms.src, ms.pat, ms.ctx = src, pat, ctx
	ms.level, ms.depth, ms.steps = 0, 0, 0
}

func (ms *matchState) fail(msg string) { panic(&patternError{msg}) }

// step counts one unit of work and looks at the deadline now and then.
func (ms *matchState) step() {
	ms.steps++
	if ms.steps&(patternPoll-1) == 0 && ms.ctx != nil {
		if err := ms.ctx.Err(); err != nil {
			panic(&patternError{err.Error()})
		}
	}
}

// p is the pattern byte at i, 0 past its end (C's terminating NUL).
func (ms *matchState) p(i int) byte {
	if i < len(ms.pat) {
		return ms.pat[i]
	}
	return 0
}

// s is the subject byte at i, 0 past its end.
func (ms *matchState) s(i int) byte {
	if i < len(ms.src) {
		return ms.src[i]
	}
	return 0
}

func (ms *matchState) checkCapture(l byte) int {
	n := int(l) - '1'
	if n < 0 || n >= ms.level || ms.cap[n].len == capUnfinished {
		ms.fail("invalid capture index")
	}
	return n
}

func (ms *matchState) captureToClose() int {
	for level := ms.level - 1; level >= 0; level-- {
		if ms.cap[level].len == capUnfinished {
			return level
		}
	}
	ms.fail("invalid pattern capture")
	return 0
}

func (ms *matchState) classEnd(p int) int {
	c := ms.p(p)
	p++
	switch c {
	case '%':
		if ms.p(p) == 0 {
			ms.fail("malformed pattern (ends with '%')")
		}
		return p + 1
	case '[':
		if ms.p(p) == '^' {
			p++
		}
		for { // look for a ']'
			if ms.p(p) == 0 {
				ms.fail("malformed pattern (missing ']')")
			}
			c := ms.pat[p]
			p++
			if c == '%' && ms.p(p) != 0 {
				p++ // skip escapes (e.g. '%]')
			}
			if ms.p(p) == ']' {
				return p + 1
			}
		}
	}
	return p
}

func isalpha(c byte) bool  { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isdigit(c byte) bool  { return c >= '0' && c <= '9' }
func islower(c byte) bool  { return c >= 'a' && c <= 'z' }
func isupper(c byte) bool  { return c >= 'A' && c <= 'Z' }
func iscntrl(c byte) bool  { return c < 0x20 || c == 0x7f }
func isspace(c byte) bool  { return c == ' ' || (c >= '\t' && c <= '\r') }
func ispunct(c byte) bool  { return c > 0x20 && c < 0x7f && !isalpha(c) && !isdigit(c) }
func isxdigit(c byte) bool { return isdigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') }

// matchClass is match_class: whether c is in the class %cl (C locale).
func matchClass(c, cl byte) bool {
	var res bool
	switch cl | 0x20 {
	case 'a':
		res = isalpha(c)
	case 'c':
		res = iscntrl(c)
	case 'd':
		res = isdigit(c)
	case 'l':
		res = islower(c)
	case 'p':
		res = ispunct(c)
	case 's':
		res = isspace(c)
	case 'u':
		res = isupper(c)
	case 'w':
		res = isalpha(c) || isdigit(c)
	case 'x':
		res = isxdigit(c)
	case 'z':
		res = c == 0
	default:
		return cl == c
	}
	if isupper(cl) {
		return !res
	}
	return res
}

// matchBracketClass is matchbracketclass: p is at '[', ec at its ']'.
func (ms *matchState) matchBracketClass(c byte, p, ec int) bool {
	sig := true
	if ms.p(p+1) == '^' {
		sig = false
		p++
	}
	for p++; p < ec; p++ {
		switch {
		case ms.p(p) == '%':
			p++
			if matchClass(c, ms.p(p)) {
				return sig
			}
		case ms.p(p+1) == '-' && p+2 < ec:
			p += 2
			if ms.p(p-2) <= c && c <= ms.p(p) {
				return sig
			}
		case ms.p(p) == c:
			return sig
		}
	}
	return !sig
}

func (ms *matchState) singleMatch(c byte, p, ep int) bool {
	switch ms.p(p) {
	case '.':
		return true
	case '%':
		return matchClass(c, ms.p(p+1))
	case '[':
		return ms.matchBracketClass(c, p, ep-1)
	default:
		return ms.p(p) == c
	}
}

func (ms *matchState) matchBalance(s, p int) int {
	if ms.p(p) == 0 || ms.p(p+1) == 0 {
		ms.fail("unbalanced pattern")
	}
	if s >= len(ms.src) || ms.src[s] != ms.pat[p] {
		return -1
	}
	b, e := ms.pat[p], ms.pat[p+1]
	cont := 1
	for s++; s < len(ms.src); s++ {
		ms.step()
		switch ms.src[s] {
		case e:
			if cont--; cont == 0 {
				return s + 1
			}
		case b:
			cont++
		}
	}
	return -1
}

func (ms *matchState) maxExpand(s, p, ep int) int {
	i := 0
	for s+i < len(ms.src) && ms.singleMatch(ms.src[s+i], p, ep) {
		ms.step()
		i++
	}
	for ; i >= 0; i-- { // try with the most repetitions first
		if res := ms.match(s+i, ep+1); res >= 0 {
			return res
		}
	}
	return -1
}

func (ms *matchState) minExpand(s, p, ep int) int {
	for {
		if res := ms.match(s, ep+1); res >= 0 {
			return res
		}
		if s < len(ms.src) && ms.singleMatch(ms.src[s], p, ep) {
			s++
		} else {
			return -1
		}
	}
}

func (ms *matchState) startCapture(s, p, what int) int {
	level := ms.level
	if level >= maxCaptures {
		ms.fail("too many captures")
	}
	ms.cap[level].init, ms.cap[level].len = s, what
	ms.level = level + 1
	res := ms.match(s, p)
	if res < 0 {
		ms.level--
	}
	return res
}

func (ms *matchState) endCapture(s, p int) int {
	l := ms.captureToClose()
	ms.cap[l].len = s - ms.cap[l].init
	res := ms.match(s, p)
	if res < 0 {
		ms.cap[l].len = capUnfinished
	}
	return res
}

func (ms *matchState) matchCapture(s int, l byte) int {
	n := ms.checkCapture(l)
	if ms.cap[n].len < 0 { // a position capture: C compares (size_t)-2 bytes, never a match
		return -1
	}
	c := ms.src[ms.cap[n].init : ms.cap[n].init+ms.cap[n].len]
	if strings.HasPrefix(ms.src[s:], c) {
		return s + len(c)
	}
	return -1
}

// match is lstrlib.c's match: the end of the match of pat[p:] at src[s:],
// or -1.
func (ms *matchState) match(s, p int) int {
	if ms.depth++; ms.depth > maxMatchDepth {
		ms.fail("pattern too complex")
	}
	res := ms.doMatch(s, p)
	ms.depth--
	return res
}

func (ms *matchState) doMatch(s, p int) int {
	for {
		ms.step()
		switch ms.p(p) {
		case '(':
			if ms.p(p+1) == ')' {
				return ms.startCapture(s, p+2, capPosition)
			}
			return ms.startCapture(s, p+1, capUnfinished)
		case ')':
			return ms.endCapture(s, p+1)
		case 0: // end of pattern (a NUL ends it, as in C)
			return s
		case '$':
			if ms.p(p+1) == 0 {
				if s == len(ms.src) {
					return s
				}
				return -1
			}
		case '%':
			switch ms.p(p + 1) {
			case 'b':
				if s = ms.matchBalance(s, p+2); s < 0 {
					return -1
				}
				p += 4
				continue
			case 'f':
				p += 2
				if ms.p(p) != '[' {
					ms.fail("missing '[' after '%f' in pattern")
				}
				ep := ms.classEnd(p)
				var prev byte
				if s > 0 {
					prev = ms.src[s-1]
				}
				if ms.matchBracketClass(prev, p, ep-1) || !ms.matchBracketClass(ms.s(s), p, ep-1) {
					return -1
				}
				p = ep
				continue
			default:
				if isdigit(ms.p(p + 1)) {
					if s = ms.matchCapture(s, ms.p(p+1)); s < 0 {
						return -1
					}
					p += 2
					continue
				}
			}
		}
		// a single character class, perhaps with a repetition
		ep := ms.classEnd(p)
		m := s < len(ms.src) && ms.singleMatch(ms.src[s], p, ep)
		switch ms.p(ep) {
		case '?':
			if m {
				if res := ms.match(s+1, ep+1); res >= 0 {
					return res
				}
			}
			p = ep + 1
		case '*':
			return ms.maxExpand(s, p, ep)
		case '+':
			if !m {
				return -1
			}
			return ms.maxExpand(s+1, p, ep)
		case '-':
			return ms.minExpand(s, p, ep)
		default:
			if !m {
				return -1
			}
			s++
			p = ep
		}
	}
}

// find tries the pattern at every position from init (only init when the
// pattern is anchored) and returns the start and end of the first match, or
// -1, -1. The captures stay in ms.
func (ms *matchState) find(init int) (start, end int) {
	if ms.p(0) == '^' {
		return ms.findFrom(init, 1, true)
	}
	return ms.findFrom(init, 0, false)
}

// findFrom is find for the pattern from p, anchored at init or not. A
// pattern that is one single-character class, alone or followed by '+' or
// '*' ("%a+", "[^,]+", "%s*", "."), is matched by a linear scan: the first
// match at each position is the longest run of the class there, which is
// what the recursive matcher finds too.
func (ms *matchState) findFrom(init, p int, anchor bool) (start, end int) {
	if !anchor {
		if ep, rep, ok := ms.classRun(p); ok {
			return ms.scanClass(init, p, ep, rep)
		}
	}
	return ms.tryEach(init, p, anchor)
}

// tryEach is findFrom by the recursive matcher alone: a match tried at
// init, then (unless anchored) at every position after it.
func (ms *matchState) tryEach(init, p int, anchor bool) (start, end int) {
	for s := init; ; s++ {
		ms.level = 0
		ms.depth = 0
		if e := ms.match(s, p); e >= 0 {
			return s, e
		}
		if anchor || s >= len(ms.src) {
			return -1, -1
		}
	}
}

// classRun reports whether the pattern from p is one single-character
// class (from p to ep) ending the pattern, or followed by rep, '+' or '*',
// that ends it.
func (ms *matchState) classRun(p int) (ep int, rep byte, ok bool) {
	switch ms.p(p) {
	case 0, '(', ')':
		return 0, 0, false
	case '%':
		if d := ms.p(p + 1); d == 'b' || d == 'f' || isdigit(d) {
			return 0, 0, false
		}
	case '$':
		if p+1 == len(ms.pat) { // "$" alone anchors at the end
			return 0, 0, false
		}
	}
	ep = ms.classEnd(p)
	switch {
	case ep == len(ms.pat):
		return ep, 0, true
	case ep+1 == len(ms.pat) && (ms.pat[ep] == '+' || ms.pat[ep] == '*'):
		return ep, ms.pat[ep], true
	}
	return 0, 0, false
}

// scanClass is findFrom for a class run (classRun): the first position
// from init where the class matches and the end of its run there. With
// '*' the match is at init, perhaps empty; alone the class matches one
// character.
func (ms *matchState) scanClass(init, p, ep int, rep byte) (start, end int) {
	ms.level, ms.depth = 0, 0
	src := ms.src
	set := ms.classSet(p, ep, len(src)-init)
	s := init
	if rep != '*' {
		for s < len(src) && !ms.inClass(src[s], p, ep, set) {
			ms.step()
			s++
		}
		if s >= len(src) {
			return -1, -1
		}
		if rep == 0 {
			return s, s + 1
		}
	}
	e := s
	for e < len(src) && ms.inClass(src[e], p, ep, set) {
		ms.step()
		e++
	}
	return s, e
}

// classSetMin is the length of subject over which scanClass first tables
// a class's 256 answers rather than working each one out.
const classSetMin = 256

// classSet returns the class of the pattern from p to ep as a set of
// bytes, or nil when scanning n bytes is not worth making one. The set
// stays with ms, for as long as it matches the same pattern (a gmatch
// loop, a find loop).
func (ms *matchState) classSet(p, ep, n int) *byteSet {
	if ms.setOf == ms.pat && ms.setAt == p && ms.pat != "" {
		return &ms.set
	}
	if n < classSetMin {
		return nil
	}
	ms.set = byteSet{}
	for c := range 256 {
		if ms.singleMatch(byte(c), p, ep) {
			ms.set[c>>6] |= 1 << (c & 63)
		}
	}
	ms.setOf, ms.setAt = ms.pat, p
	return &ms.set
}

// inClass is singleMatch, from set when there is one.
func (ms *matchState) inClass(c byte, p, ep int, set *byteSet) bool {
	if set != nil {
		return set[c>>6]&(1<<(c&63)) != 0
	}
	return ms.singleMatch(c, p, ep)
}

// byteSet is a set of bytes, a bit each.
type byteSet [4]uint64

// capture returns capture i of the match src[s:e]: a string, or a position
// (1-based) when pos is true. Capture 0 without captures is the whole match.
func (ms *matchState) capture(i, s, e int) (str string, pos int, isPos bool) {
	if i >= ms.level {
		if i != 0 {
			ms.fail("invalid capture index")
		}
		return ms.src[s:e], 0, false
	}
	c := ms.cap[i]
	switch c.len {
	case capUnfinished:
		ms.fail("unfinished capture")
	case capPosition:
		return "", c.init + 1, true
	}
	return ms.src[c.init : c.init+c.len], 0, false
}

// captures is how many values a match pushes: its captures, or the whole
// match when it has none (and wholeMatch is set).
func (ms *matchState) captures(wholeMatch bool) int {
	if ms.level == 0 && wholeMatch {
		return 1
	}
	return ms.level
}
