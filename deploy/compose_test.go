package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"
)

const (
	composeDir        = "compose"
	composeFile       = "compose/docker-compose.yml"
	composePrometheus = "compose/prometheus.yml"
	grafanaDatasource = "compose/grafana/provisioning/datasources/prometheus.yml"
	grafanaProvider   = "compose/grafana/provisioning/dashboards/hashrelay.yml"
	// defaultMaxConnections is -max-connections' default (README).
	defaultMaxConnections = 19000
)

// loadCompose loads a compose file as `docker compose config` would, with the
// Compose Specification's loader: schema validation, interpolation (with
// HASHRELAY_UPSTREAM set as an operator would), normalization, consistency
// checks, paths resolved against deploy/compose. It needs no Docker engine and
// no network: nothing here pulls or builds an image.
func loadCompose(t *testing.T, content []byte) (*types.Project, error) {
	t.Helper()
	wd, err := filepath.Abs(composeDir)
	if err != nil {
		t.Fatal(err)
	}
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  wd,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(wd, filepath.Base(composeFile)), Content: content}},
		Environment: types.Mapping{"HASHRELAY_UPSTREAM": "stratum+tcp://a:x@pool.example.com:3333"},
	}, func(o *loader.Options) { o.ResolvePaths = true })
}

// composeProblems cross-checks the stack against HashRelay and the repository.
func composeProblems(p *types.Project, flags map[string]bool, uid int64) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	for _, name := range []string{"hashrelay", "prometheus", "grafana"} {
		if _, ok := p.Services[name]; !ok {
			add("no service %s", name)
		}
	}
	h, ok := p.Services["hashrelay"]
	if !ok {
		return problems
	}

	// Built from the repository's Dockerfile.
	root, _ := filepath.Abs("..")
	if h.Build == nil {
		add("hashrelay: no build")
	} else if h.Build.Context != root || h.Build.Dockerfile != "Dockerfile" {
		add("hashrelay: build context %s dockerfile %s; want the repository %s and its Dockerfile", h.Build.Context, h.Build.Dockerfile, root)
	}

	// Configuration.
	env := make(map[string]string)
	for k, v := range h.Environment {
		if v != nil {
			env[k] = *v
		} else {
			env[k] = ""
		}
	}
	problems = append(problems, unknownEnv("hashrelay environment", slices.Sorted(maps.Keys(env)), flags, false)...)
	s := settings{where: "hashrelay", env: env, problems: &problems}
	listen, http := s.port("HASHRELAY_LISTEN"), s.port("HASHRELAY_HTTP")

	if want := []string{"CMD", "/hashrelay", "healthcheck"}; h.HealthCheck == nil || !slices.Equal(h.HealthCheck.Test, want) {
		add("hashrelay: healthcheck %v; want exec form %q (the image has no shell)", h.HealthCheck, want)
	}

	// Shutdown: the drain fits in the grace period, the jitter in the drain.
	shutdown := s.duration("HASHRELAY_SHUTDOWN_TIMEOUT")
	jitter := s.duration("HASHRELAY_RECONNECT_JITTER")
	grace := 10 * time.Second // Docker's default
	if h.StopGracePeriod != nil {
		grace = time.Duration(*h.StopGracePeriod)
	}
	if grace <= shutdown {
		add("hashrelay: stop_grace_period %v; want above HASHRELAY_SHUTDOWN_TIMEOUT %v", grace, shutdown)
	}
	if jitter >= shutdown {
		add("hashrelay: HASHRELAY_RECONNECT_JITTER %v; want below HASHRELAY_SHUTDOWN_TIMEOUT %v", jitter, shutdown)
	}

	// Security: the image's user, nothing writable but the state volume.
	if u, _, _ := strings.Cut(h.User, ":"); u != strconv.FormatInt(uid, 10) {
		add("hashrelay: user %q; want %d, the Dockerfile's USER", h.User, uid)
	}
	if !h.ReadOnly {
		add("hashrelay: read_only not true")
	}
	if !slices.Contains(h.CapDrop, "ALL") {
		add("hashrelay: cap_drop %v; want ALL", h.CapDrop)
	}
	maxConns := defaultMaxConnections
	if v, ok := env["HASHRELAY_MAX_CONNECTIONS"]; ok {
		maxConns, _ = strconv.Atoi(v)
	}
	if n := h.Ulimits["nofile"]; n == nil || n.Hard < maxConns && n.Single < maxConns {
		add("hashrelay: ulimits nofile %+v; want a hard limit of at least %d, one per miner (HashRelay raises its soft limit to it)", n, maxConns)
	}
	if dir := env["HASHRELAY_STATE_DIR"]; dir == "" {
		add("hashrelay: HASHRELAY_STATE_DIR not set: worker counters restart from zero with every container")
	} else {
		i := slices.IndexFunc(h.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == dir })
		switch {
		case i < 0:
			add("hashrelay: HASHRELAY_STATE_DIR %s: no volume mounted there (the root filesystem is read-only)", dir)
		case h.Volumes[i].ReadOnly:
			add("hashrelay: HASHRELAY_STATE_DIR %s: mounted read-only", dir)
		case h.Volumes[i].Type != types.VolumeTypeVolume:
			add("hashrelay: HASHRELAY_STATE_DIR %s: a %s mount; want a named volume, which takes the image directory's owner", dir, h.Volumes[i].Type)
		}
	}

	// Ports: miners reach the stratum port; everything else, which has no
	// authentication, is on loopback only.
	published := make(map[uint32]bool)
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		for _, port := range p.Services[name].Ports {
			if name == "hashrelay" {
				published[port.Target] = true
				if int32(port.Target) == listen {
					continue
				}
			}
			if port.HostIP != "127.0.0.1" {
				add("%s: port %d published on %q; want 127.0.0.1", name, port.Target, port.HostIP)
			}
		}
	}
	for _, port := range []int32{listen, http} {
		if !published[uint32(port)] {
			add("hashrelay: port %d (HASHRELAY_LISTEN, HASHRELAY_HTTP) not published", port)
		}
	}

	// Bind mounts: every source is in the repository.
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		for _, v := range p.Services[name].Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				add("%s: bind mount source: %v", name, err)
			}
		}
	}
	return problems
}

func TestCompose(t *testing.T) {
	content, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	p, err := loadCompose(t, content)
	if err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	flags, uid := envFlags(t), dockerfileUser(t)
	for _, problem := range composeProblems(p, flags, uid) {
		t.Error(problem)
	}

	// Each check can fail, the schema's included: break a copy of the file.
	for _, c := range []struct{ name, from, to, want string }{
		{"unknown key", "    restart: unless-stopped\n", "    restrat: unless-stopped\n", "restrat"},
		{"misplaced key", "    stop_signal: SIGTERM\n", "    stop_signal: SIGTERM\n    stop_timeout: 45s\n", "stop_timeout"},
		{"bad duration", "stop_grace_period: 45s", "stop_grace_period: soon", "soon"},
		{"undeclared volume", "  hashrelay-state:\n", "", "hashrelay-state"},
		{"no service", "  grafana:\n    image:", "  grafana2:\n    image:", "no service grafana"},
		{"build elsewhere", "context: ../..", "context: ..", "build context"},
		{"unknown variable", "HASHRELAY_LOG_FORMAT:", "HASHRELAY_LOG_FORMT:", "HASHRELAY_LOG_FORMT is not a flag"},
		{"shell healthcheck", `test: ["CMD", "/hashrelay", "healthcheck"]`, `test: ["CMD-SHELL", "/hashrelay healthcheck"]`, "healthcheck"},
		{"short grace", "stop_grace_period: 45s", "stop_grace_period: 30s", "stop_grace_period"},
		{"long jitter", `HASHRELAY_RECONNECT_JITTER: "10s"`, `HASHRELAY_RECONNECT_JITTER: "30s"`, "HASHRELAY_RECONNECT_JITTER"},
		{"root", `user: "65532:65532"`, `user: "0:0"`, `user "0:0"`},
		{"writable", "read_only: true", "read_only: false", "read_only"},
		{"few files", "soft: 65536\n        hard: 65536", "soft: 1024\n        hard: 4096", "nofile"},
		{"no state volume", "      - hashrelay-state:/var/lib/hashrelay\n", "      - hashrelay-state:/state\n", "no volume mounted"},
		{"read-only state", "hashrelay-state:/var/lib/hashrelay", "hashrelay-state:/var/lib/hashrelay:ro", "mounted read-only"},
		{"public dashboard", `"127.0.0.1:8080:8080"`, `"8080:8080"`, "port 8080 published"},
		{"public grafana", `"127.0.0.1:3000:3000"`, `"0.0.0.0:3000:3000"`, "port 3000 published"},
		{"http unpublished", `HASHRELAY_HTTP: "0.0.0.0:8080"`, `HASHRELAY_HTTP: "0.0.0.0:8081"`, "port 8081"},
		{"missing mount", "../prometheus/alerts.yml:", "../prometheus/alert.yml:", "alert.yml"},
	} {
		t.Run(c.name, func(t *testing.T) {
			broken := strings.Replace(string(content), c.from, c.to, 1)
			if broken == string(content) {
				t.Fatalf("%q not in %s", c.from, composeFile)
			}
			p, err := loadCompose(t, []byte(broken))
			if err != nil {
				if !strings.Contains(err.Error(), c.want) {
					t.Errorf("load error %v; want one containing %q", err, c.want)
				}
				return
			}
			if problems := composeProblems(p, flags, uid); !containsProblem(problems, c.want) {
				t.Errorf("problems %q; want one containing %q", problems, c.want)
			}
		})
	}
}

// mountOf returns the container path a service mounts the repository file or
// directory rel (relative to deploy/compose) at, or "".
func mountOf(p *types.Project, service, rel string) string {
	src, _ := filepath.Abs(filepath.Join(composeDir, rel))
	for _, v := range p.Services[service].Volumes {
		if v.Type == types.VolumeTypeBind && v.Source == src {
			return v.Target
		}
	}
	return ""
}

// promConfig is the part of prometheus.yml the test reads.
type promConfig struct {
	RuleFiles     []string `json:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `json:"job_name"`
		StaticConfigs []struct {
			Targets []string `json:"targets"`
		} `json:"static_configs"`
	} `json:"scrape_configs"`
}

// TestComposePrometheus runs promtool check config on the compose stack's
// prometheus.yml with the alert rules beside it, as the container mounts them,
// and checks that it scrapes HashRelay's service as the job the rules expect.
func TestComposePrometheus(t *testing.T) {
	p := mustLoadCompose(t)
	b, err := os.ReadFile(composePrometheus)
	if err != nil {
		t.Fatal(err)
	}
	var cfg promConfig
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s: %v", composePrometheus, err)
	}

	// The container's view: prometheus.yml and the rules where compose mounts them.
	cfgTarget := mountOf(p, "prometheus", "prometheus.yml")
	rulesTarget := mountOf(p, "prometheus", "../prometheus/alerts.yml")
	if cfgTarget == "" || rulesTarget == "" {
		t.Fatalf("prometheus mounts prometheus.yml at %q and alerts.yml at %q; want both", cfgTarget, rulesTarget)
	}
	if len(cfg.RuleFiles) != 1 || path.Join(path.Dir(cfgTarget), cfg.RuleFiles[0]) != rulesTarget {
		t.Errorf("rule_files %q, relative to %s; want the rules' mount %s", cfg.RuleFiles, cfgTarget, rulesTarget)
	}

	var target string
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName == alertJob {
			for _, s := range sc.StaticConfigs {
				target = strings.Join(s.Targets, ",")
			}
		}
	}
	env := p.Services["hashrelay"].Environment["HASHRELAY_HTTP"]
	if env == nil {
		t.Fatal("hashrelay: no HASHRELAY_HTTP")
	}
	_, port, _ := strings.Cut(*env, ":")
	if want := "hashrelay:" + port; target != want {
		t.Errorf("job %s scrapes %q; want %q (the service and HASHRELAY_HTTP's port)", alertJob, target, want)
	}

	pt := promtool(t)
	dir := t.TempDir()
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rules, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	write(path.Base(cfgTarget), b)
	write(path.Base(rulesTarget), rules)
	runPromtool(t, nil, "check", "config", filepath.Join(dir, path.Base(cfgTarget)))

	// And promtool fails what it should: rules missing from beside the config.
	if err := os.Remove(filepath.Join(dir, path.Base(rulesTarget))); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(pt, "check", "config", filepath.Join(dir, path.Base(cfgTarget))).CombinedOutput(); err == nil {
		t.Errorf("promtool check config passed without the rules file:\n%s", out)
	}
}

func mustLoadCompose(t *testing.T) *types.Project {
	t.Helper()
	content, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	p, err := loadCompose(t, content)
	if err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	return p
}

// grafanaDatasources and grafanaProviders are the parts of Grafana's
// provisioning files the test reads.
type grafanaDatasources struct {
	APIVersion  int `json:"apiVersion"`
	Datasources []struct {
		UID       string `json:"uid"`
		Type      string `json:"type"`
		URL       string `json:"url"`
		IsDefault bool   `json:"isDefault"`
	} `json:"datasources"`
}

type grafanaProviders struct {
	APIVersion int `json:"apiVersion"`
	Providers  []struct {
		Type    string `json:"type"`
		Options struct {
			Path string `json:"path"`
		} `json:"options"`
	} `json:"providers"`
}

// dashboardDatasource returns what the dashboard's datasource variable picks:
// the plugin type it lists and, when one is saved, the current data source uid.
func dashboardDatasource(t *testing.T) (pluginType, uid string) {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Templating struct {
			List []struct {
				Name    string          `json:"name"`
				Type    string          `json:"type"`
				Query   json.RawMessage `json:"query"`
				Current struct {
					Value any `json:"value"`
				} `json:"current"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && v.Name == "datasource" {
			if err := json.Unmarshal(v.Query, &pluginType); err != nil {
				t.Fatalf("%s: datasource variable query: %v", dashboardFile, err)
			}
			uid, _ := v.Current.Value.(string)
			return pluginType, uid
		}
	}
	t.Fatalf("%s: no datasource variable", dashboardFile)
	return "", ""
}

// grafanaProblems checks that the provisioned data source is the one the
// dashboard's variable selects, that it points at the Prometheus service, and
// that the dashboard provider reads where compose mounts the dashboard.
func grafanaProblems(p *types.Project, ds grafanaDatasources, prov grafanaProviders, pluginType, uid string) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for rel, want := range map[string]string{
		"grafana/provisioning/datasources": "/etc/grafana/provisioning/datasources",
		"grafana/provisioning/dashboards":  "/etc/grafana/provisioning/dashboards",
	} {
		if got := mountOf(p, "grafana", rel); got != want {
			add("grafana: %s mounted at %q; want %s", rel, got, want)
		}
	}
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 {
		add("datasources: apiVersion %d, %d data sources; want 1 and 1", ds.APIVersion, len(ds.Datasources))
	} else {
		d := ds.Datasources[0]
		if d.Type != pluginType {
			add("datasource type %q; the dashboard's variable lists %q", d.Type, pluginType)
		}
		if uid != "" && d.UID != uid {
			add("datasource uid %q; the dashboard's variable has %q", d.UID, uid)
		}
		if uid == "" && !d.IsDefault {
			add("datasource %q is not the default, which the dashboard's variable (no saved value) picks", d.UID)
		}
		u, err := url.Parse(d.URL)
		if err != nil {
			add("datasource url: %v", err)
		} else if _, ok := p.Services[u.Hostname()]; !ok || u.Hostname() != "prometheus" {
			add("datasource url %s; want the prometheus service", d.URL)
		}
	}
	dash := mountOf(p, "grafana", "../grafana/hashrelay.json")
	if dash == "" {
		add("grafana: ../grafana/hashrelay.json not mounted")
	}
	if prov.APIVersion != 1 || len(prov.Providers) != 1 {
		add("dashboards: apiVersion %d, %d providers; want 1 and 1", prov.APIVersion, len(prov.Providers))
	} else if pr := prov.Providers[0]; pr.Type != "file" || pr.Options.Path != path.Dir(dash) {
		add("dashboard provider %s reads %q; the dashboard is mounted at %q", pr.Type, pr.Options.Path, dash)
	}
	return problems
}

func TestComposeGrafana(t *testing.T) {
	p := mustLoadCompose(t)
	var ds grafanaDatasources
	var prov grafanaProviders
	for f, v := range map[string]any{grafanaDatasource: &ds, grafanaProvider: &prov} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	pluginType, uid := dashboardDatasource(t)
	for _, problem := range grafanaProblems(p, ds, prov, pluginType, uid) {
		t.Error(problem)
	}

	for _, c := range []struct {
		name   string
		mutate func(ds *grafanaDatasources, prov *grafanaProviders)
		uid    string
		want   string
	}{
		{"type", func(ds *grafanaDatasources, _ *grafanaProviders) { ds.Datasources[0].Type = "loki" }, uid, "datasource type"},
		{"uid", func(*grafanaDatasources, *grafanaProviders) {}, "mimir", `the dashboard's variable has "mimir"`},
		{"not default", func(ds *grafanaDatasources, _ *grafanaProviders) { ds.Datasources[0].IsDefault = false }, "", "not the default"},
		{"url", func(ds *grafanaDatasources, _ *grafanaProviders) { ds.Datasources[0].URL = "http://localhost:9090" }, uid, "want the prometheus service"},
		{"provider path", func(_ *grafanaDatasources, prov *grafanaProviders) { prov.Providers[0].Options.Path = "/dashboards" }, uid, "dashboard provider"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ds2, prov2 := ds, prov
			ds2.Datasources = slices.Clone(ds.Datasources)
			prov2.Providers = slices.Clone(prov.Providers)
			c.mutate(&ds2, &prov2)
			if problems := grafanaProblems(p, ds2, prov2, pluginType, c.uid); !containsProblem(problems, c.want) {
				t.Errorf("problems %q; want one containing %q", problems, c.want)
			}
		})
	}
}
