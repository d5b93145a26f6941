package engine

import (
	"fmt"

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
	// Then is the "category.name" invoked next when this callback's
	// combined result is NOT_SPAM, its result then being the answer:
	// Synapse runs user_may_invite after federated_user_may_invite allows.
	Then string
	// ThenArgs builds Then's arguments from this callback's.
	ThenArgs func(args []any) []any

	spec luaapi.CallbackSpec // what a call needs, set by Catalog.Add
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
		cb.spec = luaapi.CallbackSpec{Name: cb.FullName(), Args: cb.Args, Mutates: cb.Mutates}
		if cb.Combine.Step == nil || cb.Combine.Start == nil {
			return fmt.Errorf("engine: callback %s has no combiner", cb.FullName())
		}
		if cb.Then != "" && cb.ThenArgs == nil {
			return fmt.Errorf("engine: callback %s has Then but no ThenArgs", cb.FullName())
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
