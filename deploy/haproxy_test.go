package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const haproxyFile = "haproxy/haproxy.cfg"

// haproxyCheck runs haproxy -c on the config text, with warnings fatal (-dW):
// the file must check clean, not merely valid.
func haproxyCheck(t *testing.T, cfg string) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool(t, "haproxy", "haproxy"), "-dW", "-c", "-f", path).CombinedOutput()
	return string(out), err
}

func TestHAProxyCheck(t *testing.T) {
	cfg := readText(t, haproxyFile)
	if out, err := haproxyCheck(t, cfg); err != nil {
		t.Fatalf("haproxy -dW -c -f %s: %v\n%s", haproxyFile, err, out)
	}
	// The check itself must be able to fail: an error, and a warning (an HTTP
	// log format in a TCP proxy), each in a copy of the file.
	for name, broken := range map[string]string{
		"error":   strings.Replace(cfg, "balance leastconn", "balance leastconnx", 1),
		"warning": strings.Replace(cfg, "option tcplog", "option httplog", 1),
	} {
		t.Run(name, func(t *testing.T) {
			if broken == cfg {
				t.Fatal("the replacement did not apply")
			}
			if out, err := haproxyCheck(t, broken); err == nil {
				t.Errorf("haproxy -dW -c passed a config with an %s:\n%s", name, out)
			}
		})
	}
}

// haproxyProblems checks what haproxy -c cannot know: that every server sends
// PROXY v2 to HashRelay's stratum port, and that health checks ask /readyz on
// its HTTP port (a check with its own port carries no PROXY header, which the
// HTTP listener would refuse).
func haproxyProblems(cfg string) []string {
	var problems []string
	backend := section(cfg, "backend hashrelay")
	if backend == "" {
		return []string{"no backend hashrelay"}
	}
	if !regexp.MustCompile(`(?m)^\s*option httpchk GET /readyz\s*$`).MatchString(backend) {
		problems = append(problems, "backend hashrelay: health check is not option httpchk GET /readyz")
	}
	if !regexp.MustCompile(`(?m)^\s*http-check expect status 200\s*$`).MatchString(backend) {
		problems = append(problems, "backend hashrelay: no http-check expect status 200")
	}
	// Server options come from default-server and the server line itself.
	var defaults string
	if m := regexp.MustCompile(`(?m)^\s*default-server (.*)$`).FindStringSubmatch(backend); m != nil {
		defaults = m[1]
	}
	servers := regexp.MustCompile(`(?m)^\s*server (\S+) (\S+)(.*)$`).FindAllStringSubmatch(backend, -1)
	if len(servers) == 0 {
		problems = append(problems, "backend hashrelay: no server")
	}
	for _, s := range servers {
		opts := strings.Fields(defaults + " " + s[3])
		where := "server " + s[1] + ": "
		if !strings.HasSuffix(s[2], ":3333") {
			problems = append(problems, where+s[2]+" is not HashRelay's stratum port 3333")
		}
		if !hasOption(opts, "send-proxy-v2") {
			problems = append(problems, where+"no send-proxy-v2: HashRelay would see the balancer's address")
		}
		if !hasOption(opts, "check") {
			problems = append(problems, where+"no check")
		}
		if port := optionValue(opts, "port"); port != "8080" {
			problems = append(problems, where+"checks port "+port+"; want 8080, the HTTP port (without a port, checks go to the stratum port with a PROXY header)")
		}
		if hasOption(opts, "check-send-proxy") {
			problems = append(problems, where+"check-send-proxy: the HTTP port does not take PROXY headers")
		}
	}
	return problems
}

func hasOption(opts []string, name string) bool {
	for _, o := range opts {
		if o == name {
			return true
		}
	}
	return false
}

// optionValue returns the word after the last name in opts (a server line's
// later options override default-server's).
func optionValue(opts []string, name string) string {
	v := ""
	for i := 0; i+1 < len(opts); i++ {
		if opts[i] == name {
			v = opts[i+1]
		}
	}
	return v
}

// section returns the lines of an HAProxy section from its header to the next
// section (a line starting in column 0), comments dropped.
func section(cfg, header string) string {
	var b strings.Builder
	in := false
	for line := range strings.Lines(cfg) {
		if line != "" && line[0] != ' ' && line[0] != '\t' && line[0] != '#' && line[0] != '\n' {
			in = strings.TrimSpace(line) == header
			continue
		}
		if trimmed := strings.TrimSpace(line); in && trimmed != "" && !strings.HasPrefix(trimmed, "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func TestHAProxyBackend(t *testing.T) {
	cfg := readText(t, haproxyFile)
	for _, p := range haproxyProblems(cfg) {
		t.Error(p)
	}
	for _, c := range []struct{ name, from, to, want string }{
		{"no PROXY header", "default-server send-proxy-v2 ", "default-server ", "no send-proxy-v2"},
		{"checks the stratum port", " check port 8080 ", " check ", "checks port"},
		{"checks with PROXY", " check port 8080 ", " check port 8080 check-send-proxy ", "check-send-proxy"},
		{"checks /healthz", "option httpchk GET /readyz", "option httpchk GET /healthz", "/readyz"},
		{"wrong server port", "10.0.0.11:3333", "10.0.0.11:8080", "stratum port"},
	} {
		t.Run(c.name, func(t *testing.T) {
			broken := strings.Replace(cfg, c.from, c.to, 1)
			if broken == cfg {
				t.Fatalf("%q not in %s", c.from, haproxyFile)
			}
			if p := haproxyProblems(broken); !containsProblem(p, c.want) {
				t.Errorf("problems %q; want one containing %q", p, c.want)
			}
		})
	}
}

// containsProblem reports whether a problem mentions want.
func containsProblem(problems []string, want string) bool {
	for _, p := range problems {
		if strings.Contains(p, want) {
			return true
		}
	}
	return false
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
