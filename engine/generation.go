package engine

import (
	"context"
	"fmt"
	"maps"
	pathpkg "path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"luamods/cachebridge"
	"luamods/luaapi"
)

// A Generation is one load of the configuration: its modules with their
// Lua states, the hook lists in modules: order, and the route table. It is
// immutable once built; a reload builds the next one aside and swaps.
type Generation struct {
	ID      uint64
	Config  *Config
	Modules []*Module
	Loaded  time.Time

	engine *Engine
	hooks  map[string][]hook // "category.name" → in modules: order
	routes map[string]*Route // by path
	paths  []string          // route paths, longest first, for prefix matching

	callbacks map[*Module][]luaapi.CallbackRegistration // accepted here, per module
	served    map[*Module][]string                      // paths each module serves here

	mu      sync.Mutex
	holders int
	retired bool
	drained chan struct{}
}

// Module is one loaded entry of modules:. A module whose script and config
// are unchanged is carried into the next generation as it is: its states,
// globals, timers and caches live on.
type Module struct {
	Name   string // the module: string from the config
	File   string
	Hash   string // sha256 of the script
	Config ModuleConfig

	identity  string
	registers []registration                  // what init registered, replayed into each generation
	deps      dependencies                    // files the module required, with their hashes
	states    atomic.Pointer[[]*luaapi.State] // replaced whole when a retired state is rebuilt
	next      atomic.Uint32
	mu        sync.Mutex // serializes rebuilding states and releasing them
	chunk     *luaapi.Chunk
	env       *luaapi.Env
	caches    *cachebridge.ModuleCaches
	data      dataRef      // the database and store api.run_db_interaction and api.store use
	refs      atomic.Int32 // generations using the module
	metrics   *Metrics     // the engine's: refused calls (withState)
}

// registration is one api.register_* call of init, as recorded.
type registration struct {
	category  string // callbacks: the category; "" for a web resource
	callbacks []luaapi.CallbackRegistration
	route     *Route
}

// Route is a web resource registered by a module.
type Route struct {
	Path    string
	Module  *Module
	Methods []string                // nil: any method
	entries map[string]luaapi.Entry // method (or "*") → entry
	Where   string

	latency  prometheus.Observer // the route's latency series
	requests routeRequests       // its request counters
}

// routeRequests are a route's luamods_route_requests_total series by method
// and status, each looked up once: CounterVec.WithLabelValues hashed the
// three labels and took the vector's lock on every request. The map is
// replaced, never changed, when a series is added.
type routeRequests struct {
	m atomic.Pointer[map[methodStatus]prometheus.Counter]
}

type methodStatus struct {
	method string
	status int
}

// maxRouteSeries bounds the series a route keeps at hand: a client may
// send any method, and the rest are looked up on each request.
const maxRouteSeries = 32

// counter returns the series of path, method and status in vec.
func (rr *routeRequests) counter(vec *prometheus.CounterVec, path, method string, status int) prometheus.Counter {
	key := methodStatus{method, status}
	old := rr.m.Load()
	var known map[methodStatus]prometheus.Counter
	if old != nil {
		known = *old
	}
	if c, ok := known[key]; ok {
		return c
	}
	c := vec.WithLabelValues(path, method, strconv.Itoa(status))
	if len(known) >= maxRouteSeries {
		return c
	}
	m := make(map[methodStatus]prometheus.Counter, len(known)+1)
	maps.Copy(m, known)
	m[key] = c
	rr.m.CompareAndSwap(old, &m) // another request's addition wins: this one is added next time
	return c
}

type hook struct {
	module  *Module
	reg     luaapi.CallbackRegistration
	metrics hookMetrics
}

// hookMetrics are a hook's metric series, looked up once.
type hookMetrics struct {
	calls, errors prometheus.Counter
	latency       prometheus.Observer
	inflight      prometheus.Gauge
}

// Inflight is the number of calls running in the module's states now.
func (m *Module) Inflight() int64 {
	var n int64
	for _, s := range m.States() {
		n += s.Inflight()
	}
	return n
}

// States returns the module's Lua states (one per instance).
func (m *Module) States() []*luaapi.State { return *m.states.Load() }

// State picks the state for the next call: the first idle one in round
// robin order, else the next in turn that is in service and has room in its
// queue (max_queued_calls), else the next in service (to refuse the call at
// once), else a retired one (likewise).
func (m *Module) State() *luaapi.State {
	states := *m.states.Load()
	n := len(states)
	if n == 1 {
		return states[0]
	}
	start := int(m.next.Add(1))
	for _, ok := range []func(*luaapi.State) bool{
		func(s *luaapi.State) bool { return s.Inflight() == 0 && !s.Retired() },
		func(s *luaapi.State) bool { return !s.Retired() && s.HasRoom() },
		func(s *luaapi.State) bool { return !s.Retired() },
	} {
		for i := 0; i < n; i++ {
			if s := states[(start+i)%n]; ok(s) {
				return s
			}
		}
	}
	return states[start%n]
}

// Caches returns the module's memo caches.
func (m *Module) Caches() *cachebridge.ModuleCaches { return m.caches }

// Callbacks returns the callbacks m registered that this generation uses.
func (g *Generation) Callbacks(m *Module) []luaapi.CallbackRegistration { return g.callbacks[m] }

// RoutesOf returns the paths m serves in this generation.
func (g *Generation) RoutesOf(m *Module) []string { return g.served[m] }

// Hooks returns the modules registered for "category.name", in order.
func (g *Generation) Hooks(name string) []*Module {
	var out []*Module
	for _, h := range g.hooks[name] {
		out = append(out, h.module)
	}
	return out
}

// CallbackNames returns every "category.name" with at least one module.
func (g *Generation) CallbackNames() []string {
	names := make([]string, 0, len(g.hooks))
	for n := range g.hooks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Routes returns the route table, sorted by path.
func (g *Generation) Routes() []*Route {
	out := make([]*Route, 0, len(g.routes))
	for _, p := range g.sortedPaths() {
		out = append(out, g.routes[p])
	}
	return out
}

func (g *Generation) sortedPaths() []string {
	paths := make([]string, 0, len(g.routes))
	for p := range g.routes {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

// Match finds the route serving path: the registered path itself or the
// longest registered path it is below. subpath is the rest ("" or "/…").
//
// The path is cleaned first (path.Clean: "." and ".." segments resolved,
// repeated slashes folded; a decoded %2e%2e is a ".."), so a subpath never
// climbs out of its route and a path cannot reach another route through one.
func (g *Generation) Match(urlPath string) (r *Route, subpath string, ok bool) {
	path := cleanPath(urlPath)
	if r, ok := g.routes[path]; ok {
		return r, "", true
	}
	for _, p := range g.paths {
		if strings.HasPrefix(path, p) && (strings.HasSuffix(p, "/") || path[len(p)] == '/') {
			return g.routes[p], path[len(p):], true
		}
	}
	return nil, "", false
}

// Module returns the loaded module with the given name, or nil.
func (g *Generation) Module(name string) *Module {
	for _, m := range g.Modules {
		if m.Name == name {
			return m
		}
	}
	return nil
}

func (g *Generation) hold() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.retired {
		return false
	}
	g.holders++
	return true
}

func (g *Generation) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.holders--
	if g.retired && g.holders == 0 {
		close(g.drained)
	}
}

// retire waits for every holder to release the generation, then stops its
// timers and closes its states.
func (g *Generation) retire() {
	g.mu.Lock()
	g.retired = true
	idle := g.holders == 0
	g.mu.Unlock()
	if !idle {
		<-g.drained
	}
	g.close()
}

// close releases the generation's modules, closing those no other
// generation uses, in reverse order.
func (g *Generation) close() {
	for i := len(g.Modules) - 1; i >= 0; i-- {
		g.Modules[i].release()
	}
}

func (m *Module) release() {
	if m.refs.Add(-1) == 0 {
		m.mu.Lock()
		defer m.mu.Unlock()
		closeStates(m.States())
	}
}

// replaceState is each state's Env.OnRetire: it starts a fresh state in
// place of old, which takes no more calls, and closes old (without waiting
// for a call stuck in it). The fresh state runs the chunk, parse_config and
// init again; its registrations are checked, not recorded (they are the
// module's, already in every generation that has it).
//
// A fresh state that cannot start (its init failed, or the memory governor
// stopped it while the old state's memory was still being collected) is
// tried again after a pause that doubles up to replaceMaxPause, until one
// starts or the module is released: a module is never left with nothing
// but a retired state until the next reload.
func (e *Engine) replaceState(m *Module, old *luaapi.State, reason string) {
	pause := replaceFirstPause
	for attempt := 1; !e.tryReplaceState(m, old, reason, attempt, pause); attempt++ {
		time.Sleep(pause)
		pause = min(2*pause, replaceMaxPause)
	}
}

// The pauses between attempts to replace a retired state.
const (
	replaceFirstPause = 10 * time.Millisecond
	replaceMaxPause   = 10 * time.Second
)

// tryReplaceState is one attempt of replaceState. It reports whether
// replaceState is done: old was replaced, or there is nothing to replace.
func (e *Engine) tryReplaceState(m *Module, old *luaapi.State, reason string, attempt int, pause time.Duration) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	states := m.States()
	i := slices.Index(states, old)
	if i < 0 || m.refs.Load() == 0 { // still loading (its load fails), or released
		return true
	}
	if attempt == 1 {
		e.metrics.Retirements.WithLabelValues(m.Name).Inc()
		e.log.Warn("module state retired; starting a fresh one", "module", m.Name, "instance", i, "reason", reason)
		go old.Close()
	}
	s, err := luaapi.NewState(luaapi.Options{
		Module: m.Config.Module, Dir: filepath.Dir(m.File), Sandbox: !m.Config.Unsandboxed, Timeout: m.Config.Timeout,
		BackgroundTimeout: m.Config.BackgroundTimeout, Limits: m.Config.Limits, Env: m.env,
	})
	if err == nil {
		err = e.startState(context.Background(), e.Current(), m, s, m.chunk, i+1)
		if err != nil {
			go s.Close()
		}
	}
	if err != nil {
		e.log.Error("could not start a fresh state; its calls fail until one starts", "module", m.Name,
			"instance", i, "attempt", attempt, "next_attempt_in", pause.String(), "error", err.Error())
		return false
	}
	next := slices.Clone(states)
	next[i] = s
	m.states.Store(&next)
	return true
}

// cleanPath is path.Clean keeping a trailing slash.
func cleanPath(p string) string {
	c := p
	if !strings.HasPrefix(c, "/") {
		c = "/" + c
	}
	c = pathpkg.Clean(c) // no allocation when the path is clean already
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// reservedPrefixes are the paths a module may not serve (design §5), with
// what luamods itself serves (appservice transactions, the REST password
// provider). A module route may not be one, lie inside one, or contain one.
var reservedPrefixes = []string{
	"/_matrix/client", "/_matrix/federation", "/_matrix/key", "/_matrix/media", "/_matrix/app",
	"/_synapse/admin", "/_synapse/replication", "/health", "/metrics", "/_luamods",
	"/_matrix/app", "/_matrix-internal",
}

// build loads every module of cfg into a new generation. A module of prev
// with the same script and config is carried over, its registrations
// replayed; the others are loaded afresh, a changed module receiving what
// its predecessor's M.save() returned through M.restore(state).
func (e *Engine) build(ctx context.Context, cfg *Config, prev *Generation, data *dataSet) (*Generation, error) {
	g := &Generation{
		ID:        e.nextID.Add(1),
		Config:    cfg,
		Loaded:    time.Now(),
		engine:    e,
		hooks:     map[string][]hook{},
		routes:    map[string]*Route{},
		callbacks: map[*Module][]luaapi.CallbackRegistration{},
		served:    map[*Module][]string{},
		drained:   make(chan struct{}),
	}
	http, err := e.httpClient(cfg)
	if err != nil {
		return nil, err
	}
	link, err := e.connectHomeserver(cfg)
	if err != nil {
		return nil, Errors{err}
	}
	// The new homeserver serves from init on; a failed build restores the old.
	prevLink := e.homeserver.Swap(link)
	built := false
	defer func() {
		if !built {
			e.homeserver.Store(prevLink)
		}
	}()
	previous := map[string]*Module{}
	if prev != nil {
		for _, m := range prev.Modules {
			previous[m.Name] = m
		}
	}
	var errs []error
	for i := range cfg.Modules {
		mc := cfg.Modules[i]
		old := previous[mc.Module]
		// A module moving to another database loads afresh: its init
		// creates its tables there.
		if old != nil && e.sameModule(old, mc) && old.Config.Item == mc.Item && old.data.Load().db == data.db {
			old.refs.Add(1)
			g.Modules = append(g.Modules, old)
			if err := g.replay(old); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		m, err := e.loadModule(ctx, g, mc, http, old, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		g.Modules = append(g.Modules, m)
	}
	if len(errs) > 0 {
		g.close()
		return nil, Errors(errs)
	}
	for p := range g.routes {
		g.paths = append(g.paths, p)
	}
	sort.Slice(g.paths, func(i, j int) bool { return len(g.paths[i]) > len(g.paths[j]) })
	built = true
	return g, nil
}

func (e *Engine) httpClient(cfg *Config) (*luaapi.HTTPClient, error) {
	if e.opts.HTTPClient != nil {
		return e.opts.HTTPClient, nil
	}
	block := cfg.IPBlocklist
	if block == nil {
		block = luaapi.DefaultBlocklist
	}
	bl, err := luaapi.ParsePrefixes(block)
	if err != nil {
		return nil, err
	}
	al, err := luaapi.ParsePrefixes(cfg.IPAllowlist)
	if err != nil {
		return nil, err
	}
	return luaapi.NewHTTPClient(luaapi.HTTPPolicy{Blocklist: bl, Allowlist: al, UserAgent: "luamods/" + Version}), nil
}

// loadModule compiles one module and runs parse_config and init in each of
// its states, registering into g.
func (e *Engine) loadModule(ctx context.Context, g *Generation, mc ModuleConfig, http *luaapi.HTTPClient, predecessor *Module, data *dataSet) (*Module, error) {
	item := []string{"modules", itemName(mc.Item)}
	chunk, hash, err := e.compiler.Compile(mc.File)
	if err != nil {
		return nil, &ConfigError{File: g.Config.Path, Line: mc.Line, Path: append(item, "module"), Msg: fmt.Sprintf("module '%s' does not compile", mc.Module), Causes: []string{err.Error()}}
	}
	m := &Module{Name: mc.Module, File: mc.File, Hash: hash, Config: mc, identity: moduleIdentity(mc, hash), chunk: chunk, metrics: e.metrics}
	m.states.Store(&[]*luaapi.State{})
	m.refs.Store(1)
	m.caches = e.caches.Module(m.identity, mc.Module)
	m.data.Store(data)
	var saved any
	if predecessor != nil {
		if saved, err = predecessor.States()[0].Save(ctx); err != nil {
			e.log.Warn("M.save failed; the new version starts without its state", "module", mc.Module, "error", err.Error())
			saved = nil
		}
	}
	env := &luaapi.Env{
		ServerName:    g.Config.ServerName,
		PublicBaseURL: g.Config.PublicBaseURL,
		WorkerName:    g.Config.WorkerName,
		EmailAppName:  g.Config.EmailAppName,
		Logger:        e.log, // the state adds module=
		Background:    e.metrics.background(mc.Module),
		Host:          e.moduleHost(),
		HTTP:          http,
		Clock:         e.opts.Clock,
		Catalog:       e.catalog,
		Caches:        cacheProvider{m.caches},
		Metrics:       e.modMetrics.provider(mc.Module),
		Compile:       e.compiler.Recording(m.deps.record),
		Expose:        e.opts.Expose,
		Database:      moduleDatabase{ref: &m.data, module: mc.Module},
		Store:         moduleStore{ref: &m.data, ns: mc.Module},
		Depend:        m.deps.record, // templates: a change reloads the module

		MaxCallMemory:  g.Config.MaxCallMemory,
		MaxJSONNodes:   g.Config.MaxRequestJSONNodes,
		OnRetire:       func(s *luaapi.State, reason string) { e.replaceState(m, s, reason) },
		OnTimerRefused: e.metrics.RefusedTimers.WithLabelValues(mc.Module).Inc,
	}
	m.env = env
	var states []*luaapi.State
	defer func() { m.states.Store(&states) }()
	for i := 0; i < mc.Instances; i++ {
		s, err := luaapi.NewState(luaapi.Options{
			Module: mc.Module, Dir: filepath.Dir(mc.File), Sandbox: !mc.Unsandboxed, Timeout: mc.Timeout,
			BackgroundTimeout: mc.BackgroundTimeout, Limits: mc.Limits, Env: env,
		})
		if err != nil {
			closeStates(states)
			return nil, err
		}
		states = append(states, s)
		if err := e.startState(ctx, g, m, s, chunk, i); err != nil {
			closeStates(states)
			return nil, err
		}
		if saved != nil {
			if err := s.Restore(ctx, saved); err != nil {
				closeStates(states)
				return nil, &ConfigError{File: g.Config.Path, Line: mc.Line, Path: item, Msg: fmt.Sprintf("M.restore failed in module '%s'", mc.Module), Causes: []string{luaapi.WithoutModule(err)}}
			}
		}
	}
	return m, nil
}

// sameModule reports whether old can serve mc as it is: same file, same
// script content, same files required, same settings.
func (e *Engine) sameModule(old *Module, mc ModuleConfig) bool {
	if old.File != mc.File || old.Config.Instances != mc.Instances || old.Config.Timeout != mc.Timeout ||
		old.Config.BackgroundTimeout != mc.BackgroundTimeout || old.Config.Limits != mc.Limits ||
		old.Config.Unsandboxed != mc.Unsandboxed || canonical(old.Config.Config) != canonical(mc.Config) {
		return false
	}
	_, hash, err := e.compiler.Compile(mc.File)
	return err == nil && hash == old.Hash && old.deps.unchanged()
}

// dependencies are the files a module loaded with require, and the hash of
// each as loaded. Safe for concurrent use (require may run in any state of
// the module, at any time).
type dependencies struct {
	mu    sync.Mutex
	files map[string]string
}

// record notes a file the module required, with its hash as loaded.
func (d *dependencies) record(path, hash string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.files == nil {
		d.files = map[string]string{}
	}
	d.files[path] = hash
}

// unchanged reports whether every required file still has its hash.
func (d *dependencies) unchanged() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for path, hash := range d.files {
		if luaapi.FileHash(path) != hash {
			return false
		}
	}
	return true
}

func closeStates(states []*luaapi.State) {
	var wg sync.WaitGroup
	for _, s := range states {
		wg.Go(s.Close)
	}
	wg.Wait()
}

// moduleIdentity keys a module's caches: a module with the same script and
// configuration keeps its caches across reloads.
func moduleIdentity(mc ModuleConfig, hash string) string {
	return fmt.Sprintf("%s|%s|%s", mc.Module, hash, canonical(mc.Config))
}

func (e *Engine) startState(ctx context.Context, g *Generation, m *Module, s *luaapi.State, chunk *luaapi.Chunk, instance int) error {
	mc := m.Config
	item := []string{"modules", itemName(mc.Item)}
	if err := s.Load(ctx, chunk); err != nil {
		return &ConfigError{File: g.Config.Path, Line: mc.Line, Path: append(item, "module"), Msg: fmt.Sprintf("Failed to load module '%s'", mc.Module), Causes: []string{luaapi.WithoutModule(err)}}
	}
	if err := s.ParseConfig(ctx, mc.Config); err != nil {
		return &ConfigError{File: g.Config.Path, Line: mc.Line, Path: append(item, "config"), Msg: fmt.Sprintf("Failed to parse config for module '%s'", mc.Module), Causes: []string{luaapi.WithoutModule(err)}}
	}
	reg := &registrar{gen: g, module: m, instance: instance}
	if err := s.Init(ctx, reg); err != nil {
		return &ConfigError{File: g.Config.Path, Line: mc.Line, Path: item, Msg: fmt.Sprintf("Error during startup of module '%s'", mc.Module), Causes: []string{luaapi.WithoutModule(err)}}
	}
	return nil
}
