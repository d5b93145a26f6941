package engine

import (
	"fmt"
	"strings"
)

// Markdown renders the catalog as the reference tables of docs/callbacks.md:
// per category, each callback's Lua signature, how several modules combine,
// and what a module's error does.
func (c *Catalog) Markdown() string {
	var b strings.Builder
	for _, cat := range c.categories {
		fmt.Fprintf(&b, "### %s\n\n`api.register_%s_callbacks{...}`", cat.Name, cat.Name)
		switch {
		case cat.BothOrNeither:
			b.WriteString(": register all of them or none.")
		case cat.FirstModuleOnly:
			b.WriteString(": only the first module that registers is used; later ones are ignored with a warning.")
		}
		b.WriteString("\n\n| callback | Lua signature | several modules | on error |\n|---|---|---|---|\n")
		for _, cb := range cat.Callbacks {
			sig := fmt.Sprintf("`function(%s)`", strings.Join(cb.Args, ", "))
			if cb.Keyed {
				sig = fmt.Sprintf("`{[login_type] = {fields = {...}, check = function(%s)}}`", strings.Join(cb.Args, ", "))
			}
			rule := cb.Combine.Name
			if cb.SingleSlot {
				rule += "; one module only (a second is a load error)"
			}
			if cb.Mutates > 0 {
				rule += fmt.Sprintf("; changes to `%s` pass to the next module and are the result", cb.Args[cb.Mutates-1])
			}
			if cb.Then != "" {
				rule += fmt.Sprintf("; when the result is NOT_SPAM, `%s` runs and gives the answer", cb.Then)
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", cb.Name, sig, rule, policyDoc[cb.OnError])
		}
		b.WriteString("\n")
	}
	return b.String()
}

var policyDoc = map[Policy]string{
	Propagate:  "propagates: the call fails",
	FailOpen:   "logged; the module is skipped",
	FailClosed: "the call fails (an error table passes through as is)",
	Forbid:     "the call fails; a plain error becomes 403 M_UNKNOWN",
}
