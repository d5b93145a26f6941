package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite" // the sqlite3 engine, pure Go
)

// Engine names, as Synapse's database.name spells them.
const (
	SQLite   = "sqlite3"
	Postgres = "psycopg2"
)

// MaxRows bounds the rows one statement may return to a module.
const MaxRows = 100_000

// DefaultSlowInteraction is the duration over which an interaction is logged
// as slow when Options.Slow is zero.
const DefaultSlowInteraction = time.Second

// Options name a database, in the shape of Synapse's `database:` section.
type Options struct {
	Engine string // SQLite or Postgres

	Path string // sqlite3: the database file

	User     string // psycopg2: the connection's role
	Password string
	DBName   string
	Host     string // a host name, an address, or a unix socket folder
	Port     int
	MinConns int // cp_min
	MaxConns int // cp_max

	Slow time.Duration // interactions slower than this are logged; 0: DefaultSlowInteraction
}

// String names the database for logs and errors without its password:
// "sqlite3 file /path" or "psycopg2 user@host:port/dbname".
func (o Options) String() string {
	if o.Engine == Postgres {
		return fmt.Sprintf("psycopg2 %s@%s:%d/%s", o.User, o.Host, o.Port, o.DBName)
	}
	return "sqlite3 file " + o.Path
}

// DB is an open database: a pool of connections that runs transactions.
// Safe for concurrent use.
type DB struct {
	opts    Options
	log     *slog.Logger
	metrics *Metrics
	sqlite  *sql.DB
	pg      *pgxpool.Pool
}

// Open opens the database o names and checks that it answers. An SQLite
// file that does not exist yet is created by its first use, not here, so
// that checking a configuration leaves nothing behind; its folder must
// exist and be writable. metrics may be nil.
func Open(ctx context.Context, o Options, log *slog.Logger, metrics *Metrics) (*DB, error) {
	if log == nil {
		log = slog.Default()
	}
	if o.Slow <= 0 {
		o.Slow = DefaultSlowInteraction
	}
	db := &DB{opts: o, log: log, metrics: metrics}
	var err error
	switch o.Engine {
	case SQLite, "":
		db.opts.Engine = SQLite
		db.sqlite, err = openSQLite(ctx, o.Path)
	case Postgres:
		db.pg, err = openPostgres(ctx, o)
	default:
		return nil, fmt.Errorf("unknown database engine %q (expected %s or %s)", o.Engine, SQLite, Postgres)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot open the database (%s): %w", db.opts, err)
	}
	return db, nil
}

func openSQLite(ctx context.Context, path string) (*sql.DB, error) {
	if path == "" {
		return nil, errors.New("no file named")
	}
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		return nil, errors.New("it is a folder")
	} else if errors.Is(err, os.ErrNotExist) {
		dir := filepath.Dir(path)
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			return nil, fmt.Errorf("the folder %s does not exist", dir)
		}
		if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
			return nil, fmt.Errorf("the folder %s is not writable", dir)
		}
	} else if err != nil {
		return nil, err
	}
	// WAL lets readers work beside a writer; immediate transactions take
	// the write lock at BEGIN, so that two interactions never deadlock
	// upgrading a read lock, and wait (busy_timeout) for each other.
	dsn := path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(2)
	if _, err := os.Stat(path); err == nil {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&n); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

func openPostgres(ctx context.Context, o Options) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, err
	}
	cc := cfg.ConnConfig
	if o.Host != "" {
		cc.Host = o.Host
	}
	if o.Port != 0 {
		cc.Port = uint16(o.Port)
	}
	if o.User != "" {
		cc.User = o.User
	}
	if o.Password != "" {
		cc.Password = o.Password
	}
	if o.DBName != "" {
		cc.Database = o.DBName
	}
	if cc.ConnectTimeout == 0 || cc.ConnectTimeout > 5*time.Second {
		cc.ConnectTimeout = 5 * time.Second
	}
	cc.Fallbacks = nil // one host, as configured
	// A call's deadline must stop its statement on the server too: pgx's
	// default only breaks the socket, and PostgreSQL goes on running the
	// statement. Send a cancel request first; break the socket a second later
	// if the server does not answer it.
	cc.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: time.Second}
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = int32(o.MaxConns)
	}
	if o.MinConns > 0 {
		cfg.MinConns = min(int32(o.MinConns), cfg.MaxConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// Options returns what the database was opened with.
func (db *DB) Options() Options { return db.opts }

// Engine returns SQLite or Postgres.
func (db *DB) Engine() string { return db.opts.Engine }

// Close closes the pool once the transactions running now have ended.
func (db *DB) Close() {
	if db.sqlite != nil {
		_ = db.sqlite.Close()
	}
	if db.pg != nil {
		db.pg.Close()
	}
}

// Retryable reports whether err is a PostgreSQL serialization failure or
// deadlock (40001, 40P01): running the interaction again may succeed.
func (db *DB) Retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// Tx is one transaction: Execute any number of times, then Commit or
// Rollback. It ends by itself (rolled back) when the context it began with
// ends. One goroutine at a time may use it.
type Tx struct {
	db     *DB
	module string
	desc   string
	start  time.Time
	sqlTx  *sql.Tx
	pgTx   pgx.Tx
	stop   func() bool // unregisters the rollback at the context's end
	ended  chan struct{}
	failed bool
}

// Begin starts a transaction for module's interaction desc (which names it
// in metrics and logs), bound to ctx. PostgreSQL transactions are REPEATABLE
// READ, as Synapse's are.
//
// When ctx has a deadline, a PostgreSQL transaction also gets it as its
// statement_timeout (plus statementTimeoutMargin), in the same round trip
// as BEGIN: the server stops a statement by itself even when the cancel
// request sent at the deadline does not reach it in time (a loaded machine,
// a broken socket), so a call's deadline never leaves a query running.
func (db *DB) Begin(ctx context.Context, module, desc string) (*Tx, error) {
	t := &Tx{db: db, module: module, desc: desc, start: time.Now(), ended: make(chan struct{})}
	var err error
	if db.pg != nil {
		t.pgTx, err = db.pg.BeginTx(ctx, pgx.TxOptions{BeginQuery: pgBegin(ctx)})
		if err == nil {
			pg := t.pgTx
			t.stop = context.AfterFunc(ctx, func() { _ = pg.Rollback(context.Background()) })
		}
	} else {
		t.sqlTx, err = db.sqlite.BeginTx(ctx, nil) // ended by database/sql when ctx ends
	}
	if err != nil {
		db.metrics.observe(module, desc, "error", time.Since(t.start))
		return nil, db.wrap(ctx, err)
	}
	return t, nil
}

// statementTimeoutMargin is how long after a call's deadline PostgreSQL
// stops a statement of it by itself: the client's cancel comes first.
const statementTimeoutMargin = 100 * time.Millisecond

// pgBegin is the statement that begins a PostgreSQL transaction bound to
// ctx's deadline, if it has one.
func pgBegin(ctx context.Context) string {
	const begin = "BEGIN ISOLATION LEVEL REPEATABLE READ"
	deadline, ok := ctx.Deadline()
	if !ok {
		return begin
	}
	ms := max(time.Until(deadline)+statementTimeoutMargin, time.Millisecond).Milliseconds()
	return fmt.Sprintf("%s; SET LOCAL statement_timeout = %d", begin, ms)
}

// wrap names the database in a connection-level error and says when the
// call's deadline cut the operation short.
func (db *DB) wrap(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w (the call's deadline ended the query)", db.opts, context.Cause(ctx))
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return err
	}
	if db.pg != nil && !strings.Contains(err.Error(), db.opts.Host) {
		return fmt.Errorf("database %s: %w", db.opts, err)
	}
	return err
}

// Execute runs one statement with args for its `?` placeholders and returns
// the rows it produced (each value nil, bool, int64, float64, string, or
// JSON-like) and the number of rows it changed or returned.
func (t *Tx) Execute(ctx context.Context, query string, args []any) ([][]any, int64, error) {
	var rows [][]any
	var n int64
	var err error
	if t.pgTx != nil {
		rows, n, err = t.executePostgres(ctx, query, args)
	} else {
		rows, n, err = t.executeSQLite(ctx, query, args)
	}
	if err != nil {
		t.failed = true
		return nil, 0, t.db.wrap(ctx, err)
	}
	return rows, n, nil
}

func (t *Tx) executePostgres(ctx context.Context, query string, args []any) ([][]any, int64, error) {
	r, err := t.pgTx.Query(ctx, numberPlaceholders(query), args...)
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	var out [][]any
	for r.Next() {
		if len(out) == MaxRows {
			return nil, 0, fmt.Errorf("the statement returned more than %d rows (add a LIMIT)", MaxRows)
		}
		vals, err := r.Values()
		if err != nil {
			return nil, 0, err
		}
		for i, v := range vals {
			vals[i] = normalize(v)
		}
		out = append(out, vals)
	}
	r.Close()
	if err := r.Err(); err != nil {
		return nil, 0, err
	}
	return out, r.CommandTag().RowsAffected(), nil
}

func (t *Tx) executeSQLite(ctx context.Context, query string, args []any) ([][]any, int64, error) {
	if !returnsRows(query) {
		res, err := t.sqlTx.ExecContext(ctx, query, args...)
		if err != nil {
			return nil, 0, err
		}
		n, _ := res.RowsAffected()
		return nil, n, nil
	}
	r, err := t.sqlTx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	cols, err := r.Columns()
	if err != nil {
		return nil, 0, err
	}
	var out [][]any
	for r.Next() {
		if len(out) == MaxRows {
			return nil, 0, fmt.Errorf("the statement returned more than %d rows (add a LIMIT)", MaxRows)
		}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			return nil, 0, err
		}
		for i, v := range vals {
			vals[i] = normalize(v)
		}
		out = append(out, vals)
	}
	if err := r.Err(); err != nil {
		return nil, 0, err
	}
	return out, int64(len(out)), nil
}

// returnsRows reports whether a statement produces rows: a query, or a
// change with RETURNING.
func returnsRows(query string) bool {
	q := strings.TrimLeft(query, " \t\r\n(")
	i := strings.IndexFunc(q, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') })
	if i < 0 {
		i = len(q)
	}
	switch strings.ToUpper(q[:i]) {
	case "SELECT", "WITH", "VALUES", "PRAGMA", "EXPLAIN", "SHOW", "TABLE":
		return true
	}
	return strings.Contains(strings.ToUpper(query), "RETURNING")
}

// Commit commits the transaction.
func (t *Tx) Commit(ctx context.Context) error {
	var err error
	if t.pgTx != nil {
		t.stopRollback()
		err = t.pgTx.Commit(ctx)
	} else {
		err = t.sqlTx.Commit()
	}
	t.finish(err)
	if err != nil {
		return t.db.wrap(ctx, err)
	}
	return nil
}

// Rollback abandons the transaction. Safe after Commit or a failure.
func (t *Tx) Rollback() {
	if t.pgTx != nil {
		t.stopRollback()
		_ = t.pgTx.Rollback(context.Background())
	} else {
		_ = t.sqlTx.Rollback()
	}
	t.failed = true
	t.finish(nil)
}

func (t *Tx) stopRollback() {
	if t.stop != nil {
		t.stop()
		t.stop = nil
	}
}

func (t *Tx) finish(err error) {
	select {
	case <-t.ended:
		return
	default:
		close(t.ended)
	}
	took := time.Since(t.start)
	result := "ok"
	if err != nil || t.failed {
		result = "error"
	}
	t.db.metrics.observe(t.module, t.desc, result, took)
	if took >= t.db.opts.Slow {
		t.db.log.Warn("slow database interaction", "module", t.module, "desc", t.desc, "took", took.String(), "result", result)
	}
}
