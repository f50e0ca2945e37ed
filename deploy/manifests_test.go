package deploy

// Helpers shared by the tests of the deployment files (compose, Kubernetes,
// HAProxy): the tools they run, and what they know of HashRelay itself (its
// flags, from the README; its user, from the Dockerfile).

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	readmeFile     = "../README.md"
	dockerfileFile = "../Dockerfile"
)

// tool returns the path of an external program a test runs, or skips the test
// when it is not installed, naming the Debian package that has it. Under
// HASHRELAY_CI=1, where every tool must be there, it fails the test instead.
func tool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("HASHRELAY_CI") == "1" {
			t.Fatalf("%s not installed (HASHRELAY_CI=1): %v", name, err)
		}
		t.Skipf("%s not installed: apt-get install %s", name, debianPackage)
	}
	return path
}

// envFlags returns the environment variable of every flag in the README's
// "## Configuration" table (-state-dir is HASHRELAY_STATE_DIR).
// cmd/hashrelay/readme_test.go keeps that table equal to the flags the command
// really accepts, so this is the flag set without importing package main.
func envFlags(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	vars, err := parseEnvFlags(string(b))
	if err != nil {
		t.Fatalf("%s: %v", readmeFile, err)
	}
	return vars
}

// parseEnvFlags parses the README as cmd/hashrelay/readme_test.go does: rows of
// the Configuration section that start with "| `-".
func parseEnvFlags(readme string) (map[string]bool, error) {
	_, section, ok := strings.Cut(readme, "\n## Configuration\n")
	if !ok {
		return nil, errNoConfigSection
	}
	section, _, _ = strings.Cut(section, "\n## ")
	vars := make(map[string]bool)
	for line := range strings.Lines(section) {
		name, ok := strings.CutPrefix(line, "| `-")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, "`")
		vars[envName(name)] = true
	}
	if len(vars) == 0 {
		return nil, errNoConfigSection
	}
	return vars, nil
}

var errNoConfigSection = errors.New(`no flag rows ("| ` + "`-name`" + ` |") in a "## Configuration" section`)

// envName is the variable of a flag: -reconnect-jitter is HASHRELAY_RECONNECT_JITTER.
func envName(flag string) string {
	return "HASHRELAY_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// unknownEnv returns a problem for each key of env that looks like a HashRelay
// variable but is no flag, or that misses the HASHRELAY_ prefix when all must
// have it.
func unknownEnv(where string, keys []string, flags map[string]bool, allPrefixed bool) []string {
	var problems []string
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, "HASHRELAY_"):
			if !flags[k] {
				problems = append(problems, where+": "+k+" is not a flag in the README's Configuration table")
			}
		case allPrefixed:
			problems = append(problems, where+": "+k+" is not a HASHRELAY_ variable")
		}
	}
	return problems
}

// dockerfileUser returns the uid of the Dockerfile's last USER instruction: the
// user the image runs as, which the manifests must name.
func dockerfileUser(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(dockerfileFile)
	if err != nil {
		t.Fatal(err)
	}
	m := userLine.FindAllStringSubmatch(string(b), -1)
	if m == nil {
		t.Fatalf("%s: no numeric USER instruction", dockerfileFile)
	}
	uid, err := strconv.ParseInt(m[len(m)-1][1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return uid
}

var userLine = regexp.MustCompile(`(?m)^USER\s+(\d+)(?::\d+)?\s*$`)

// settings is a set of HASHRELAY_* values with typed accessors that record a
// problem, rather than fail, when a value is missing or malformed, so that a
// check can report every problem at once.
type settings struct {
	where    string
	env      map[string]string
	problems *[]string
}

func (s settings) problem(format string) { *s.problems = append(*s.problems, s.where+": "+format) }

func (s settings) duration(key string) time.Duration {
	v, ok := s.env[key]
	if !ok {
		s.problem(key + " not set")
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		s.problem(key + ": " + err.Error())
	}
	return d
}

// port returns the port of a HOST:PORT setting; the host must reach the
// container from outside it (empty or 0.0.0.0, not loopback).
func (s settings) port(key string) int32 {
	v, ok := s.env[key]
	if !ok {
		s.problem(key + " not set")
		return 0
	}
	host, p, err := net.SplitHostPort(v)
	if err != nil {
		s.problem(key + ": " + err.Error())
		return 0
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		s.problem(key + " " + v + " binds loopback: unreachable from outside the container")
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil {
		s.problem(key + ": " + err.Error())
	}
	return int32(n)
}

// TestParseEnvFlags checks the README parsing on the real README (a known flag,
// and -proxy-protocol-from for the balancer setups) and on broken input.
func TestParseEnvFlags(t *testing.T) {
	flags := envFlags(t)
	for _, want := range []string{"HASHRELAY_SHUTDOWN_TIMEOUT", "HASHRELAY_STATE_DIR", "HASHRELAY_RECONNECT_JITTER"} {
		if !flags[want] {
			t.Errorf("%s not among the README's flags %v", want, flags)
		}
	}
	if _, err := parseEnvFlags("# HashRelay\n\n## Usage\n| `-listen` | x | y |\n"); err == nil {
		t.Error("a README without a Configuration section parsed")
	}
	got, err := parseEnvFlags("x\n## Configuration\n| `-state-dir` | (none) | z |\n## HTTP\n| `-not-a-flag` | | |\n")
	if err != nil || len(got) != 1 || !got["HASHRELAY_STATE_DIR"] {
		t.Errorf("got %v, %v; want only HASHRELAY_STATE_DIR", got, err)
	}
	if p := unknownEnv("x", []string{"HASHRELAY_STATE_DIR", "HASHRELAY_STATEDIR", "GOGC"}, got, true); len(p) != 2 {
		t.Errorf("unknownEnv: %q; want 2 problems (HASHRELAY_STATEDIR, GOGC)", p)
	}
}

// TestDockerfileUser checks that the image's USER, which the manifests must
// name, has its entries in the passwd and group files the image copies.
func TestDockerfileUser(t *testing.T) {
	uid := strconv.FormatInt(dockerfileUser(t), 10)
	for _, c := range []struct{ file, want string }{
		{"docker/passwd", ":x:" + uid + ":" + uid + ":"},
		{"docker/group", ":x:" + uid + ":"},
	} {
		if !strings.Contains(readText(t, c.file), c.want) {
			t.Errorf("%s: no entry with %q (the Dockerfile's USER %s)", c.file, c.want, uid)
		}
	}
	if m := userLine.FindStringSubmatch("FROM scratch\nUSER 65532:65532\n"); m == nil || m[1] != "65532" {
		t.Errorf("USER 65532:65532 parsed as %q", m)
	}
	if userLine.MatchString("USER nonroot\n") {
		t.Error("a user name parsed as a uid")
	}
}

// TestSettings checks that malformed or missing values are problems, not
// zeros that would pass a comparison.
func TestSettings(t *testing.T) {
	var problems []string
	s := settings{where: "test", problems: &problems, env: map[string]string{
		"HASHRELAY_SHUTDOWN_TIMEOUT": "60",
		"HASHRELAY_LISTEN":           "127.0.0.1:3333",
		"HASHRELAY_HTTP":             "0.0.0.0:http",
		"HASHRELAY_RECONNECT_JITTER": "10s",
	}}
	if d := s.duration("HASHRELAY_RECONNECT_JITTER"); d != 10*time.Second || len(problems) != 0 {
		t.Errorf("duration 10s: got %v, problems %q", d, problems)
	}
	if p := s.port("HASHRELAY_LISTEN"); p != 3333 {
		t.Errorf("port of 127.0.0.1:3333: got %d; want 3333", p)
	}
	s.duration("HASHRELAY_SHUTDOWN_TIMEOUT")
	s.duration("HASHRELAY_NOT_SET")
	s.port("HASHRELAY_HTTP")
	for _, want := range []string{"binds loopback", `HASHRELAY_SHUTDOWN_TIMEOUT: time: missing unit`, "HASHRELAY_NOT_SET not set", "HASHRELAY_HTTP: strconv"} {
		if !containsProblem(problems, want) {
			t.Errorf("problems %q; want one containing %q", problems, want)
		}
	}
}
