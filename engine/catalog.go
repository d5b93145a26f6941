package engine

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"

	"luamods/luaapi"
)

// Policy is what a module's error does to an invocation (synapse-modules.md
// §3, "On exception").
type Policy int

const (
	// Propagate ends the invocation; the error reaches the caller.
	Propagate Policy = iota
	// FailOpen logs a warning and goes on with the next module.
	FailOpen
	// FailClosed ends the invocation with a *ModuleFailedError, except an
	// error table ({status=, errcode=}), which passes through as Synapse's
	// SynapseError does (check_event_allowed).
	FailClosed
	// Forbid ends the invocation; an error table passes through and any
	// other error becomes a 403 M_UNKNOWN (on_create_room).
	Forbid
)

// String names the policy.
func (p Policy) String() string {
	return [...]string{"propagate", "fail-open", "fail-closed", "forbid"}[p]
}

// Combiner folds the results of the modules' callbacks, called in modules:
// order, into the invocation's result.
type Combiner struct {
	// Name describes the rule, for docs and `luamods call` errors.
	Name string
	// Start returns the result when no module decides otherwise.
	Start func() any
	// Step takes the accumulated result and one module's return values and
	// returns the next result and whether to stop. warn logs a warning
	// naming the module.
	Step func(acc any, ret []any, warn func(string)) (next any, stop bool, err error)
}

// Callback describes one callback of the catalog.
type Callback struct {
	Category string
	Name     string
	Args     []string // argument names, for docs and `luamods call`
	Combine  Combiner
	OnError  Policy
	// SingleSlot: only one module may register it; a second is a load error.
	SingleSlot bool
	// Keyed: registered as a table keyed by login type (auth_checkers).
	Keyed bool
	// Mutates is the 1-based index of an argument modules may change in
	// place (on_create_room's request_content): each module sees the
	// previous one's changes, and the final value is the result.
	Mutates int
}

// FullName is "category.name", as Invoke takes it.
func (c *Callback) FullName() string { return c.Category + "." + c.Name }

// Category is a group of callbacks registered with one
// api.register_<name>_callbacks call.
type Category struct {
	Name      string
	Callbacks []*Callback
	// BothOrNeither: a registration must give all callbacks or none
	// (presence router).
	BothOrNeither bool
	// FirstModuleOnly: only the first module's registration is used; later
	// ones are ignored with a warning (background update controller).
	FirstModuleOnly bool
}

// Catalog is the set of callback categories an engine dispatches. The
// default is Synapse's; a host adds its own categories with Add.
type Catalog struct {
	categories []*Category
	callbacks  map[string]*Callback
}

// NewCatalog returns Synapse's ten categories.
func NewCatalog() *Catalog {
	c := &Catalog{callbacks: map[string]*Callback{}}
	for _, cat := range synapseCategories() {
		if err := c.Add(cat); err != nil {
			panic(err)
		}
	}
	return c
}

// Add adds a category. Its callbacks' Category fields are set from it.
func (c *Catalog) Add(cat *Category) error {
	for _, existing := range c.categories {
		if existing.Name == cat.Name {
			return fmt.Errorf("engine: category %q already exists", cat.Name)
		}
	}
	for _, cb := range cat.Callbacks {
		cb.Category = cat.Name
		if cb.Combine.Step == nil || cb.Combine.Start == nil {
			return fmt.Errorf("engine: callback %s has no combiner", cb.FullName())
		}
		c.callbacks[cb.FullName()] = cb
	}
	c.categories = append(c.categories, cat)
	return nil
}

// Categories lists the category names in catalog order.
func (c *Catalog) Categories() []string {
	out := make([]string, len(c.categories))
	for i, cat := range c.categories {
		out[i] = cat.Name
	}
	return out
}

// Category returns a category by name.
func (c *Catalog) Category(name string) *Category {
	for _, cat := range c.categories {
		if cat.Name == name {
			return cat
		}
	}
	return nil
}

// Lookup returns the callback "category.name".
func (c *Catalog) Lookup(fullName string) (*Callback, bool) {
	cb, ok := c.callbacks[fullName]
	return cb, ok
}

// All returns every callback in catalog order.
func (c *Catalog) All() []*Callback {
	var out []*Callback
	for _, cat := range c.categories {
		out = append(out, cat.Callbacks...)
	}
	return out
}

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

// runAll calls every module and ignores what they return.
var runAll = Combiner{Name: "every module runs; results ignored", Start: constant(nil),
	Step: func(acc any, _ []any, _ func(string)) (any, bool, error) { return acc, false, nil }}

// firstNonNil: the first value that is not nil wins (false too).
var firstNonNil = Combiner{Name: "first non-nil wins (false too); default nil", Start: constant(nil),
	Step: func(acc any, ret []any, _ func(string)) (any, bool, error) {
		if r := first(ret); r != nil {
			return r, true, nil
		}
		return acc, false, nil
	}}

// firstTruthy: the first truthy value wins; nil, false and {} fall through.
var firstTruthy = Combiner{Name: "first truthy value wins ({} falls through); default nil", Start: constant(nil),
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

// firstString: the first string wins; other non-nil values are skipped
// with a warning.
var firstString = Combiner{Name: "first string wins; default nil", Start: constant(nil),
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

// mergeDicts dict-updates the results in order: the last module wins per key.
var mergeDicts = Combiner{Name: "every module runs; tables merged, last wins per key", Start: func() any { return map[string]any{} },
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

// singleValue: the only registered module's result.
var singleValue = Combiner{Name: "single module; its result", Start: constant(nil),
	Step: func(_ any, ret []any, _ func(string)) (any, bool, error) {
		if len(ret) > 1 {
			return luaapi.Tuple(ret), true, nil
		}
		return first(ret), true, nil
	}}

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

func cb(name string, args []string, c Combiner, p Policy) *Callback {
	return &Callback{Name: name, Args: args, Combine: c, OnError: p}
}

// synapseCategories is Synapse's callback catalog (synapse-modules.md §3,
// code column).
func synapseCategories() []*Category {
	single := func(c *Callback) *Callback { c.SingleSlot = true; return c }
	keyed := func(c *Callback) *Callback { c.Keyed = true; return c }
	mutates := func(arg int, c *Callback) *Callback { c.Mutates = arg; return c }
	return []*Category{
		{Name: "spam_checker", Callbacks: []*Callback{
			cb("check_event_for_spam", []string{"event"}, ruleB, Propagate),
			cb("should_drop_federated_event", []string{"event"}, ruleF, Propagate),
			cb("user_may_join_room", []string{"user_id", "room_id", "is_invited"}, ruleA, Propagate),
			cb("user_may_invite", []string{"inviter", "invitee", "room_id"}, ruleA, Propagate),
			cb("federated_user_may_invite", []string{"event"}, ruleA, Propagate),
			cb("user_may_send_3pid_invite", []string{"inviter", "medium", "address", "room_id"}, ruleA, Propagate),
			cb("user_may_create_room", []string{"user_id", "room_config"}, ruleA, Propagate),
			cb("user_may_create_room_alias", []string{"user_id", "room_alias"}, ruleA, Propagate),
			cb("user_may_publish_room", []string{"user_id", "room_id"}, ruleA, Propagate),
			cb("user_may_send_state_event", []string{"user_id", "room_id", "event_type", "state_key", "content"}, ruleD, Propagate),
			cb("check_username_for_spam", []string{"user_profile", "requester_id"}, ruleF, Propagate),
			cb("check_registration_for_spam", []string{"email_threepid", "username", "request_info", "auth_provider_id"}, ruleG, Propagate),
			cb("check_media_file_for_spam", []string{"file_wrapper", "file_info"}, ruleC, Propagate),
			cb("check_login_for_spam", []string{"user_id", "device_id", "initial_display_name", "request_info", "auth_provider_id"}, ruleE, Propagate),
		}},
		{Name: "third_party_rules", Callbacks: []*Callback{
			cb("check_event_allowed", []string{"event", "state_events"}, checkEventAllowed, FailClosed),
			mutates(2, cb("on_create_room", []string{"requester", "request_content", "is_requester_admin"}, runAll, Forbid)),
			cb("check_threepid_can_be_invited", []string{"medium", "address", "state_events"}, firstFalse(false), FailOpen),
			cb("check_visibility_can_be_modified", []string{"room_id", "state_events", "new_visibility"}, firstFalse(false), FailOpen),
			cb("on_new_event", []string{"event", "state_events"}, runAll, FailOpen),
			cb("check_can_shutdown_room", []string{"user_id", "room_id"}, firstFalse(false), FailOpen),
			cb("check_can_deactivate_user", []string{"user_id", "by_admin"}, firstFalse(false), FailOpen),
			cb("on_profile_update", []string{"user_id", "new_profile", "by_admin", "deactivation"}, runAll, FailOpen),
			cb("on_user_deactivation_status_changed", []string{"user_id", "deactivated", "by_admin"}, runAll, FailOpen),
			cb("on_threepid_bind", []string{"user_id", "medium", "address"}, runAll, FailOpen),
			cb("on_add_user_third_party_identifier", []string{"user_id", "medium", "address"}, runAll, FailOpen),
			cb("on_remove_user_third_party_identifier", []string{"user_id", "medium", "address"}, runAll, FailOpen),
		}},
		{Name: "presence_router", BothOrNeither: true, Callbacks: []*Callback{
			cb("get_users_for_states", []string{"state_updates"}, presenceUsersForStates, FailOpen),
			cb("get_interested_users", []string{"user_id"}, presenceInterested, FailOpen),
		}},
		{Name: "account_validity", Callbacks: []*Callback{
			cb("is_user_expired", []string{"user_id"}, firstNonNil, Propagate),
			cb("on_user_registration", []string{"user_id"}, runAll, Propagate),
			cb("on_user_login", []string{"user_id", "auth_provider_type", "auth_provider_id"}, runAll, Propagate),
			single(cb("on_legacy_send_mail", []string{"user_id"}, singleValue, Propagate)),
			single(cb("on_legacy_renew", []string{"renewal_token"}, singleValue, Propagate)),
			single(cb("on_legacy_admin_request", []string{"request"}, singleValue, Propagate)),
		}},
		{Name: "password_auth_provider", Callbacks: []*Callback{
			keyed(cb("auth_checkers", []string{"username", "login_type", "login_dict"}, authTuple, FailOpen)),
			cb("check_3pid_auth", []string{"medium", "address", "password"}, authTuple, FailOpen),
			cb("on_logged_out", []string{"user_id", "device_id", "access_token"}, runAll, FailOpen),
			cb("get_username_for_registration", []string{"uia_results", "params"}, firstString, Propagate),
			cb("get_displayname_for_registration", []string{"uia_results", "params"}, firstString, Propagate),
			cb("is_3pid_allowed", []string{"medium", "address", "registration"}, firstFalse(true), Propagate),
		}},
		{Name: "background_update_controller", FirstModuleOnly: true, Callbacks: []*Callback{
			cb("on_update", []string{"update_name", "database_name", "one_shot"}, singleValue, Propagate),
			cb("default_batch_size", []string{"update_name", "database_name"}, singleValue, Propagate),
			cb("min_batch_size", []string{"update_name", "database_name"}, singleValue, Propagate),
		}},
		{Name: "account_data", Callbacks: []*Callback{
			cb("on_account_data_updated", []string{"user_id", "room_id", "account_data_type", "content"}, runAll, FailOpen),
		}},
		{Name: "add_extra_fields_to_unsigned_client_event", Callbacks: []*Callback{
			cb("add_field_to_unsigned_callback", []string{"event"}, mergeDicts, Propagate),
		}},
		{Name: "media_repository", Callbacks: []*Callback{
			cb("get_media_config_for_user", []string{"user_id"}, firstTruthy, Propagate),
			cb("is_user_allowed_to_upload_media_of_size", []string{"user_id", "size"}, firstFalsy, Propagate),
			cb("get_media_upload_limits_for_user", []string{"user_id"}, uploadLimits, Propagate),
			cb("on_media_upload_limit_exceeded", []string{"user_id", "limit", "sent_bytes", "attempted_bytes"}, runAll, Propagate),
		}},
		{Name: "ratelimit", Callbacks: []*Callback{
			cb("get_ratelimit_override_for_user", []string{"user_id", "limiter_name"}, firstTruthy, Propagate),
		}},
	}
}

// Combiners for host-defined categories (Catalog.Add). Each returns the
// rule Synapse's catalog uses under the same name.

// RunAll: every module runs; results are ignored; the result is nil.
func RunAll() Combiner { return runAll }

// FirstFalse: the first false wins (false); default true.
func FirstFalse() Combiner { return firstFalse(false) }

// FirstNonNil: the first non-nil value wins, false too; default nil.
func FirstNonNil() Combiner { return firstNonNil }

// FirstTruthy: the first truthy value wins ({} falls through); default nil.
func FirstTruthy() Combiner { return firstTruthy }

// FirstString: the first string wins; other values are skipped with a warning.
func FirstString() Combiner { return firstString }

// MergeTables: every module runs; the tables are merged, the last module
// winning per key.
func MergeTables() Combiner { return mergeDicts }

// SingleValue: the first module's result (for single-slot callbacks).
func SingleValue() Combiner { return singleValue }
