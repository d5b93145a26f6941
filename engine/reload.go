package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"luamods/luaapi"
)

// ReloadReport says what a reload changed.
type ReloadReport struct {
	Generation uint64
	Unchanged  bool // the config and every script were the same: nothing was done
	Added      []string
	Changed    []string
	Removed    []string
	Kept       []string
	Routes     Diff
	Callbacks  Diff
	Took       time.Duration
}

// Diff lists names that appeared and disappeared.
type Diff struct {
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
}

// String is the report in one line.
func (r *ReloadReport) String() string {
	if r.Unchanged {
		return "nothing changed"
	}
	f := func(s []string) string {
		if len(s) == 0 {
			return "-"
		}
		return strings.Join(s, ",")
	}
	return fmt.Sprintf("generation %d: modules added %s, changed %s, removed %s, unchanged %s; routes +%s -%s; callbacks +%s -%s; took %s",
		r.Generation, f(r.Added), f(r.Changed), f(r.Removed), f(r.Kept), f(r.Routes.Added), f(r.Routes.Removed),
		f(r.Callbacks.Added), f(r.Callbacks.Removed), r.Took.Round(time.Microsecond))
}

// Reload reads the configuration and every script again, builds the next
// generation aside (compile, states, parse_config, init, registrations),
// and swaps it in. Calls running on the old generation finish there; then
// its background calls stop and its states close. On any failure the old
// generation keeps serving and the error says what failed. Reloads are
// serialised.
func (e *Engine) Reload(ctx context.Context) (*ReloadReport, error) {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	if e.closed {
		return nil, errClosed
	}
	start := time.Now()
	old := e.current.Load()
	cfg, err := e.loadConfig()
	if err != nil {
		e.metrics.Reloads.WithLabelValues("failed").Inc()
		return nil, err
	}
	if e.unchanged(old, cfg) {
		e.metrics.Reloads.WithLabelValues("unchanged").Inc()
		return &ReloadReport{Generation: old.ID, Unchanged: true, Took: time.Since(start)}, nil
	}
	e.warn(cfg)
	data, err := e.openData(ctx, cfg)
	if err != nil {
		e.metrics.Reloads.WithLabelValues("failed").Inc()
		return nil, err
	}
	next, err := e.build(ctx, cfg, old, data)
	if err != nil {
		e.closeUnused(data)
		e.metrics.Reloads.WithLabelValues("failed").Inc()
		return nil, err
	}
	// The Redis settings change only with a generation that loaded: a
	// failed reload leaves everything as it was.
	if err := e.caches.Configure(redisOptions(cfg.Redis)); err != nil {
		next.close()
		e.closeUnused(data)
		if rerr := e.caches.Configure(redisOptions(old.Config.Redis)); rerr != nil {
			e.log.Error("restoring the previous Redis settings failed", "error", rerr.Error())
		}
		e.metrics.Reloads.WithLabelValues("failed").Inc()
		return nil, err
	}
	releaseData := e.adoptData(data, next)
	e.current.Store(next)
	e.metrics.generation.Set(float64(next.ID))
	report := diffGenerations(old, next)
	report.Took = time.Since(start)
	go func() {
		old.retire()
		releaseData() // the previous database, once no call of old uses it
		// Under the reload lock, so that no build is creating caches meanwhile.
		e.reloadMu.Lock()
		defer e.reloadMu.Unlock()
		if e.closed {
			return
		}
		keep := map[string]bool{}
		for _, m := range e.current.Load().Modules {
			keep[m.identity] = true
		}
		e.caches.Retain(keep)
	}()
	e.metrics.Reloads.WithLabelValues("ok").Inc()
	e.log.Info("reloaded", "generation", next.ID, "added", report.Added, "changed", report.Changed,
		"removed", report.Removed, "unchanged", report.Kept, "routes_added", report.Routes.Added,
		"routes_removed", report.Routes.Removed, "callbacks_added", report.Callbacks.Added,
		"callbacks_removed", report.Callbacks.Removed, "took", report.Took.String())
	return report, nil
}

// unchanged reports whether cfg and every script match the old generation.
func (e *Engine) unchanged(old *Generation, cfg *Config) bool {
	if !bytes.Equal(old.Config.raw, cfg.raw) || !sameSecrets(old.Config, cfg) || len(old.Modules) != len(cfg.Modules) || e.homeserverStale(cfg) {
		return false
	}
	for i, m := range old.Modules {
		if !e.sameModule(m, cfg.Modules[i]) {
			return false
		}
	}
	return true
}

func diffGenerations(old, next *Generation) *ReloadReport {
	r := &ReloadReport{Generation: next.ID}
	oldMods := map[string]*Module{}
	for _, m := range old.Modules {
		oldMods[m.Name] = m
	}
	seen := map[string]bool{}
	for _, m := range next.Modules {
		seen[m.Name] = true
		switch o, ok := oldMods[m.Name]; {
		case !ok:
			r.Added = append(r.Added, m.Name)
		case o != m:
			r.Changed = append(r.Changed, m.Name)
		default:
			r.Kept = append(r.Kept, m.Name)
		}
	}
	for _, m := range old.Modules {
		if !seen[m.Name] {
			r.Removed = append(r.Removed, m.Name)
		}
	}
	r.Routes = diffNames(old.sortedPaths(), next.sortedPaths())
	r.Callbacks = diffNames(old.CallbackNames(), next.CallbackNames())
	return r
}

func diffNames(before, after []string) Diff {
	in := func(list []string) map[string]bool {
		m := map[string]bool{}
		for _, s := range list {
			m[s] = true
		}
		return m
	}
	b, a := in(before), in(after)
	var d Diff
	for _, s := range after {
		if !b[s] {
			d.Added = append(d.Added, s)
		}
	}
	for _, s := range before {
		if !a[s] {
			d.Removed = append(d.Removed, s)
		}
	}
	sort.Strings(d.Added)
	sort.Strings(d.Removed)
	return d
}

// Stale reports whether the configuration file or a script differs from
// what the current generation loaded (module files and the files they
// required). `luamods serve --watch` polls it.
func (e *Engine) Stale() bool {
	gen := e.current.Load()
	if e.opts.ConfigPath != "" && luaapi.FileHash(e.opts.ConfigPath) != luaapi.ContentHash(gen.Config.raw) {
		return true
	}
	for _, m := range gen.Modules {
		if luaapi.FileHash(m.File) != m.Hash || !m.deps.unchanged() {
			return true
		}
	}
	return false
}

// Fingerprint summarises the current content of the configuration file and
// of every script the current generation loaded; with Stale it tells one
// change from the next.
func (e *Engine) Fingerprint() string {
	gen := e.current.Load()
	h := sha256.New()
	if e.opts.ConfigPath != "" {
		fmt.Fprintf(h, "%s=%s\n", e.opts.ConfigPath, luaapi.FileHash(e.opts.ConfigPath))
	}
	for _, m := range gen.Modules {
		fmt.Fprintf(h, "%s=%s\n", m.File, luaapi.FileHash(m.File))
		m.deps.mu.Lock()
		paths := make([]string, 0, len(m.deps.files))
		for p := range m.deps.files {
			paths = append(paths, p)
		}
		m.deps.mu.Unlock()
		sort.Strings(paths)
		for _, p := range paths {
			fmt.Fprintf(h, "%s=%s\n", p, luaapi.FileHash(p))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
