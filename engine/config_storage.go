package engine

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"luamods/storage"
)

// DefaultDatabaseFile is the SQLite file, next to the configuration, used
// when the configuration has no database: section.
const DefaultDatabaseFile = "luamods.db"

// defaultInvalidationChannel is the Redis channel of cache invalidations.
const defaultInvalidationChannel = "luamods:invalidate"

// database reads database: {name: sqlite3 | psycopg2, args: {...}}, as
// Synapse's.
func (p *configParser) database(cfg *Config, n *yaml.Node, at []string, dir string) {
	cfg.Database = storage.Options{Engine: storage.SQLite}
	var args *yaml.Node
	var argsAt []string
	p.fields(n, at, []string{"name", "args"}, func(key string, v *yaml.Node, kat []string) {
		switch key {
		case "name":
			cfg.Database.Engine = p.str(v, kat)
			if cfg.Database.Engine != storage.SQLite && cfg.Database.Engine != storage.Postgres {
				p.fail(v, kat, fmt.Sprintf("expected %s or %s", storage.SQLite, storage.Postgres))
			}
		case "args":
			args, argsAt = v, kat
		}
	})
	d := &cfg.Database
	if args == nil {
		if d.Engine == storage.SQLite {
			d.Path = filepath.Join(dir, DefaultDatabaseFile)
		} else {
			p.fail(n, append(at, "args"), "psycopg2 needs args: {user, password, dbname, host, port}")
		}
		return
	}
	known := []string{"database", "cp_min", "cp_max"}
	if d.Engine == storage.Postgres {
		known = append(known, "user", "password", "dbname", "host", "port")
	}
	p.fields(args, argsAt, known, func(key string, v *yaml.Node, kat []string) {
		switch key {
		case "database":
			if d.Engine == storage.SQLite {
				d.Path = resolvePath(dir, p.str(v, kat))
			} else {
				d.DBName = p.str(v, kat)
			}
		case "dbname":
			d.DBName = p.str(v, kat)
		case "user":
			d.User = p.str(v, kat)
		case "password":
			d.Password = p.scalar(v, kat)
		case "host":
			d.Host = p.str(v, kat)
		case "port":
			d.Port = p.intIn(v, kat, 1, 65535)
		case "cp_min":
			d.MinConns = p.intIn(v, kat, 0, 1000)
		case "cp_max":
			d.MaxConns = p.intIn(v, kat, 1, 1000)
		}
	})
	if d.Engine == storage.SQLite && d.Path == "" {
		d.Path = filepath.Join(dir, DefaultDatabaseFile)
	}
	if d.MaxConns > 0 && d.MinConns > d.MaxConns {
		p.fail(args, argsAt, "cp_min must not be more than cp_max")
	}
}

// redis reads Synapse's top-level redis: {enabled, host, port, dbid,
// password, password_path}. Disabled, it is nil.
func (p *configParser) redis(n *yaml.Node, at []string, dir string) *storage.RedisOptions {
	o := storage.RedisOptions{Host: "localhost", Port: 6379}
	enabled := false
	p.fields(n, at, []string{"enabled", "host", "port", "dbid", "password", "password_path"}, func(key string, v *yaml.Node, kat []string) {
		switch key {
		case "enabled":
			enabled = p.boolean(v, kat)
		case "host":
			o.Host = p.str(v, kat)
		case "port":
			o.Port = p.intIn(v, kat, 1, 65535)
		case "dbid":
			o.DB = p.intIn(v, kat, 0, 1<<16)
		case "password":
			o.Password = p.scalar(v, kat)
		case "password_path":
			b, err := os.ReadFile(resolvePath(dir, p.str(v, kat)))
			if err != nil {
				p.fail(v, kat, err.Error())
			}
			o.Password = strings.TrimSpace(string(b))
		}
	})
	if !enabled {
		return nil
	}
	return &o
}

// store reads store: {backend: database | redis}.
func (p *configParser) store(cfg *Config, n *yaml.Node, at []string) {
	p.fields(n, at, []string{"backend"}, func(_ string, v *yaml.Node, kat []string) {
		cfg.StoreBackend = p.str(v, kat)
		if cfg.StoreBackend != "database" && cfg.StoreBackend != "redis" {
			p.fail(v, kat, "expected database or redis")
		}
	})
}

// storageDefaults fills what was not configured and checks that the parts
// agree: the default SQLite file, redis: feeding the cache fan-out, and a
// Redis store having a Redis.
func (p *configParser) storageDefaults(cfg *Config, root *yaml.Node, dir string) {
	storageDefaults(cfg, dir)
	if r := cfg.RedisServer; r != nil {
		if cfg.Redis != nil {
			cfg.Warnings = append(cfg.Warnings, "both redis and cache.redis are set: cache invalidations use redis")
		}
		cfg.Redis = &RedisConfig{Addr: net.JoinHostPort(r.Host, strconv.Itoa(r.Port)), Password: r.Password, DB: r.DB, Channel: defaultInvalidationChannel}
	}
	if cfg.StoreBackend == "redis" && cfg.RedisServer == nil {
		line := 0
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "store" {
				line = root.Content[i].Line
			}
		}
		p.errs = append(p.errs, &ConfigError{File: p.file, Line: line, Path: []string{"store", "backend"}, Msg: "the redis backend needs redis: {enabled: true, host: ..., port: ...}"})
	}
}

// storageDefaults fills the database and store backend a configuration
// leaves out: SQLite in dir, on the database.
func storageDefaults(cfg *Config, dir string) {
	if cfg.Database.Engine == "" {
		cfg.Database = storage.Options{Engine: storage.SQLite, Path: filepath.Join(dir, DefaultDatabaseFile)}
		cfg.DefaultDB = true
	}
	if cfg.StoreBackend == "" {
		cfg.StoreBackend = "database"
	}
}

func (p *configParser) scalar(n *yaml.Node, at []string) string {
	if n.Kind != yaml.ScalarNode {
		p.fail(n, at, "expected a string")
		return ""
	}
	return n.Value
}

func (p *configParser) intIn(n *yaml.Node, at []string, lo, hi int) int {
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil || v < lo || v > hi {
		p.fail(n, at, fmt.Sprintf("expected a whole number from %d to %d", lo, hi))
	}
	return v
}

func (p *configParser) boolean(n *yaml.Node, at []string) bool {
	b, err := strconv.ParseBool(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		p.fail(n, at, "expected true or false")
	}
	return b
}
