package deploy

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// composeFile is the part of docker-compose.yml the tests look at.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Networks map[string]struct {
		IPAM struct {
			Config []struct {
				Subnet string `yaml:"subnet"`
			} `yaml:"config"`
		} `yaml:"ipam"`
	} `yaml:"networks"`
	Volumes map[string]any `yaml:"volumes"`
	Secrets map[string]struct {
		Environment string `yaml:"environment"`
		File        string `yaml:"file"`
	} `yaml:"secrets"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Command     any               `yaml:"command"`
	Ports       []string          `yaml:"ports"`
	Expose      []string          `yaml:"expose"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Secrets     []string          `yaml:"secrets"`
	Profiles    []string          `yaml:"profiles"`
	Restart     string            `yaml:"restart"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	// Networks is filled by UnmarshalYAML from either compose spelling.
	Networks map[string]*struct {
		IPv4Address string `yaml:"ipv4_address"`
	} `yaml:"-"`
}

// UnmarshalYAML accepts networks as a list or a map, as compose does.
func (s *composeService) UnmarshalYAML(n *yaml.Node) error {
	type plain composeService
	var raw struct {
		plain    `yaml:",inline"`
		Networks yaml.Node `yaml:"networks"`
	}
	if err := n.Decode(&raw); err != nil {
		return err
	}
	*s = composeService(raw.plain)
	s.Networks = map[string]*struct {
		IPv4Address string `yaml:"ipv4_address"`
	}{}
	switch raw.Networks.Kind {
	case yaml.SequenceNode:
		var names []string
		if err := raw.Networks.Decode(&names); err != nil {
			return err
		}
		for _, name := range names {
			s.Networks[name] = nil
		}
	case yaml.MappingNode:
		return raw.Networks.Decode(&s.Networks)
	}
	return nil
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	readYAML(t, filepath.Join(root, "docker-compose.yml"), &c)
	return c
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The services the issue lists, and nothing published but the edge.
func TestComposeServices(t *testing.T) {
	c := loadCompose(t)
	for _, name := range []string{
		"edge", "app", "postgres", "minio", "meilisearch", "prometheus", "alertmanager", "grafana",
		"loki", "promtail", "node-exporter", "cadvisor", "blackbox-exporter", "cloudflared",
	} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if len(s.Ports) > 0 && name != "edge" && name != "edge-tls" {
			t.Errorf("%s publishes %v: only the edge may have a public port", name, s.Ports)
		}
		if s.Restart == "" && len(s.Profiles) == 0 {
			t.Errorf("%s has no restart policy", name)
		}
	}
	if len(c.Services["edge"].Ports) != 1 {
		t.Errorf("edge publishes %v, want exactly its one port", c.Services["edge"].Ports)
	}
	if p := c.Services["cloudflared"].Profiles; len(p) == 0 {
		t.Errorf("cloudflared must sit in a profile, so the stack runs without a tunnel")
	}
}

// Every service that always runs says how to tell it is healthy (the
// tunnel, in its profile, is watched through the edge instead).
func TestComposeHealthchecks(t *testing.T) {
	c := loadCompose(t)
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if len(s.Profiles) > 0 {
			continue
		}
		if s.Healthcheck == nil || len(s.Healthcheck.Test) < 2 {
			t.Errorf("%s has no healthcheck", name)
		}
	}
}

// Images are pinned; the two we build are tagged :local.
func TestComposeImagesPinned(t *testing.T) {
	c := loadCompose(t)
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if s.Build != nil {
			continue
		}
		i := strings.LastIndex(s.Image, ":")
		if i < 0 || strings.Contains(s.Image[i:], "/") || s.Image[i+1:] == "latest" {
			t.Errorf("%s: image %q has no pinned tag", name, s.Image)
		}
	}
}

// Data lives in declared named volumes, config comes from files that exist
// in the repository, and every secret a service uses is declared.
func TestComposeVolumesAndSecrets(t *testing.T) {
	c := loadCompose(t)
	used := map[string]bool{}
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			switch {
			case strings.HasPrefix(src, "./"):
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			case strings.HasPrefix(src, "/"):
				// A host path: the exporters read the host.
			default:
				used[src] = true
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("%s uses volume %q, not declared under volumes:", name, src)
				}
			}
		}
		for _, sec := range s.Secrets {
			if _, ok := c.Secrets[sec]; !ok {
				t.Errorf("%s uses secret %q, not declared under secrets:", name, sec)
			}
		}
	}
	for v := range c.Volumes {
		if !used[v] {
			t.Errorf("volume %s is declared but no service uses it", v)
		}
	}
	for _, stateful := range []string{"app", "postgres", "minio", "meilisearch", "prometheus", "grafana", "loki"} {
		named := false
		for _, v := range c.Services[stateful].Volumes {
			src, _, _ := strings.Cut(v, ":")
			named = named || used[src]
		}
		if !named {
			t.Errorf("%s keeps its data outside a named volume", stateful)
		}
	}
	// The .env.example names every variable the secrets read.
	example := readFile(t, filepath.Join(root, ".env.example"))
	for name, sec := range c.Secrets {
		if sec.Environment != "" && !strings.Contains(example, "\n"+sec.Environment+"=") {
			t.Errorf("secret %s reads %s, missing from .env.example", name, sec.Environment)
		}
	}
}

// Every upstream the compose routes file points at is a compose service,
// on the port that service listens on, and the file routes the same paths
// with the same protection as the shipped routes.yaml.
func TestComposeRoutes(t *testing.T) {
	c := loadCompose(t)
	type route struct {
		Path        string `yaml:"path"`
		To          string `yaml:"to"`
		Auth        string `yaml:"auth"`
		StripPrefix bool   `yaml:"strip_prefix"`
	}
	var composeRoutes, shipped struct {
		Admin          string   `yaml:"admin"`
		TrustedProxies []string `yaml:"trusted_proxies"`
		Routes         []route  `yaml:"routes"`
	}
	readYAML(t, "edge/routes.yaml", &composeRoutes)
	readYAML(t, filepath.Join(root, "routes.yaml"), &shipped)

	listens := map[string]string{ // service → the port it serves HTTP on
		"app": "8000", "grafana": "3000", "prometheus": "9090", "alertmanager": "9093", "minio": "9001",
	}
	for _, r := range composeRoutes.Routes {
		u, err := url.Parse(r.To)
		if err != nil {
			t.Errorf("route %s: %v", r.Path, err)
			continue
		}
		host, port := u.Hostname(), u.Port()
		if _, ok := c.Services[host]; !ok {
			t.Errorf("route %s points at %q, not a compose service", r.Path, host)
		} else if want := listens[host]; port != want {
			t.Errorf("route %s points at %s:%s, %s listens on %s", r.Path, host, port, host, want)
		}
	}

	key := func(r route) string {
		return r.Path + " auth=" + r.Auth + " strip=" + map[bool]string{true: "y"}[r.StripPrefix]
	}
	var a, b []string
	for _, r := range composeRoutes.Routes {
		a = append(a, key(r))
	}
	for _, r := range shipped.Routes {
		b = append(b, key(r))
	}
	if strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Errorf("compose routes differ from routes.yaml in paths or protection:\ncompose:\n%s\nshipped:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}

	// Prometheus scrapes the admin port, so it must listen beyond loopback
	// inside the container (it is not published).
	if _, port, err := net.SplitHostPort(composeRoutes.Admin); err != nil || port != "9180" {
		t.Errorf("compose routes admin %q, want port 9180 (deploy/prometheus/prometheus.yml scrapes edge:9180)", composeRoutes.Admin)
	}

	// CF-Connecting-IP is believed only from cloudflared's fixed address.
	cf := c.Services["cloudflared"].Networks["internal"]
	if cf == nil || cf.IPv4Address == "" {
		t.Fatalf("cloudflared needs a fixed address on the internal network")
	}
	if len(composeRoutes.TrustedProxies) != 1 || composeRoutes.TrustedProxies[0] != cf.IPv4Address+"/32" {
		t.Errorf("trusted_proxies %v, want only cloudflared's %s/32", composeRoutes.TrustedProxies, cf.IPv4Address)
	}
	_, subnet, err := net.ParseCIDR(c.Networks["internal"].IPAM.Config[0].Subnet)
	if err != nil || !subnet.Contains(net.ParseIP(cf.IPv4Address)) {
		t.Errorf("cloudflared's %s is outside the internal network's subnet (%v)", cf.IPv4Address, err)
	}
}

// Every host Prometheus scrapes or probes is a compose service (or itself).
func TestPrometheusTargetsAreServices(t *testing.T) {
	c := loadCompose(t)
	var cfg struct {
		Alerting struct {
			Alertmanagers []struct {
				StaticConfigs []struct {
					Targets []string `yaml:"targets"`
				} `yaml:"static_configs"`
			} `yaml:"alertmanagers"`
		} `yaml:"alerting"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "prometheus/prometheus.yml", &cfg)
	check := func(job, target string) {
		hostport := target
		if u, err := url.Parse(target); err == nil && u.Host != "" {
			hostport = u.Host
		}
		host, _, err := net.SplitHostPort(hostport)
		if err != nil {
			t.Errorf("%s: target %q: %v", job, target, err)
			return
		}
		if _, ok := c.Services[host]; !ok && host != "localhost" {
			t.Errorf("%s: target %q is not a compose service", job, target)
		}
	}
	n := 0
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				n++
				check(sc.JobName, target)
			}
		}
	}
	for _, am := range cfg.Alerting.Alertmanagers {
		for _, st := range am.StaticConfigs {
			for _, target := range st.Targets {
				check("alerting", target)
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d targets", n)
	}
}

// The dashboards' sub-paths: Prometheus and Alertmanager know their
// external URL, Grafana its root URL and that it serves from the sub-path.
func TestComposeSubPaths(t *testing.T) {
	c := loadCompose(t)
	flags := func(name string) string {
		var parts []string
		switch cmd := c.Services[name].Command.(type) {
		case []any:
			for _, p := range cmd {
				s, _ := p.(string)
				parts = append(parts, s)
			}
		case string:
			parts = strings.Fields(cmd)
		}
		return strings.Join(parts, " ")
	}
	for name, prefix := range map[string]string{"prometheus": "/prometheus", "alertmanager": "/alertmanager"} {
		f := flags(name)
		if !strings.Contains(f, prefix+"/ ") && !strings.HasSuffix(f, prefix+"/") || !strings.Contains(f, "--web.external-url=") {
			t.Errorf("%s: flags %q lack --web.external-url=...%s/", name, f, prefix)
		}
		if !strings.Contains(f, "--web.route-prefix="+prefix) {
			t.Errorf("%s: flags %q lack --web.route-prefix=%s", name, f, prefix)
		}
	}
	g := c.Services["grafana"].Environment
	if !strings.HasSuffix(g["GF_SERVER_ROOT_URL"], "/grafana/") || g["GF_SERVER_SERVE_FROM_SUB_PATH"] != "true" {
		t.Errorf("grafana: root_url %q, serve_from_sub_path %q", g["GF_SERVER_ROOT_URL"], g["GF_SERVER_SERVE_FROM_SUB_PATH"])
	}
	if g["GF_AUTH_BASIC_ENABLED"] != "false" || g["GF_AUTH_DISABLE_LOGIN_FORM"] != "true" {
		t.Errorf("grafana: its own login must be off behind the edge's Basic Auth")
	}
}
