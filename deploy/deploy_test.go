package deploy

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"selfhost.dev/edgeapp/internal/testserver"
)

// root is the repository root, seen from this package's directory.
const root = ".."

const (
	installPrometheus   = "apt-get install prometheus (promtool, prometheus)"
	installAlertmanager = "apt-get install prometheus-alertmanager (amtool, prometheus-alertmanager)"
)

// tool finds a checker binary or skips the test, saying how to install it.
func tool(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testserver.Skip(t, "%s not found: %s", name, install)
	}
	return p
}

// run runs a checker and fails the test with its output if it fails.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtoolCheckConfig(t *testing.T) {
	promtool := tool(t, "promtool", installPrometheus)
	// Checks the rule files it names too.
	run(t, "prometheus", nil, promtool, "check", "config", "prometheus.yml")
}

func TestPromtoolCheckRules(t *testing.T) {
	promtool := tool(t, "promtool", installPrometheus)
	run(t, "prometheus", nil, promtool, "check", "rules", "alert-rules.yml", "slo-rules.yml")
}

func TestPromtoolTestRules(t *testing.T) {
	promtool := tool(t, "promtool", installPrometheus)
	tests, err := filepath.Glob("prometheus/*.test.yml")
	if err != nil || len(tests) < 2 {
		t.Fatalf("want unit tests for alert-rules.yml and slo-rules.yml, found %v (%v)", tests, err)
	}
	for i := range tests {
		tests[i] = filepath.Base(tests[i])
	}
	run(t, "prometheus", nil, promtool, append([]string{"test", "rules"}, tests...)...)
}

// Every alert the issue names exists, with the labels Alertmanager routes
// and inhibits on.
func TestAlertRulesNamed(t *testing.T) {
	want := []string{
		"HighErrorRate", "ProbeDown", "ProbeSlow", "HighMemoryUsage", "EdgeConfigReloadFailed",
		"AuthBruteForce", "OutboxBacklog", "UploadErrors", "UpstreamDown", "NoHealthyUpstream", "TLSCertificateExpiringSoon",
		"EdgeAvailabilityBudgetBurnFast", "EdgeAvailabilityBudgetBurnSlow",
		"EdgeLatencyBudgetBurnFast", "EdgeLatencyBudgetBurnSlow",
	}
	var rules ruleFile
	have := map[string]bool{}
	for _, f := range []string{"prometheus/alert-rules.yml", "prometheus/slo-rules.yml"} {
		readYAML(t, f, &rules)
		for _, g := range rules.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				have[r.Alert] = true
				if sev := r.Labels["severity"]; sev != "critical" && sev != "warning" {
					t.Errorf("%s: %s: severity %q, want critical or warning", f, r.Alert, sev)
				}
				// ProbeDown and ProbeSlow take service from the probed target.
				if r.Labels["service"] == "" && !strings.HasPrefix(r.Alert, "Probe") {
					t.Errorf("%s: %s has no service label: inhibition matches on it", f, r.Alert)
				}
				if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
					t.Errorf("%s: %s needs a summary and a description", f, r.Alert)
				}
			}
		}
	}
	for _, a := range want {
		if !have[a] {
			t.Errorf("alert %s missing", a)
		}
	}
}

func TestAmtoolCheckConfig(t *testing.T) {
	amtool := tool(t, "amtool", installAlertmanager)
	run(t, "alertmanager", nil, amtool, "check-config", "alertmanager.yml")
	// Critical pages (mail and chat), warnings go to chat, and so does
	// anything without a severity.
	for labels, receiver := range map[string]string{
		"severity=critical service=app": "page",
		"severity=warning service=app":  "slack",
		"service=app":                   "slack",
	} {
		args := append([]string{"config", "routes", "test", "--config.file=alertmanager.yml", "--verify.receivers=" + receiver}, strings.Fields(labels)...)
		run(t, "alertmanager", nil, amtool, args...)
	}
}

// The shipped alertmanager.yml loads in the real Alertmanager under its
// sub-path, with its secrets read from files; the shipped rules load in the
// real Prometheus. Neither is given a target to reach, so nothing leaves
// loopback.
func TestRealServersLoadShippedConfigs(t *testing.T) {
	t.Parallel()
	secrets := t.TempDir()
	for name, v := range map[string]string{"smtp_password": "x", "slack_webhook": "http://127.0.0.1:9/hook"} {
		if err := os.WriteFile(filepath.Join(secrets, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	am := testserver.StartAlertmanager(t, testserver.AlertmanagerConfig{
		Config:      strings.ReplaceAll(readFile(t, "alertmanager/alertmanager.yml"), "/run/secrets", secrets),
		ExternalURL: "http://127.0.0.1:1/alertmanager/",
	})
	prom := testserver.StartPrometheus(t, testserver.PrometheusConfig{
		Config: "global: {evaluation_interval: 1m}\nrule_files: [alert-rules.yml, slo-rules.yml]\n",
		Files: map[string]string{
			"alert-rules.yml": readFile(t, "prometheus/alert-rules.yml"),
			"slo-rules.yml":   readFile(t, "prometheus/slo-rules.yml"),
		},
		ExternalURL: "http://127.0.0.1:1/prometheus/",
	})

	var status struct {
		Config struct {
			Original string `json:"original"`
		} `json:"config"`
	}
	getJSON(t, am.URL+"/api/v2/status", &status)
	if !strings.Contains(status.Config.Original, "inhibit_rules") {
		t.Errorf("Alertmanager's loaded config has no inhibit_rules:\n%s", status.Config.Original)
	}

	var rules struct {
		Data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name   string `json:"name"`
					Health string `json:"health"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	getJSON(t, prom.URL+"/api/v1/rules", &rules)
	n := 0
	for _, g := range rules.Data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health == "err" {
				t.Errorf("rule %s in %s: health %q", r.Name, g.Name, r.Health)
			}
		}
	}
	if n < 20 {
		t.Errorf("Prometheus loaded %d rules, want every rule of both files", n)
	}

	// Every PromQL query of the dashboards parses in the real server, with
	// Grafana's variables as Grafana would fill them in.
	grafanaVars := strings.NewReplacer("$__rate_interval", "1m", "$__range", "1h", "$route", ".*", "$endpoint", ".*")
	for _, q := range dashboardQueries(t) {
		if q.datasource != "prometheus" {
			continue
		}
		expr := grafanaVars.Replace(q.expr)
		resp, err := http.Get(prom.URL + "/api/v1/query?query=" + url.QueryEscape(expr))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: panel %q: %s: %s", q.file, q.panel, expr, body)
		}
	}
}

// dashboardQuery is one target of one panel of a dashboard.
type dashboardQuery struct {
	file, panel, datasource, expr string
}

func dashboardQueries(t *testing.T) []dashboardQuery {
	t.Helper()
	files, _ := filepath.Glob("grafana/dashboards/*.json")
	var out []dashboardQuery
	for _, f := range files {
		var d struct {
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Datasource struct {
						UID string `json:"uid"`
					} `json:"datasource"`
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal([]byte(readFile(t, f)), &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				out = append(out, dashboardQuery{f, p.Title, tg.Datasource.UID, tg.Expr})
			}
		}
	}
	if len(out) < 20 {
		t.Fatalf("only %d dashboard queries found", len(out))
	}
	return out
}

func TestTerraformFmt(t *testing.T) {
	terraform := tool(t, "terraform", "terraform 1.11 (preinstalled at /usr/local/bin/terraform on the project's machines)")
	// A throwaway CLI config dir: fmt needs no providers or credentials.
	env := []string{"TF_CLI_CONFIG_FILE=" + filepath.Join(t.TempDir(), "none.tfrc"), "TF_IN_AUTOMATION=1"}
	run(t, "terraform", env, terraform, "fmt", "-check", "-recursive", "-diff", ".")
}

// The systemd units pass systemd-analyze with the real binaries in place
// of /usr/local/bin, and keep their hardening.
func TestSystemdUnits(t *testing.T) {
	analyze := tool(t, "systemd-analyze", "apt-get install systemd")
	bin := buildBinaries(t)
	dir := t.TempDir()
	for _, unit := range []string{"edge.service", "app.service"} {
		text := readFile(t, "systemd/"+unit)
		for _, directive := range []string{
			"DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "ProtectHome=yes",
			"CapabilityBoundingSet=\n", "SystemCallFilter=@system-service",
		} {
			if !strings.Contains(text, directive) {
				t.Errorf("%s: no %q", unit, strings.TrimSpace(directive))
			}
		}
		// Only the edge re-reads its config on SIGHUP; for the app it would be fatal.
		if reload := strings.Contains(text, "ExecReload=/bin/kill -HUP $MAINPID"); reload != (unit == "edge.service") {
			t.Errorf("%s: ExecReload with SIGHUP = %v", unit, reload)
		}
		text = strings.ReplaceAll(text, "/usr/local/bin/", bin+"/")
		if err := os.WriteFile(filepath.Join(dir, unit), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The edge's sockets (socket activation) are named as the edge asks
	// for them.
	for _, name := range []string{"public", "admin"} {
		unit := "edge-" + name + ".socket"
		text := readFile(t, "systemd/"+unit)
		if !strings.Contains(text, "FileDescriptorName="+name+"\n") || !strings.Contains(text, "Service=edge.service\n") {
			t.Errorf("%s: no FileDescriptorName=%s or Service=edge.service", unit, name)
		}
		if err := os.WriteFile(filepath.Join(dir, unit), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, dir, nil, analyze, "verify", "--man=no", "./edge.service", "./app.service", "./edge-public.socket", "./edge-admin.socket")
}

// edge validate accepts the shipped routes.yaml and the compose one, with
// EDGE_ADMIN_HASH set to a real bcrypt hash.
func TestEdgeValidate(t *testing.T) {
	bin := buildBinaries(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse battery staple"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"EDGE_ADMIN_HASH=" + string(hash)}
	for _, f := range []string{filepath.Join(root, "routes.yaml"), filepath.Join("edge", "routes.yaml")} {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		out := run(t, ".", env, filepath.Join(bin, "edge"), "validate", "-config", abs)
		if !strings.Contains(out, "valid") {
			t.Errorf("edge validate %s: %q, want \"valid\"", f, out)
		}
	}
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
	buildOut  []byte
)

// buildBinaries builds cmd/edge and cmd/app once per test binary.
func buildBinaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "deploy-bin-")
		if buildErr != nil {
			return
		}
		// The flags of `make build`, so a built tree's cache serves the test.
		cmd := exec.Command("go", "build", "-trimpath", "-o", buildDir+"/", "./cmd/edge", "./cmd/app")
		cmd.Dir = root
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build ./cmd/edge ./cmd/app: %v\n%s", buildErr, buildOut)
	}
	return buildDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// The names the edge and the app export (issues 2 and 3). A rule or panel
// that spells one wrong would never fire or draw, and nothing else says so.
var exportedMetrics = map[string]bool{
	"edge_requests_total":                               true,
	"edge_request_duration_seconds_bucket":              true,
	"edge_request_duration_seconds_count":               true,
	"edge_request_duration_seconds_sum":                 true,
	"edge_upstream_errors_total":                        true,
	"edge_auth_failures_total":                          true,
	"edge_config_reloads_total":                         true,
	"edge_config_last_reload_success_timestamp_seconds": true,
	"edge_requests_in_flight":                           true,
	"edge_upstream_healthy":                             true,
	"edge_upstream_requests_total":                      true,
	"edge_retries_total":                                true,
	"edge_tls_certificate_expiry_timestamp_seconds":     true,
	"edge_tls_certificate_operations_total":             true,
	"http_requests_total":                               true,
	"http_request_duration_seconds_bucket":              true,
	"http_request_duration_seconds_count":               true,
	"http_request_duration_seconds_sum":                 true,
	"contact_submissions_total":                         true,
	"document_uploads_total":                            true,
	"outbox_jobs_pending":                               true,
	"outbox_job_failures_total":                         true,
}

// ourMetric matches an edge or app metric name, not the tail of a recorded
// name such as slo:edge_latency:slow_ratio_rate5m.
var ourMetric = regexp.MustCompile(`(?:^|[^a-zA-Z0-9_:])((?:edge|http|contact|document|outbox)_[a-z_]+)\b`)

// checkMetricNames reports every edge/app metric name in expr that neither
// exports.
func checkMetricNames(t *testing.T, where, expr string) {
	t.Helper()
	for _, m := range ourMetric.FindAllStringSubmatch(expr, -1) {
		if name := m[1]; !exportedMetrics[name] {
			t.Errorf("%s: %s is not a metric the edge or the app exports", where, name)
		}
	}
}

func TestRuleMetricNames(t *testing.T) {
	for _, f := range []string{"prometheus/alert-rules.yml", "prometheus/slo-rules.yml"} {
		var rules ruleFile
		readYAML(t, f, &rules)
		for _, g := range rules.Groups {
			for _, r := range g.Rules {
				checkMetricNames(t, f+": "+r.Alert+r.Record, r.Expr)
			}
		}
	}
}

// The dashboards parse, have distinct uids, use only the provisioned
// datasources, and query only metrics that exist.
func TestDashboards(t *testing.T) {
	var ds struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, "grafana/provisioning/datasources/datasources.yml", &ds)
	provisioned := map[string]bool{}
	for _, d := range ds.Datasources {
		provisioned[d.UID] = true
		if d.Type == "prometheus" && !strings.HasSuffix(d.URL, "/prometheus") {
			t.Errorf("Prometheus datasource %s: URL %q lacks the /prometheus route prefix", d.UID, d.URL)
		}
	}

	files, _ := filepath.Glob("grafana/dashboards/*.json")
	if len(files) != 3 {
		t.Fatalf("want the edge, app and host dashboards, found %v", files)
	}
	uids := map[string]string{}
	for _, f := range files {
		var d struct {
			UID    string `json:"uid"`
			Title  string `json:"title"`
			Panels []struct {
				Title      string `json:"title"`
				Datasource struct {
					UID string `json:"uid"`
				} `json:"datasource"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal([]byte(readFile(t, f)), &d); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: no uid or title", f)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share uid %q", f, other, d.UID)
		}
		uids[d.UID] = f
		if len(d.Panels) < 5 {
			t.Errorf("%s: %d panels", f, len(d.Panels))
		}
		for _, p := range d.Panels {
			if !provisioned[p.Datasource.UID] {
				t.Errorf("%s: panel %q uses datasource %q, not a provisioned one", f, p.Title, p.Datasource.UID)
			}
			for _, tg := range p.Targets {
				checkMetricNames(t, f+": "+p.Title, tg.Expr)
			}
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, body)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestBlackboxConfigCheck(t *testing.T) {
	bbx := tool(t, "prometheus-blackbox-exporter", "apt-get install prometheus-blackbox-exporter")
	run(t, "blackbox", nil, bbx, "--config.check", "--config.file=blackbox.yml")
}

// The probe modules mean what prometheus.yml uses them for, against the
// real exporter: http_401 passes only for a Basic Auth challenge (a
// dashboard left open fails it), http_2xx for a healthy endpoint.
func TestBlackboxModules(t *testing.T) {
	t.Parallel()
	bbx := testserver.StartBlackboxExporter(t, readFile(t, "blackbox/blackbox.yml"))
	mux := http.NewServeMux()
	mux.HandleFunc("/protected", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="edge"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	})
	mux.HandleFunc("/open", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "dashboard") })
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/open", http.StatusFound) })
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	for _, c := range []struct {
		module, target string
		success        bool
	}{
		{"http_401", srv.URL + "/protected", true},
		{"http_401", srv.URL + "/open", false},
		{"http_401", srv.URL + "/redirect", false},
		{"http_2xx", srv.URL + "/open", true},
		{"http_2xx", srv.URL + "/down", false},
		{"http_2xx", srv.URL + "/redirect", false},
		{"tcp_connect", srv.Listener.Addr().String(), true},
	} {
		resp, err := http.Get(bbx.URL + "/probe?module=" + c.module + "&target=" + url.QueryEscape(c.target))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := "probe_success 0"
		if c.success {
			want = "probe_success 1"
		}
		if !strings.Contains(string(body), "\n"+want+"\n") {
			t.Errorf("module %s on %s: want %q in\n%s", c.module, c.target, want, body)
		}
	}
}

// Promtail's labels stay few and bounded: every label a pipeline sets is
// one of these, and nothing per request (request_id, path, client_ip,
// user) becomes one.
func TestPromtailLabelsBounded(t *testing.T) {
	allowed := map[string]bool{"service": true, "stream": true, "level": true, "route": true, "status": true}
	var cfg struct {
		ScrapeConfigs []struct {
			RelabelConfigs []struct {
				TargetLabel string `yaml:"target_label"`
			} `yaml:"relabel_configs"`
			PipelineStages []map[string]yaml.Node `yaml:"pipeline_stages"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "promtail/promtail.yml", &cfg)
	var labels []string
	var walk func(stages []map[string]yaml.Node)
	walk = func(stages []map[string]yaml.Node) {
		for _, stage := range stages {
			for kind, node := range stage {
				switch kind {
				case "labels":
					var m map[string]any
					if err := node.Decode(&m); err != nil {
						t.Fatal(err)
					}
					labels = append(labels, sortedKeys(m)...)
				case "match":
					var m struct {
						Stages []map[string]yaml.Node `yaml:"stages"`
					}
					if err := node.Decode(&m); err != nil {
						t.Fatal(err)
					}
					walk(m.Stages)
				}
			}
		}
	}
	for _, sc := range cfg.ScrapeConfigs {
		for _, rc := range sc.RelabelConfigs {
			labels = append(labels, rc.TargetLabel)
		}
		walk(sc.PipelineStages)
	}
	if len(labels) == 0 {
		t.Fatal("no labels found: the test no longer reads promtail.yml's shape")
	}
	for _, l := range labels {
		if !allowed[l] {
			t.Errorf("promtail sets label %q: per-request values belong in the log line, not in a Loki label", l)
		}
	}
}

// The images carry static binaries on distroless with no shell: nothing
// the binaries import needs cgo (so CGO_ENABLED=0 builds the same program,
// with no dynamic loader), and the final stage runs nothing and switches to
// a non-root user. The check lists packages rather than compiling: a
// CGO_ENABLED=0 build shares no cache with the race-enabled test builds.
func TestDockerImages(t *testing.T) {
	pkgs := []string{"./cmd/edge", "./cmd/app", "./deploy/docker/healthcheck"}
	out := run(t, root, nil, "go", append([]string{"list", "-deps", "-f", "{{if and (not .Standard) .CgoFiles}}{{.ImportPath}}{{end}}"}, pkgs...)...)
	if cgo := strings.TrimSpace(out); cgo != "" {
		t.Errorf("packages that need cgo, which the static images cannot have:\n%s", cgo)
	}
	out = run(t, root, []string{"CGO_ENABLED=0"}, "go", append([]string{"list", "-e", "-deps", "-f", "{{with .Error}}{{.}}{{end}}"}, pkgs...)...)
	if errs := strings.TrimSpace(out); errs != "" {
		t.Errorf("with CGO_ENABLED=0:\n%s", errs)
	}

	fromLine := regexp.MustCompile(`^FROM\s+(\S+)(?:\s+AS\s+\S+)?$`)
	for _, df := range []string{"docker/edge.Dockerfile", "docker/app.Dockerfile"} {
		var stages [][]string // the instructions of each stage
		for _, line := range strings.Split(readFile(t, df), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if m := fromLine.FindStringSubmatch(line); m != nil {
				image := m[1]
				if i := strings.LastIndex(image, ":"); i < 0 || strings.Contains(image[i:], "/") || image[i+1:] == "latest" {
					t.Errorf("%s: %s is not pinned to a tag", df, image)
				}
				stages = append(stages, []string{line})
				continue
			}
			if len(stages) > 0 {
				stages[len(stages)-1] = append(stages[len(stages)-1], line)
			}
		}
		if len(stages) < 2 {
			t.Errorf("%s: %d stages, want a build stage and a runtime stage", df, len(stages))
			continue
		}
		build, final := strings.Join(stages[0], "\n"), stages[len(stages)-1]
		if !strings.Contains(build, "CGO_ENABLED=0") {
			t.Errorf("%s: the build stage does not set CGO_ENABLED=0", df)
		}
		if !strings.Contains(final[0], "distroless/static") {
			t.Errorf("%s: runtime image %q, want distroless static", df, final[0])
		}
		user := ""
		for _, ins := range final[1:] {
			if strings.HasPrefix(ins, "RUN ") {
				t.Errorf("%s: the runtime stage runs %q: it has no shell", df, ins)
			}
			if u, ok := strings.CutPrefix(ins, "USER "); ok {
				user = u
			}
		}
		if user == "" || strings.HasPrefix(user, "root") || strings.HasPrefix(user, "0") {
			t.Errorf("%s: runtime user %q, want a non-root one", df, user)
		}
	}
}
