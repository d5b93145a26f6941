package luaapi

import (
	"fmt"
	"regexp"

	lua "github.com/yuin/gopher-lua"
)

// MetricKind is the kind of a module-defined metric.
type MetricKind string

// The metric kinds of api.metrics.
const (
	Counter   MetricKind = "counter"
	Gauge     MetricKind = "gauge"
	Histogram MetricKind = "histogram"
)

// MetricsProvider creates the metrics a module defines with api.metrics.
// The engine exports them as luamods_module_<name> with a module label.
type MetricsProvider interface {
	Metric(kind MetricKind, name, help string, labels []string, buckets []float64) (Metric, error)
}

// Metric records values of one module-defined metric. labelValues follow
// the labels it was defined with.
type Metric interface {
	Add(v float64, labelValues []string) error     // counters (v ≥ 0) and gauges
	Set(v float64, labelValues []string) error     // gauges
	Observe(v float64, labelValues []string) error // histograms
}

var metricName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// metricsTable is api.metrics: counter(name, help [, {labels}]),
// gauge(name, help [, {labels}]), histogram(name, help [, {labels} [, {buckets}]]).
// Each returns an object with :inc([n,] [labels]) / :add(n [, labels]) and,
// for gauges, :set(v [, labels]) and :dec([n,] [labels]), for histograms
// :observe(v [, labels]); labels is a table of label name → value.
func (s *State) metricsTable() *lua.LTable {
	L := s.L
	t := L.CreateTable(0, 3)
	for _, kind := range []MetricKind{Counter, Gauge, Histogram} {
		t.RawSetString(string(kind), L.NewFunction(s.defineMetric(kind)))
	}
	return t
}

type moduleMetric struct {
	kind   MetricKind
	name   string
	labels []string
	m      Metric
}

func (s *State) defineMetric(kind MetricKind) lua.LGFunction {
	return func(L *lua.LState) int {
		name := L.CheckString(1)
		help := L.OptString(2, name)
		if !metricName.MatchString(name) {
			L.RaiseError("metrics.%s: %q is not a metric name (letters, digits and _)", kind, name)
		}
		var labels []string
		if lt, ok := L.Get(3).(*lua.LTable); ok {
			lt.ForEach(func(_, v lua.LValue) {
				labels = append(labels, v.String())
			})
		}
		for _, l := range labels {
			if !metricName.MatchString(l) || l == "module" {
				L.RaiseError("metrics.%s: %q cannot be a label name", kind, l)
			}
		}
		var buckets []float64
		if bt, ok := L.Get(4).(*lua.LTable); ok && kind == Histogram {
			bt.ForEach(func(_, v lua.LValue) {
				if n, ok := v.(lua.LNumber); ok {
					buckets = append(buckets, float64(n))
				}
			})
		}
		if s.opts.Env.Metrics == nil {
			L.RaiseError("metrics.%s: metrics are not available here", kind)
		}
		m, err := s.opts.Env.Metrics.Metric(kind, name, help, labels, buckets)
		if err != nil {
			L.RaiseError("metrics.%s: %v", kind, err)
		}
		ud := L.NewUserData()
		ud.Value = &moduleMetric{kind: kind, name: name, labels: labels, m: m}
		ud.Metatable = s.metricMeta()
		L.Push(ud)
		return 1
	}
}

const metricMetaKey = "luamods.metric"

func (s *State) metricMeta() *lua.LTable {
	L := s.L
	reg := L.Get(lua.RegistryIndex)
	if mt, ok := L.GetField(reg, metricMetaKey).(*lua.LTable); ok {
		return mt
	}
	methods := L.CreateTable(0, 5)
	record := func(op string, sign float64, defaultValue bool) lua.LGFunction {
		return func(L *lua.LState) int {
			mm, ok := L.CheckUserData(1).Value.(*moduleMetric)
			if !ok {
				L.ArgError(1, "metric expected (call methods with ':')")
			}
			v, labelsAt := 1.0, 2
			if n, ok := L.Get(2).(lua.LNumber); ok {
				v, labelsAt = float64(n), 3
			} else if !defaultValue {
				L.ArgError(2, "number expected")
			}
			values, err := mm.labelValues(L.Get(labelsAt))
			if err == nil {
				switch op {
				case "add":
					err = mm.m.Add(sign*v, values)
				case "set":
					err = mm.m.Set(v, values)
				case "observe":
					err = mm.m.Observe(v, values)
				}
			}
			if err != nil {
				L.RaiseError("%s %s:%s: %v", mm.kind, mm.name, op, err)
			}
			return 0
		}
	}
	methods.RawSetString("inc", L.NewFunction(record("add", 1, true)))
	methods.RawSetString("add", L.NewFunction(record("add", 1, false)))
	methods.RawSetString("dec", L.NewFunction(record("add", -1, true)))
	methods.RawSetString("set", L.NewFunction(record("set", 1, false)))
	methods.RawSetString("observe", L.NewFunction(record("observe", 1, false)))
	mt := L.CreateTable(0, 2)
	mt.RawSetString("__index", methods)
	mt.RawSetString("__metatable", lua.LString("metric"))
	L.SetField(reg, metricMetaKey, mt)
	return mt
}

// labelValues reads {label = value} in the order the metric's labels were
// defined; every label needs a value.
func (mm *moduleMetric) labelValues(v lua.LValue) ([]string, error) {
	t, _ := v.(*lua.LTable)
	values := make([]string, len(mm.labels))
	for i, l := range mm.labels {
		if t == nil {
			return nil, fmt.Errorf("label %q needs a value: pass {%s = ...}", l, l)
		}
		lv := t.RawGetString(l)
		if lv == lua.LNil {
			return nil, fmt.Errorf("label %q needs a value", l)
		}
		values[i] = lv.String()
	}
	return values, nil
}
