package luaapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
	lua "github.com/yuin/gopher-lua"
)

// MaxTemplateSize caps one template file read by api.read_templates.
const MaxTemplateSize = 1 << 20

// MaxTemplateOutput caps what one :render produces.
const MaxTemplateOutput = 4 << 20

// MaxTemplateRange caps range(...) in a template: gonja materializes a
// loop's items before running its body, and a render cannot be interrupted.
const MaxTemplateRange = 100_000

// autoescaped are the extensions whose templates escape HTML by default, as
// Synapse's read_templates does with jinja2.select_autoescape().
var autoescaped = map[string]bool{".html": true, ".htm": true, ".xml": true}

// apiReadTemplates is api.read_templates(names, custom_dir): Synapse's
// ModuleApi.read_templates. Each name is a file searched first in
// custom_dir (a folder inside the module's folder), then in the module's
// folder; the result is a list of template objects, in the order of names,
// with :render(vars). Templates use Jinja2 syntax (gonja); .html, .htm and
// .xml templates autoescape. Files are read through an os.Root of the
// module's folder, so no name or include reaches outside it.
func (s *State) apiReadTemplates(L *lua.LState) int {
	const what = "read_templates"
	names := L.CheckTable(1)
	custom := L.OptString(2, "")
	if s.opts.Dir == "" {
		L.RaiseError("%s: the module has no folder to read templates from", what)
	}
	loader, err := newTemplateLoader(s.opts.Dir, custom, s.opts.Env.Depend)
	if err != nil {
		L.RaiseError("%s: %v", what, err)
	}
	out := L.CreateTable(names.Len(), 0)
	for i := 1; i <= names.Len(); i++ {
		name, ok := names.RawGetInt(i).(lua.LString)
		if !ok {
			L.RaiseError("%s: names must be a list of file names", what)
		}
		tpl, err := loader.template(string(name))
		if err != nil {
			L.RaiseError("%s: %v", what, err)
		}
		ud := L.NewUserData()
		ud.Value = tpl
		ud.Metatable = s.templateMeta()
		out.Append(ud)
	}
	L.Push(out)
	return 1
}

// registryTemplateMeta is the registry key of the template metatable.
const registryTemplateMeta = "luamods.template"

func (s *State) templateMeta() *lua.LTable {
	L := s.L
	reg := L.Get(lua.RegistryIndex).(*lua.LTable)
	if meta, ok := reg.RawGetString(registryTemplateMeta).(*lua.LTable); ok {
		return meta
	}
	meta := L.CreateTable(0, 3)
	methods := L.CreateTable(0, 1)
	methods.RawSetString("render", L.NewFunction(s.templateRender))
	meta.RawSetString("__index", methods)
	meta.RawSetString("__metatable", lua.LString("template"))
	meta.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString("template " + checkTemplate(L).name))
		return 1
	}))
	reg.RawSetString(registryTemplateMeta, meta)
	return meta
}

// template is a parsed template and the name it was read as.
type template struct {
	name string
	tpl  *exec.Template
}

func checkTemplate(L *lua.LState) *template {
	t, ok := L.CheckUserData(1).Value.(*template)
	if !ok {
		L.ArgError(1, "template expected (call methods with ':')")
	}
	return t
}

// templateRender is template:render([vars]): the rendered text. vars is a
// table of plain values (as for JSON); nil in Jinja2 is Lua's nil.
func (s *State) templateRender(L *lua.LState) int {
	t := checkTemplate(L)
	data := map[string]any{}
	if vars, ok := L.Get(2).(*lua.LTable); ok {
		v, err := FromLua(vars)
		if err != nil {
			L.RaiseError("render %s: %v", t.name, err)
		}
		m, ok := v.(map[string]any)
		if !ok && vars.Len() > 0 {
			L.ArgError(2, "vars must be a table of name = value")
		}
		if m != nil {
			data = m
		}
	} else if L.Get(2) != lua.LNil {
		L.ArgError(2, "vars must be a table of name = value")
	}
	w := &cappedWriter{max: MaxTemplateOutput}
	if err := t.tpl.Execute(w, exec.NewContext(data)); err != nil {
		if errors.Is(err, errOutputTooLarge) {
			L.RaiseError("render %s: output over %d bytes", t.name, MaxTemplateOutput)
		}
		L.RaiseError("render %s: %v", t.name, err)
	}
	L.Push(lua.LString(w.buf.String()))
	return 1
}

var errOutputTooLarge = errors.New("template output too large")

// cappedWriter is a buffer that refuses to grow past max bytes.
type cappedWriter struct {
	buf bytes.Buffer
	max int
}

func (w *cappedWriter) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > w.max {
		return 0, errOutputTooLarge
	}
	return w.buf.Write(p)
}

// templateLoader is a gonja loader over the module's folder: names are
// searched in each folder of search in turn, as Jinja2's FileSystemLoader
// does with several search paths, and read through an os.Root so that
// neither "..", absolute paths nor symbolic links leave the module's folder.
// Files are read once and kept: the set of templates is a snapshot, renewed
// when the module is loaded again.
type templateLoader struct {
	dir    string   // the module's folder
	search []string // slash-separated folders inside dir, "." for dir itself
	env    *exec.Environment
	depend func(path, hash string) // Env.Depend, or nil

	mu    sync.Mutex
	files map[string]string
}

func newTemplateLoader(dir, custom string, depend func(path, hash string)) (*templateLoader, error) {
	globals := exec.EmptyContext().Update(builtins.GlobalFunctions).Update(builtins.GlobalVariables)
	if rng, ok := globals.Get("range"); ok {
		if rng, ok := rng.(func(*exec.Evaluator, *exec.VarArgs) (<-chan int, error)); ok {
			globals.Set("range", cappedRange(rng))
		}
	}
	l := &templateLoader{
		dir:    dir,
		depend: depend,
		files:  map[string]string{},
		env: &exec.Environment{
			Context:           globals,
			Filters:           builtins.Filters,
			Tests:             builtins.Tests,
			ControlStructures: builtins.ControlStructures,
			Methods:           builtins.Methods,
		},
	}
	if custom != "" {
		rel := custom
		if filepath.IsAbs(custom) {
			r, err := filepath.Rel(dir, custom)
			if err != nil || !filepath.IsLocal(r) {
				return nil, fmt.Errorf("custom template folder %q is outside the module's folder %s", custom, dir)
			}
			rel = r
		}
		if !filepath.IsLocal(rel) {
			return nil, fmt.Errorf("custom template folder %q is outside the module's folder %s", custom, dir)
		}
		l.search = append(l.search, filepath.ToSlash(filepath.Clean(rel)))
	}
	l.search = append(l.search, ".")
	return l, nil
}

// cappedRange refuses a range(...) of more than MaxTemplateRange items.
func cappedRange(rng func(*exec.Evaluator, *exec.VarArgs) (<-chan int, error)) func(*exec.Evaluator, *exec.VarArgs) (<-chan int, error) {
	return func(e *exec.Evaluator, params *exec.VarArgs) (<-chan int, error) {
		start, stop, step := 0, 0, 1
		var ints []int
		for _, a := range params.Args {
			if !a.IsInteger() {
				return rng(e, params) // let range report its own error
			}
			ints = append(ints, a.Integer())
		}
		switch len(ints) {
		case 1:
			stop = ints[0]
		case 2, 3:
			start, stop = ints[0], ints[1]
			if len(ints) == 3 {
				step = ints[2]
			}
		}
		if step != 0 {
			if n := (stop - start) / step; n > MaxTemplateRange {
				return nil, fmt.Errorf("range of %d items is over the limit of %d", n, MaxTemplateRange)
			}
		}
		return rng(e, params)
	}
}

// template reads and parses one template by name.
func (l *templateLoader) template(name string) (*template, error) {
	resolved, err := l.Resolve(name)
	if err != nil {
		return nil, err
	}
	cfg := config.New()
	cfg.AutoEscape = autoescaped[strings.ToLower(path.Ext(name))]
	tpl, err := exec.NewTemplate(resolved, cfg, l, l.env)
	if err != nil {
		// gonja's message quotes the whole source: keep the parser's error.
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		return nil, fmt.Errorf("template %s: %w", resolved, err)
	}
	return &template{name: name, tpl: tpl}, nil
}

// Resolve finds name in the search folders and returns its path inside the
// module's folder.
func (l *templateLoader) Resolve(name string) (string, error) {
	if !fs.ValidPath(strings.TrimPrefix(name, "./")) {
		return "", fmt.Errorf("template name %q must be a relative path inside the module's folder", name)
	}
	var tried []string
	for _, dir := range l.search {
		p := path.Join(dir, name)
		if _, err := l.read(p); err == nil {
			return p, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		tried = append(tried, filepath.Join(l.dir, filepath.FromSlash(p)))
	}
	return "", fmt.Errorf("template %q not found (looked for %s)", name, strings.Join(tried, ", "))
}

// Read returns a resolved template's text.
func (l *templateLoader) Read(p string) (io.Reader, error) {
	text, err := l.read(p)
	if err != nil {
		return nil, err
	}
	return strings.NewReader(text), nil
}

// Inherit returns the loader itself: an include or extends names a template
// by the search folders, not relative to the including file (as in Jinja2).
func (l *templateLoader) Inherit(string) (loaders.Loader, error) { return l, nil }

func (l *templateLoader) read(p string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if text, ok := l.files[p]; ok {
		return text, nil
	}
	root, err := os.OpenRoot(l.dir)
	if err != nil {
		return "", fmt.Errorf("templates: %w", err)
	}
	defer root.Close()
	f, err := root.Open(filepath.FromSlash(p))
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxTemplateSize+1))
	if err != nil {
		return "", fmt.Errorf("template %s: %w", p, err)
	}
	if len(b) > MaxTemplateSize {
		return "", fmt.Errorf("template %s is over %d bytes", p, MaxTemplateSize)
	}
	l.files[p] = string(b)
	if l.depend != nil {
		l.depend(filepath.Join(l.dir, filepath.FromSlash(p)), ContentHash(b))
	}
	return l.files[p], nil
}
