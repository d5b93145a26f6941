package engine

import (
	"fmt"
	"sort"
	"strings"

	"luamods/cachebridge"
	"luamods/luaapi"
)

// registrar receives one state's registrations during init. It checks them
// against the catalog, records them in the module (so that a reload that
// keeps the module can replay them), and applies them to the generation.
// Only the first state of a module records; the others are only checked.
type registrar struct {
	gen      *Generation
	module   *Module
	instance int
}

func (r *registrar) RegisterCallbacks(category string, regs []luaapi.CallbackRegistration) error {
	if err := r.gen.engine.checkCallbacks(category, regs); err != nil {
		return err
	}
	if r.instance > 0 {
		return nil
	}
	rec := registration{category: category, callbacks: regs}
	if err := r.gen.applyCallbacks(r.module, rec); err != nil {
		return err
	}
	r.module.registers = append(r.module.registers, rec)
	return nil
}

func (r *registrar) RegisterWebResource(path string, methods []string, entries map[string]luaapi.Entry, where string) error {
	if err := checkPath(path); err != nil {
		return err
	}
	if r.instance > 0 {
		return nil
	}
	sort.Strings(methods)
	rec := registration{route: &Route{Path: path, Module: r.module, Methods: methods, entries: entries, Where: where, latency: r.gen.engine.routeLatency(path)}}
	r.gen.applyRoute(rec.route)
	r.module.registers = append(r.module.registers, rec)
	return nil
}

// checkCallbacks applies the catalog's rules to one register call.
func (e *Engine) checkCallbacks(category string, regs []luaapi.CallbackRegistration) error {
	cat := e.catalog.Category(category)
	if cat == nil {
		return fmt.Errorf("unknown callback category %q", category)
	}
	names := map[string]bool{}
	for _, reg := range regs {
		cb, ok := e.catalog.Lookup(category + "." + reg.Name)
		if !ok {
			known := make([]string, len(cat.Callbacks))
			for i, c := range cat.Callbacks {
				known[i] = c.Name
			}
			msg := fmt.Sprintf("unknown callback %q", reg.Name)
			if s := suggest(reg.Name, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			return fmt.Errorf("%s; %s callbacks are: %s", msg, category, strings.Join(known, ", "))
		}
		if cb.Keyed && reg.Key == "" {
			return fmt.Errorf("%s must be a table of login type → {fields = {...}, check = function}", reg.Name)
		}
		if !cb.Keyed && reg.Key != "" {
			return fmt.Errorf("%s must be a function", reg.Name)
		}
		names[reg.Name] = true
	}
	if cat.BothOrNeither && len(names) > 0 && len(names) != len(cat.Callbacks) {
		return fmt.Errorf("%s callbacks must be registered all together or not at all (%s)", category, catalogNames(cat))
	}
	return nil
}

func catalogNames(cat *Category) string {
	names := make([]string, len(cat.Callbacks))
	for i, c := range cat.Callbacks {
		names[i] = c.Name
	}
	return strings.Join(names, " and ")
}

// applyCallbacks adds a register call's callbacks to the hook lists,
// enforcing the rules that depend on other modules: single slots, and
// categories where only the first module counts.
func (g *Generation) applyCallbacks(m *Module, rec registration) error {
	cat := g.engine.catalog.Category(rec.category)
	if cat.FirstModuleOnly {
		for _, cb := range cat.Callbacks {
			if hs := g.hooks[cb.FullName()]; len(hs) > 0 && hs[0].module != m {
				g.engine.log.Warn("ignoring a second registration of "+rec.category+" callbacks: only the first module's are used",
					"module", m.Name, "first", hs[0].module.Name)
				return nil
			}
		}
	}
	for _, reg := range rec.callbacks {
		name := rec.category + "." + reg.Name
		cb, _ := g.engine.catalog.Lookup(name)
		if cb.SingleSlot && len(g.hooks[name]) > 0 {
			return fmt.Errorf("tried to register %s twice (module %s already did)", reg.Name, g.hooks[name][0].module.Name)
		}
	}
	mt := g.engine.metrics
	for _, reg := range rec.callbacks {
		name := rec.category + "." + reg.Name
		g.hooks[name] = append(g.hooks[name], hook{module: m, reg: reg, metrics: hookMetrics{
			calls:    mt.CallbackCalls.WithLabelValues(name, m.Name),
			errors:   mt.CallbackErrors.WithLabelValues(name, m.Name),
			latency:  mt.CallbackLatency.WithLabelValues(name),
			inflight: mt.Inflight.WithLabelValues(m.Name),
		}})
		g.callbacks[m] = append(g.callbacks[m], reg)
	}
	return nil
}

// checkPath refuses paths a module may not serve (design §5).
func checkPath(path string) error {
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("path %q must start with /", path)
	}
	if strings.ContainsAny(path, "?#") || strings.Contains(path, "//") {
		return fmt.Errorf("path %q must be a plain path (no ?, # or //)", path)
	}
	if path == "/" {
		return fmt.Errorf("path %q would shadow every server path", path)
	}
	if cleanPath(path) != path {
		return fmt.Errorf("path %q must be clean (no . or .. segments)", path)
	}
	for _, p := range reservedPrefixes {
		switch {
		case path == p || strings.HasPrefix(path, p+"/"):
			return fmt.Errorf("path %q is under %s, which belongs to the server", path, p)
		case strings.HasPrefix(p, strings.TrimSuffix(path, "/")+"/"):
			return fmt.Errorf("path %q contains %s, which belongs to the server", path, p)
		}
	}
	return nil
}

// applyRoute adds a route; a path already served stays with the first
// module in modules: order, and a warning names both.
func (g *Generation) applyRoute(r *Route) {
	if existing, ok := g.routes[r.Path]; ok {
		g.engine.log.Warn("a module tried to register a web resource for a path another module already serves; the first in modules: wins",
			"path", r.Path, "module", r.Module.Name, "serving", existing.Module.Name, "ignored", r.Where, "kept", existing.Where)
		return
	}
	g.routes[r.Path] = r
	g.served[r.Module] = append(g.served[r.Module], r.Path)
}

// replay applies a carried-over module's recorded registrations.
func (g *Generation) replay(m *Module) error {
	for _, rec := range m.registers {
		if rec.route != nil {
			g.applyRoute(rec.route)
			continue
		}
		if err := g.applyCallbacks(m, rec); err != nil {
			return &ConfigError{File: g.Config.Path, Line: m.Config.Line, Path: []string{"modules", itemName(m.Config.Item)},
				Msg: fmt.Sprintf("module '%s' (unchanged) no longer fits", m.Name), Causes: []string{err.Error()}}
		}
	}
	return nil
}

// cacheProvider adapts a module's cachebridge caches to luaapi.
type cacheProvider struct{ caches *cachebridge.ModuleCaches }

func (p cacheProvider) Cache(name string, o luaapi.CacheOptions) (luaapi.MemoCache, error) {
	return p.caches.Cache(name, cachebridge.Options{MaxEntries: o.MaxEntries, TTL: o.TTL})
}
