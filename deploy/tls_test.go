package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// The compose `tls` profile: its own edge publishing 80 and 443, its
// certificates in a named volume at the routes file's storage, the same
// routes as the compose routes.yaml, and a file `edge validate` accepts.
func TestComposeTLSProfile(t *testing.T) {
	c := loadCompose(t)
	s, ok := c.Services["edge-tls"]
	if !ok {
		t.Fatal("no edge-tls service")
	}
	if !slices.Equal(s.Profiles, []string{"tls"}) {
		t.Errorf("edge-tls profiles %v, want [tls]: without the profile the stack runs behind the tunnel only", s.Profiles)
	}
	if !slices.Equal(s.Ports, []string{"80:80", "443:443"}) {
		t.Errorf("edge-tls publishes %v, want 80 and 443", s.Ports)
	}
	if !slices.Contains(s.Volumes, "edge-certs:/var/lib/edge/certs") {
		t.Errorf("edge-tls volumes %v: certificates must persist in a named volume, or every start orders again", s.Volumes)
	}

	type route struct {
		Path        string `yaml:"path"`
		To          string `yaml:"to"`
		Auth        string `yaml:"auth"`
		StripPrefix bool   `yaml:"strip_prefix"`
		MaxBody     string `yaml:"max_body"`
	}
	var plain, withTLS struct {
		TLS struct {
			Storage    string `yaml:"storage"`
			Listen     string `yaml:"listen"`
			HTTPListen string `yaml:"http_listen"`
		} `yaml:"tls"`
		Routes []route `yaml:"routes"`
	}
	readYAML(t, "edge/routes.yaml", &plain)
	readYAML(t, "edge/routes-tls.yaml", &withTLS)
	if !slices.Equal(plain.Routes, withTLS.Routes) {
		t.Errorf("edge/routes-tls.yaml routes differ from edge/routes.yaml:\n%v\n%v", withTLS.Routes, plain.Routes)
	}
	if withTLS.TLS.Storage != "/var/lib/edge/certs" || withTLS.TLS.Listen != ":443" || withTLS.TLS.HTTPListen != ":80" {
		t.Errorf("routes-tls.yaml tls: %+v", withTLS.TLS)
	}

	bin := buildBinaries(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse battery staple"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("edge/routes-tls.yaml")
	env := []string{"EDGE_ADMIN_HASH=" + string(hash), "EDGE_DOMAIN=example.com", "ACME_EMAIL=ops@example.com"}
	if out := run(t, ".", env, filepath.Join(bin, "edge"), "validate", "-config", abs); !strings.Contains(out, "valid") {
		t.Errorf("edge validate routes-tls.yaml: %q", out)
	}
}

// The TLS drop-in gives the edge exactly CAP_NET_BIND_SERVICE and a state
// directory, and the unit with it still passes systemd-analyze.
func TestSystemdTLSDropIn(t *testing.T) {
	drop := readFile(t, "systemd/edge.service.d/tls.conf")
	for _, d := range []string{
		"CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n", "AmbientCapabilities=CAP_NET_BIND_SERVICE\n",
		"PrivateUsers=no\n", "StateDirectory=edge\n",
	} {
		if !strings.Contains(drop, d) {
			t.Errorf("tls.conf: no %q", strings.TrimSpace(d))
		}
	}
	analyze := tool(t, "systemd-analyze", "apt-get install systemd")
	bin := buildBinaries(t)
	dir := t.TempDir()
	text := readFile(t, "systemd/edge.service") + "\n" + drop
	text = strings.ReplaceAll(text, "/usr/local/bin/", bin+"/")
	if err := os.WriteFile(filepath.Join(dir, "edge.service"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// The unit needs its sockets (socket activation); the TLS ports are
	// bound by the edge itself, with the capability.
	for _, unit := range []string{"edge-public.socket", "edge-admin.socket"} {
		if err := os.WriteFile(filepath.Join(dir, unit), []byte(readFile(t, "systemd/"+unit)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, dir, nil, analyze, "verify", "--man=no", "./edge.service", "./edge-public.socket", "./edge-admin.socket")
}
