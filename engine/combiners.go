package engine

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"

	"luamods/luaapi"
)

// errcodeGrammar matches Matrix errcodes (M_FORBIDDEN,
// ORG_MATRIX_EXPIRED_ACCOUNT): how luamods tells a Codes value from text.
var errcodeGrammar = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$`)

// IsErrcode reports whether s is a Matrix errcode (NOT_SPAM is not).
func IsErrcode(s string) bool { return s != luaapi.NotSpam && errcodeGrammar.MatchString(s) }

const forbidden = "M_FORBIDDEN"

func deny(code string) luaapi.Tuple { return luaapi.Tuple{code, map[string]any{}} }

func first(ret []any) any {
	if len(ret) == 0 {
		return nil
	}
	return ret[0]
}

// codeTuple recognises (errcode) and (errcode, {extra}) returns.
func codeTuple(ret []any) (luaapi.Tuple, bool) {
	code, ok := first(ret).(string)
	if !ok || !IsErrcode(code) {
		return nil, false
	}
	if len(ret) >= 2 {
		if extra, ok := ret[1].(map[string]any); ok {
			return luaapi.Tuple{code, extra}, true
		}
		if arr, ok := ret[1].([]any); ok && len(arr) == 0 {
			return deny(code), true
		}
		if ret[1] != nil {
			return nil, false
		}
	}
	return deny(code), true
}

func truthy(v any) bool { return v != nil && v != false }

func isNotSpam(v any) bool { s, ok := v.(string); return ok && s == luaapi.NotSpam }

func constant(v any) func() any { return func() any { return v } }

// spamPolicy is how one spam-checker rule reads a module's return value.
// NOT_SPAM always allows; what else allows, denies or is invalid differs by
// callback (synapse-modules.md §3.1).
type spamPolicy struct {
	allow    any  // the boolean that allows too (true or false), or nil
	deny     any  // the boolean that denies with M_FORBIDDEN, or nil
	extras   bool // (errcode, {extra}) is a denial with those fields
	messages bool // another string is a denial with that message (deprecated)
	invalid  any  // the result for any other value (logged as a warning)
	codeOnly bool // only a bare errcode denies with itself (rule D)
}

// spamRule builds the short-circuit combiner of a spam-checker rule: an
// allowing value lets the next module run; anything else stops the chain.
func spamRule(name string, p spamPolicy) Combiner {
	return Combiner{Name: name, Start: constant(luaapi.NotSpam),
		Step: func(acc any, ret []any, warn func(string)) (any, bool, error) {
			r := first(ret)
			switch {
			case isNotSpam(r) || (p.allow != nil && r == p.allow):
				return acc, false, nil
			case p.deny != nil && r == p.deny:
				return deny(forbidden), true, nil
			}
			if s, ok := r.(string); ok && p.codeOnly && IsErrcode(s) && len(ret) < 2 {
				return deny(s), true, nil
			}
			if t, ok := codeTuple(ret); ok && p.extras {
				return t, true, nil
			}
			if s, ok := r.(string); ok && p.messages {
				return s, true, nil
			}
			warn(invalidSpam)
			return p.invalid, true, nil
		}}
}

const (
	invalidSpam  = "returned an invalid value, rejecting as spam"
	probableSpam = "This message has been rejected as probable spam"
)

var (
	// ruleA is the user_may_* family: true allows and false denies (Synapse's
	// code and tests; its docs say the opposite).
	ruleA = spamRule("rule A: first denial wins (true/NOT_SPAM allow, false/errcode/(errcode, {…}) deny)",
		spamPolicy{allow: true, deny: false, extras: true, invalid: deny(forbidden)})
	// ruleB is check_event_for_spam: false allows, true denies, another
	// string is the message.
	ruleB = spamRule("rule B: first denial wins (false/NOT_SPAM allow; true, errcode, (errcode, {…}) or a message deny)",
		spamPolicy{allow: false, deny: true, extras: true, messages: true, invalid: probableSpam})
	// ruleC is check_media_file_for_spam: like B, but any other value denies.
	ruleC = spamRule("rule C: first denial wins (false/NOT_SPAM allow; anything else denies)",
		spamPolicy{allow: false, deny: true, extras: true, invalid: deny(forbidden)})
	// ruleD is user_may_send_state_event: only NOT_SPAM allows; a bare
	// errcode denies with itself; booleans and tuples are invalid.
	ruleD = spamRule("rule D: only NOT_SPAM allows",
		spamPolicy{codeOnly: true, invalid: deny(forbidden)})
	// ruleE is check_login_for_spam: only NOT_SPAM allows.
	ruleE = spamRule("rule E: only NOT_SPAM allows; errcode or (errcode, {…}) deny",
		spamPolicy{extras: true, invalid: deny(forbidden)})
)

// ruleF: the first truthy value stops and is the answer; default false.
var ruleF = Combiner{Name: "rule F: first truthy value wins; default false", Start: constant(false),
	Step: func(acc any, ret []any, _ func(string)) (any, bool, error) {
		if r := first(ret); truthy(r) {
			return r, true, nil
		}
		return acc, false, nil
	}}

// ruleG is check_registration_for_spam: "allow" continues; the first
// "shadow_ban" or "deny" wins; anything else is an error.
var ruleG = Combiner{Name: `rule G: first non-"allow" wins; default "allow"`, Start: constant("allow"),
	Step: func(acc any, ret []any, _ func(string)) (any, bool, error) {
		switch r := first(ret); r {
		case "allow":
			return acc, false, nil
		case "shadow_ban", "deny":
			return r, true, nil
		default:
			return nil, true, fmt.Errorf(`must return "allow", "shadow_ban" or "deny" (api.RegistrationBehaviour), not %s`, describe(r))
		}
	}}

// firstFalse: the first false denies (returns false); default true.
// Non-booleans are skipped with a warning when strict.
func firstFalse(strict bool) Combiner {
	return Combiner{Name: "first false wins; default true", Start: constant(true),
		Step: func(acc any, ret []any, warn func(string)) (any, bool, error) {
			switch r := first(ret); r {
			case false:
				return false, true, nil
			case true:
			default:
				if strict {
					warn("returned a non-boolean, ignored")
				}
			}
			return acc, false, nil
		}}
}

// firstFalsy: the first falsy value wins (false); default true.
var firstFalsy = Combiner{Name: "first falsy value wins; default true", Start: constant(true),
	Step: func(acc any, ret []any, _ func(string)) (any, bool, error) {
		if !truthy(first(ret)) {
			return false, true, nil
		}
		return acc, false, nil
	}}

// checkEventAllowed stops at the first (false, …) or (true, replacement).
var checkEventAllowed = Combiner{Name: "first denial or replacement event wins; default (true, nil)", Start: func() any { return luaapi.Tuple{true, nil} },
	Step: func(acc any, ret []any, _ func(string)) (any, bool, error) {
		if first(ret) == false {
			return luaapi.Tuple{false, nil}, true, nil
		}
		if len(ret) >= 2 {
			if ev, ok := ret[1].(map[string]any); ok {
				return luaapi.Tuple{true, ev}, true, nil
			}
		}
		return acc, false, nil
	}}

// authTuple: the first valid (user_id[, on_login]) wins; invalid results
// are skipped with a warning.
var authTuple = Combiner{Name: "first (user_id, on_login) wins; default nil", Start: constant(nil),
	Step: func(acc any, ret []any, warn func(string)) (any, bool, error) {
		r := first(ret)
		if r == nil {
			return acc, false, nil
		}
		if id, ok := r.(string); ok {
			// A table as the second value is the user's profile, for the REST
			// password provider; an on_login function stays in Lua (nil here).
			if len(ret) >= 2 {
				if profile, ok := ret[1].(map[string]any); ok {
					return luaapi.Tuple{id, profile}, true, nil
				}
			}
			return luaapi.Tuple{id, nil}, true, nil
		}
		warn("returned an invalid value (expected user_id string), ignored")
		return acc, false, nil
	}}

// presenceUsersForStates merges user_id → list of states, per key unioned.
var presenceUsersForStates = Combiner{Name: "every module runs; sets merged per user", Start: func() any { return map[string]any{} },
	Step: func(acc any, ret []any, warn func(string)) (any, bool, error) {
		merged := acc.(map[string]any)
		m, ok := first(ret).(map[string]any)
		if !ok {
			if arr, isArr := first(ret).([]any); !(isArr && len(arr) == 0) {
				warn("returned a non-table, ignored")
			}
			return merged, false, nil
		}
		for _, user := range sortedMapKeys(m) {
			states, ok := m[user].([]any)
			if !ok {
				warn("returned a non-list value for " + user + ", ignoring its remaining entries")
				break
			}
			existing, _ := merged[user].([]any)
			merged[user] = union(existing, states)
		}
		return merged, false, nil
	}}

// presenceInterested unions sets of user IDs and stops on "ALL".
var presenceInterested = Combiner{Name: `union of sets; "ALL" wins at once`, Start: func() any { return []any{} },
	Step: func(acc any, ret []any, warn func(string)) (any, bool, error) {
		switch r := first(ret).(type) {
		case string:
			if r == luaapi.PresenceAllUsers {
				return r, true, nil
			}
		case []any:
			return union(acc.([]any), r), false, nil
		case map[string]any:
			if len(r) == 0 {
				return acc, false, nil
			}
		}
		warn("returned neither a list of user IDs nor \"ALL\", ignored")
		return acc, false, nil
	}}

// uploadLimits: the first non-nil list wins, sorted by time_period_ms
// descending (as Synapse sorts it).
var uploadLimits = Combiner{Name: "first non-nil list wins (an empty list too)", Start: constant(nil),
	Step: func(acc any, ret []any, _ func(string)) (any, bool, error) {
		r := first(ret)
		switch x := r.(type) {
		case nil:
			return acc, false, nil
		case map[string]any:
			if len(x) == 0 {
				return []any{}, true, nil
			}
		case []any:
			sorted := append([]any(nil), x...)
			sort.SliceStable(sorted, func(i, j int) bool { return period(sorted[i]) > period(sorted[j]) })
			return sorted, true, nil
		}
		return r, true, nil
	}}

func period(v any) float64 {
	m, _ := v.(map[string]any)
	switch p := m["time_period_ms"].(type) {
	case int64:
		return float64(p)
	case float64:
		return p
	}
	return 0
}

func union(a, b []any) []any {
	seen := make(map[string]bool, len(a)+len(b))
	out := make([]any, 0, len(a)+len(b))
	for _, list := range [][]any{a, b} {
		for _, v := range list {
			k := canonical(v)
			if !seen[k] {
				seen[k] = true
				out = append(out, v)
			}
		}
	}
	return out
}

func canonical(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func describe(v any) string {
	if v == nil {
		return "nil"
	}
	return fmt.Sprintf("%s (%T)", canonical(v), v)
}

func sortedMapKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// The general combiners: Synapse's table uses them, and a host builds its
// own categories (Catalog.Add) with them.

// RunAll: every module runs; results are ignored; the result is nil.
func RunAll() Combiner {
	return Combiner{Name: "every module runs; results ignored", Start: constant(nil),
		Step: func(acc any, _ []any, _ func(string)) (any, bool, error) { return acc, false, nil }}
}

// FirstFalse: the first false wins (false); default true.
func FirstFalse() Combiner { return firstFalse(false) }

// FirstNonNil: the first non-nil value wins, false too; default nil.
func FirstNonNil() Combiner {
	return Combiner{Name: "first non-nil wins (false too); default nil", Start: constant(nil),
		Step: func(acc any, ret []any, _ func(string)) (any, bool, error) {
			if r := first(ret); r != nil {
				return r, true, nil
			}
			return acc, false, nil
		}}
}

// FirstTruthy: the first truthy value wins ({} falls through); default nil.
func FirstTruthy() Combiner {
	return Combiner{Name: "first truthy value wins ({} falls through); default nil", Start: constant(nil),
		Step: func(acc any, ret []any, _ func(string)) (any, bool, error) {
			r := first(ret)
			if m, ok := r.(map[string]any); ok && len(m) == 0 {
				return acc, false, nil
			}
			if truthy(r) {
				return r, true, nil
			}
			return acc, false, nil
		}}
}

// FirstString: the first string wins; other values are skipped with a warning.
func FirstString() Combiner {
	return Combiner{Name: "first string wins; default nil", Start: constant(nil),
		Step: func(acc any, ret []any, warn func(string)) (any, bool, error) {
			switch r := first(ret).(type) {
			case string:
				return r, true, nil
			case nil:
			default:
				warn("returned a non-string, ignored")
			}
			return acc, false, nil
		}}
}

// MergeTables: every module runs; the tables are merged, the last module
// winning per key.
func MergeTables() Combiner {
	return Combiner{Name: "every module runs; tables merged, last wins per key", Start: func() any { return map[string]any{} },
		Step: func(acc any, ret []any, warn func(string)) (any, bool, error) {
			merged := acc.(map[string]any)
			switch r := first(ret).(type) {
			case map[string]any:
				for k, v := range r {
					merged[k] = v
				}
			case nil, []any:
			default:
				return nil, true, fmt.Errorf("must return a table, not %s", describe(r))
			}
			return merged, false, nil
		}}
}

// SingleValue: the first module's result (for single-slot callbacks).
func SingleValue() Combiner {
	return Combiner{Name: "single module; its result", Start: constant(nil),
		Step: func(_ any, ret []any, _ func(string)) (any, bool, error) {
			if len(ret) > 1 {
				return luaapi.Tuple(ret), true, nil
			}
			return first(ret), true, nil
		}}
}
