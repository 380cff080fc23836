package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/io/store/lifecycle"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/queryapi"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/services/dbwriter"
	"github.com/adclick/adclick/services/logwatch"
)

// describing is a Registerer that records the name of every family its
// collectors describe (also the vectors that have no series yet, which a
// scrape would not show) and passes them on to a real registry.
type describing struct {
	reg   *prometheus.Registry
	names map[string]bool
}

var reFQName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (d *describing) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for desc := range ch {
		if m := reFQName.FindStringSubmatch(desc.String()); m != nil {
			d.names[m[1]] = true
		}
	}
	return d.reg.Register(c)
}

func (d *describing) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := d.Register(c); err != nil {
			panic(err)
		}
	}
}

func (d *describing) Unregister(c prometheus.Collector) bool { return d.reg.Unregister(c) }

// exportedNames builds every component's metrics the way the commands do,
// into recording registries, and returns the family names.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	d := &describing{reg: prometheus.NewRegistry(), names: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the components register their metrics, then stop at once
	nowhere := []string{"127.0.0.1:1"}

	// stream: the job's counters and its group's lag.
	if err := registerStreamMetrics(d, &runners.JobMetrics{}); err != nil {
		t.Fatal(err)
	}
	closeLag, err := registerConsumerLag(d, nowhere, "g")
	if err != nil {
		t.Fatal(err)
	}
	defer closeLag()
	// dbwriter.
	if err := dbwriter.Run(ctx, dbwriter.Config{Brokers: nowhere, Topic: "t", Group: "g", Kind: dbwriter.Results, Registry: d}, nil); err != nil {
		t.Fatal(err)
	}
	// logwatcher.
	if _, err := logwatch.New(logwatch.Config{Globs: []string{filepath.Join(t.TempDir(), "*.log")}, Brokers: nowhere, Topic: "t",
		StatePath: filepath.Join(t.TempDir(), "state.json"), Registerer: d}); err != nil {
		t.Fatal(err)
	}
	// The Cassandra store registers its metrics before it connects.
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	if st, err := backend.Open(cctx, backend.Config{Backend: backend.Cassandra, Hosts: nowhere, Keyspace: "adclick"}, d); err == nil {
		st.Close()
	}
	// serve and the all-in-one: the query API's metrics and freshness.
	st, err := backend.Open(context.Background(), backend.Config{Backend: backend.Pebble, Path: filepath.Join(t.TempDir(), "pebble")}, d)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := queryapi.New(queryapi.Config{Store: st, Registerer: d, Insecure: true}); err != nil {
		t.Fatal(err)
	}
	// serve, dbwriter and the all-in-one: the store lifecycle's.
	if err := lifecycle.Run(ctx, st, lifecycle.Config{Registerer: d}); err != nil {
		t.Fatal(err)
	}
	// reconcile --metrics-file.
	mfs, err := (&pipelines.Report{}).Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		d.names[mf.GetName()] = true
	}
	return d.names
}

// The PromQL checks use MetricsQL's parser (github.com/VictoriaMetrics/metricsql),
// the smallest Go parser of the language: Prometheus's own (promql/parser,
// model/rulefmt) would raise gRPC, OpenTelemetry and the Google API modules
// of the whole module to newer versions than Beam's. MetricsQL accepts more
// than PromQL, so what it allows beyond PromQL is refused here: functions and
// aggregations PromQL does not have, and range functions without a range.

// promQLFuncs are PromQL's functions; promQLRange those that take a range vector.
var (
	promQLFuncs = strings.Fields(`abs absent absent_over_time avg_over_time ceil changes clamp clamp_max clamp_min
		count_over_time day_of_month day_of_week day_of_year days_in_month delta deriv exp floor histogram_count
		histogram_fraction histogram_quantile histogram_sum holt_winters hour idelta increase irate label_join
		label_replace last_over_time ln log10 log2 max_over_time min_over_time minute month predict_linear
		present_over_time quantile_over_time rate resets round scalar sgn sort sort_desc sqrt stddev_over_time
		stdvar_over_time sum_over_time time timestamp vector year`)
	promQLRange = strings.Fields(`absent_over_time avg_over_time changes count_over_time delta deriv holt_winters
		idelta increase irate last_over_time max_over_time min_over_time predict_linear present_over_time
		quantile_over_time rate resets stddev_over_time stdvar_over_time sum_over_time`)
	promQLAggr = strings.Fields(`avg bottomk count count_values group max min quantile stddev stdvar sum topk`)
)

// exprNames checks expr as PromQL and returns the metric names it selects.
func exprNames(t *testing.T, where, expr string) []string {
	t.Helper()
	e, err := metricsql.Parse(expr)
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", where, expr, err)
		return nil
	}
	var out []string
	metricsql.VisitAll(e, func(n metricsql.Expr) {
		switch x := n.(type) {
		case *metricsql.MetricExpr:
			for _, fs := range x.LabelFilterss {
				if len(fs) > 0 && fs[0].Label == "__name__" {
					out = append(out, fs[0].Value)
				}
			}
		case *metricsql.FuncExpr:
			if !slices.Contains(promQLFuncs, x.Name) {
				t.Errorf("%s: %s is not a PromQL function", where, x.Name)
			}
			if slices.Contains(promQLRange, x.Name) {
				if r, ok := x.Args[len(x.Args)-1].(*metricsql.RollupExpr); !ok || r.Window == nil {
					t.Errorf("%s: %s needs a range vector (name[5m]) in PromQL", where, x.Name)
				}
			}
		case *metricsql.AggrFuncExpr:
			if !slices.Contains(promQLAggr, x.Name) {
				t.Errorf("%s: %s is not a PromQL aggregation", where, x.Name)
			}
		}
	})
	if len(out) == 0 && !strings.Contains(expr, "vector(") {
		t.Errorf("%s: %q selects no metric", where, expr)
	}
	return out
}

// exported reports whether name is a family the code exports, or a series of
// one of its histograms.
func exported(names map[string]bool, name string) bool {
	if names[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && names[base] {
			return true
		}
	}
	return false
}

// TestDeployFilesUseExportedMetrics: the alert rules are a valid Prometheus
// rule file (structure, PromQL, durations, templates), the Grafana
// dashboard's queries are PromQL, and every metric either file names is one
// the code exports.
func TestDeployFilesUseExportedMetrics(t *testing.T) {
	names := exportedNames(t)
	used := map[string][]string{} // metric → where

	for _, r := range parseRules(t, filepath.Join("..", "..", "deploy", "prometheus", "alerts.yml")) {
		for _, n := range exprNames(t, "alert "+r.Alert, r.Expr) {
			used[n] = append(used[n], "alert "+r.Alert)
		}
	}

	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "adclick.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("adclick.json: %v", err)
	}
	// Grafana's interval variables are not PromQL: give them a value.
	vars := strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$__range", "1h")
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, n := range exprNames(t, "panel "+p.Title, vars.Replace(tg.Expr)) {
				used[n] = append(used[n], "panel "+p.Title)
			}
		}
	}

	var missing []string
	for n, where := range used {
		if !exported(names, n) {
			missing = append(missing, n+" (used by "+strings.Join(where, ", ")+")")
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("not exported by any adclick component: %s", m)
	}
	if len(used) < 20 {
		t.Errorf("the deploy files use only %d metrics: %v", len(used), used)
	}
}

// rule is one alerting rule of a Prometheus rule file.
type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// parseRules reads a rule file as Prometheus does (unknown fields refused)
// and checks what Prometheus checks of each rule besides its PromQL: a name,
// an expression, durations, label names and the annotation templates.
func parseRules(t *testing.T, path string) []rule {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name     string `yaml:"name"`
			Interval string `yaml:"interval"`
			Rules    []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []rule
	seen := map[string]bool{}
	for _, g := range file.Groups {
		if g.Name == "" || seen[g.Name] || len(g.Rules) == 0 {
			t.Errorf("rule group %q: a group needs a unique name and rules", g.Name)
		}
		seen[g.Name] = true
		for _, r := range g.Rules {
			checkRule(t, r)
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no rule", path)
	}
	return out
}

// templateFuncs are Prometheus's template functions the rules may use.
var templateFuncs = template.FuncMap{
	"humanize": fmtValue, "humanize1024": fmtValue, "humanizeDuration": fmtValue, "humanizePercentage": fmtValue,
	"humanizeTimestamp": fmtValue, "toUpper": strings.ToUpper, "toLower": strings.ToLower, "title": strings.ToTitle,
}

func fmtValue(v any) string { return "1" }

func checkRule(t *testing.T, r rule) {
	t.Helper()
	if (r.Alert == "") == (r.Record == "") || strings.TrimSpace(r.Expr) == "" {
		t.Errorf("rule %q%q: exactly one of alert and record, and an expr, are required", r.Alert, r.Record)
	}
	if r.For != "" {
		if _, err := model.ParseDuration(r.For); err != nil {
			t.Errorf("alert %s: for %q: %v", r.Alert, r.For, err)
		}
	}
	for k := range r.Labels {
		if !model.UTF8Validation.IsValidLabelName(k) {
			t.Errorf("alert %s: label name %q", r.Alert, k)
		}
	}
	// As Prometheus expands them: $labels and $value defined first.
	const preamble = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"
	data := map[string]any{"Labels": map[string]string{"group": "g", "topic": "t", "kind": "count"}, "ExternalLabels": map[string]string{}, "ExternalURL": "", "Value": 1.0}
	for k, text := range r.Annotations {
		tm, err := template.New(k).Funcs(templateFuncs).Option("missingkey=zero").Parse(preamble + text)
		if err == nil {
			err = tm.Execute(&bytes.Buffer{}, data)
		}
		if err != nil {
			t.Errorf("alert %s: annotation %s: %v", r.Alert, k, err)
		}
	}
}
