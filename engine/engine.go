package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"luamods/cachebridge"
	"luamods/luaapi"
	"luamods/matrixhost"
	"luamods/storage"
)

// Version is luamods' version, set at build time with -ldflags.
var Version = "0.1.0-dev"

// Options configure an Engine. It needs Config or ConfigPath.
type Options struct {
	// Config is the configuration of the first generation, built in Go or
	// read with LoadConfig. Defaults are filled in and module paths are
	// resolved against the folder of Config.Path (the working directory
	// when empty), as for a file. Reload reloads the scripts with it
	// unless ConfigPath is set.
	Config *Config
	// ConfigPath is luamods.yaml: read by New when Config is nil, and
	// again by every Reload.
	ConfigPath string
	Host       luaapi.Host          // the homeserver; nil: homeserver-backed api methods fail
	Logger     *slog.Logger         // nil: slog.Default()
	Registry   *prometheus.Registry // metrics go here; nil: a new registry
	Clock      luaapi.Clock         // nil: the real clock
	Catalog    *Catalog             // nil: NewCatalog() (Synapse's)
	// Expose hands Go values to every module: each is the global
	// host.<name> in every state, converted by gopher-luar (exported
	// fields and methods of structs, maps, slices, functions). Their
	// methods run synchronously on the module's state: they cannot yield
	// and hold up the state's other calls meanwhile, so keep them fast and
	// in memory (about 1–4 µs and ten allocations per call; BenchmarkExposedMethod). Calls that
	// wait on the network belong on Host, whose methods yield.
	Expose map[string]any
	// HTTPClient replaces the client built from the config's IP lists.
	HTTPClient *luaapi.HTTPClient
	// DefaultDatabase replaces the SQLite file used when the configuration
	// has no database: section (luamods test gives each test file its own).
	DefaultDatabase string
}

// Engine loads modules from a configuration and dispatches calls to them.
// It holds the current Generation; Reload builds the next one aside and
// swaps it in. All methods may be called concurrently.
type Engine struct {
	opts       Options
	log        *slog.Logger
	catalog    *Catalog
	metrics    *Metrics
	compiler   *luaapi.Compiler
	caches     *cachebridge.Store
	modMetrics *moduleMetrics
	dbMetrics  *storage.Metrics
	data       *dataSet // the database and store in use; changed under reloadMu

	idPrefix  string        // random per engine: request ids are unique across restarts
	idCounter atomic.Uint64 // and cost no system call

	current  atomic.Pointer[Generation]
	reloadMu sync.Mutex // serialises Reload and Close
	nextID   atomic.Uint64
	closed   bool

	// homeserver is the latest configuration's homeserver (nil: none);
	// appservice receives its events for the engine's whole life.
	homeserver atomic.Pointer[homeserverLink]
	appservice *matrixhost.Receiver
}

// New loads the configuration (opts.Config, else the file at
// opts.ConfigPath) and every module in it.
// Any error leaves nothing running.
func New(ctx context.Context, opts Options) (*Engine, error) {
	e := newEngine(opts)
	var cfg *Config
	var err error
	if opts.Config != nil {
		cfg, err = completeConfig(opts.Config)
	} else {
		cfg, err = e.loadConfig()
	}
	if err != nil {
		e.abort()
		return nil, err
	}
	e.warn(cfg)
	if err := e.caches.Configure(redisOptions(cfg.Redis)); err != nil {
		e.abort()
		return nil, err
	}
	data, err := e.openData(ctx, cfg)
	if err != nil {
		e.abort()
		return nil, err
	}
	gen, err := e.build(ctx, cfg, nil, data)
	if err != nil {
		e.closeUnused(data)
		e.abort()
		return nil, err
	}
	e.adoptData(data, gen)
	e.current.Store(gen)
	e.metrics.generation.Set(float64(gen.ID))
	return e, nil
}

// abort releases what newEngine started, for a New that fails.
func (e *Engine) abort() {
	e.appservice.Close(context.Background())
	e.caches.Close()
}

func newEngine(opts Options) *Engine {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.Catalog == nil {
		opts.Catalog = NewCatalog()
	}
	if opts.Clock == nil {
		opts.Clock = luaapi.RealClock{}
	}
	m := newMetrics(opts.Registry)
	var prefix [4]byte
	_, _ = rand.Read(prefix[:])
	e := &Engine{
		idPrefix:   hex.EncodeToString(prefix[:]),
		opts:       opts,
		log:        opts.Logger,
		catalog:    opts.Catalog,
		metrics:    m,
		compiler:   luaapi.NewCompiler(),
		modMetrics: newModuleMetrics(opts.Registry),
		dbMetrics:  storage.NewMetrics(opts.Registry),
		caches:     cachebridge.NewStore(cachebridge.StoreOptions{Logger: opts.Logger, Registry: opts.Registry, Now: opts.Clock.Now}),
	}
	opts.Registry.MustRegister(limitsCollector{e})
	e.appservice = matrixhost.NewReceiver(matrixhost.ReceiverOptions{Feed: appserviceFeed{e}, Logger: opts.Logger})
	return e
}

func redisOptions(rc *RedisConfig) *cachebridge.RedisOptions {
	if rc == nil {
		return nil
	}
	return &cachebridge.RedisOptions{Addr: rc.Addr, Password: rc.Password, DB: rc.DB, Channel: rc.Channel}
}

// Current returns the generation serving now. Callers that run a call on it
// should use Acquire instead, so that a reload waits for them.
func (e *Engine) Current() *Generation { return e.current.Load() }

// Acquire returns the current generation and holds it until release is
// called: a reload swaps generations meanwhile but closes this one only
// after every holder has released it.
func (e *Engine) Acquire() (gen *Generation, release func()) {
	g := e.acquire()
	return g, g.release
}

// acquire is Acquire without the release function (a method value: an
// allocation per request); call the generation's release.
func (e *Engine) acquire() *Generation {
	for {
		g := e.current.Load()
		if g.hold() {
			return g
		}
		// g is being closed by a reload that swapped it out: take the new one.
	}
}

// Catalog returns the engine's callback catalog.
func (e *Engine) Catalog() *Catalog { return e.catalog }

// Registry returns the Prometheus registry the engine's metrics are in.
func (e *Engine) Registry() *prometheus.Registry { return e.opts.Registry }

// Logger returns the engine's logger.
func (e *Engine) Logger() *slog.Logger { return e.log }

// Invoke runs the callback "category.name" (e.g.
// "spam_checker.user_may_invite") on every module that registered it, in
// modules: order, and returns the combined result as Synapse's callback
// runner would: nil for None, a luaapi.Tuple for a tuple, strings for Codes.
func (e *Engine) Invoke(ctx context.Context, name string, args ...any) (any, error) {
	gen, release := e.Acquire()
	defer release()
	return gen.Invoke(ctx, name, args...)
}

// Close stops the current generation after its calls finish, and the caches.
func (e *Engine) Close() {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	if e.closed {
		return
	}
	e.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), appserviceDrain)
	e.appservice.Close(ctx)
	cancel()
	if g := e.current.Load(); g != nil {
		g.retire()
	}
	e.caches.Close()
	if e.data != nil {
		e.data.kv.Close()
		e.data.db.Close()
	}
}

// warn logs the deprecated settings cfg uses.
func (e *Engine) warn(cfg *Config) {
	for _, w := range cfg.Warnings {
		e.log.Warn(w, "config", cfg.Path)
	}
}

var errClosed = errors.New("engine: closed")

// appserviceDrain is how long Close lets queued appservice events run.
const appserviceDrain = 10 * time.Second
