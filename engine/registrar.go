package engine

import (
	"fmt"
	"sort"
	"strings"

	"luamods/cachebridge"
	"luamods/luaapi"
)

// registrar receives one state's registrations during init and checks them
// against the catalog and the generation's route table. Only the first
// state of a module records; the others must register the same names.
type registrar struct {
	engine   *Engine
	gen      *Generation
	module   *Module
	instance int
}

func (r *registrar) RegisterCallbacks(category string, regs []luaapi.CallbackRegistration) error {
	cat := r.engine.catalog.Category(category)
	if cat == nil {
		return fmt.Errorf("unknown callback category %q", category)
	}
	names := map[string]bool{}
	for _, reg := range regs {
		cb, ok := r.engine.catalog.Lookup(category + "." + reg.Name)
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
	if r.instance > 0 {
		return nil
	}
	if cat.FirstModuleOnly {
		for _, cb := range cat.Callbacks {
			if hs := r.gen.hooks[cb.FullName()]; len(hs) > 0 && hs[0].module != r.module {
				r.engine.log.Warn("ignoring a second registration of "+category+" callbacks: only the first module's are used",
					"module", r.module.Name, "first", hs[0].module.Name)
				return nil
			}
		}
	}
	for _, reg := range regs {
		name := category + "." + reg.Name
		cb, _ := r.engine.catalog.Lookup(name)
		if cb.SingleSlot && len(r.gen.hooks[name]) > 0 {
			return fmt.Errorf("tried to register %s twice (module %s already did)", reg.Name, r.gen.hooks[name][0].module.Name)
		}
	}
	for _, reg := range regs {
		name := category + "." + reg.Name
		r.gen.hooks[name] = append(r.gen.hooks[name], hook{module: r.module, reg: reg})
		r.module.Callbacks = append(r.module.Callbacks, reg)
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

func (r *registrar) RegisterWebResource(path string, methods []string, entries map[string]luaapi.Entry, where string) error {
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("path %q must start with /", path)
	}
	if strings.ContainsAny(path, "?#") || strings.Contains(path, "//") {
		return fmt.Errorf("path %q must be a plain path (no ?, # or //)", path)
	}
	for _, p := range reservedPrefixes {
		if path == p || strings.HasPrefix(path, p+"/") || p == path+"/" {
			return fmt.Errorf("path %q is under %s, which belongs to the server", path, p)
		}
	}
	if path == "/" {
		return fmt.Errorf("path %q would shadow every server path", path)
	}
	if r.instance > 0 {
		return nil
	}
	if existing, ok := r.gen.routes[path]; ok {
		r.engine.log.Warn("a module tried to register a web resource for a path another module already serves; the first in modules: wins",
			"path", path, "module", r.module.Name, "serving", existing.Module.Name, "ignored", where, "kept", existing.Where)
		return nil
	}
	sort.Strings(methods)
	r.gen.routes[path] = &Route{Path: path, Module: r.module, Methods: methods, Entries: entries, Where: where}
	r.module.Routes = append(r.module.Routes, path)
	return nil
}

// cacheProvider adapts a module's cachebridge caches to luaapi.
type cacheProvider struct{ caches *cachebridge.ModuleCaches }

func (p cacheProvider) Cache(name string, o luaapi.CacheOptions) (luaapi.MemoCache, error) {
	return p.caches.Cache(name, cachebridge.Options{MaxEntries: o.MaxEntries, TTL: o.TTL})
}
