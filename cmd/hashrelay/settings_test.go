package main

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// env returns a getenv over m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeTOML(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hashrelay.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSettingsPrecedence: the command line wins over the environment, which wins
// over the TOML file, which wins over the defaults, for a scalar, a duration, a list
// and a bool.
func TestSettingsPrecedence(t *testing.T) {
	file := writeTOML(t, `
listen = "127.0.0.1:1001"
write-timeout = "11s"
upstream = ["stratum+tcp://file1:x@pool1:3333", "stratum+tcp://file2:x@pool2:3333"]
pow2-difficulty = true
`)
	fromEnv := map[string]string{
		"HASHRELAY_LISTEN":          "127.0.0.1:1002",
		"HASHRELAY_WRITE_TIMEOUT":   "12s",
		"HASHRELAY_UPSTREAM":        "stratum+tcp://env1:x@pool1:3333, stratum+tcp://env2:x@pool2:3333",
		"HASHRELAY_POW2_DIFFICULTY": "false",
	}
	type want struct {
		listen    string
		write     time.Duration
		upstreams []string
		pow2      bool
	}
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want want
	}{
		{"defaults", []string{"-upstream", "stratum+tcp://flag1:x@pool1:3333"}, nil,
			want{"127.0.0.1:3333", 10 * time.Second, []string{"flag1"}, false}},
		{"file over defaults", []string{"-config", file}, nil,
			want{"127.0.0.1:1001", 11 * time.Second, []string{"file1", "file2"}, true}},
		{"file named by HASHRELAY_CONFIG", nil, map[string]string{"HASHRELAY_CONFIG": file},
			want{"127.0.0.1:1001", 11 * time.Second, []string{"file1", "file2"}, true}},
		{"environment over file", []string{"-config", file}, fromEnv,
			want{"127.0.0.1:1002", 12 * time.Second, []string{"env1", "env2"}, false}},
		{"command line over environment", []string{
			"-config", file, "-listen", "127.0.0.1:1003", "-write-timeout", "13s",
			"-upstream", "stratum+tcp://flag1:x@pool1:3333", "-upstream", "stratum+tcp://flag2:x@pool2:3333",
			"-pow2-difficulty",
		}, fromEnv, want{"127.0.0.1:1003", 13 * time.Second, []string{"flag1", "flag2"}, true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, err := parseSettings(c.args, env(c.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			var users []string
			for _, u := range o.cfg.Upstreams {
				users = append(users, u.User)
			}
			got := want{o.cfg.Listen, o.cfg.WriteTimeout, users, o.cfg.PowerOfTwoDifficulty}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v; want %+v", got, c.want)
			}
		})
	}
}

// TestSettingsErrors: an invalid value stops the command with a message naming the
// setting and where the value came from.
func TestSettingsErrors(t *testing.T) {
	up := []string{"-upstream", "stratum+tcp://u:x@pool:3333"}
	f := func(args []string, environ map[string]string, want ...string) {
		t.Helper()
		_, err := parseSettings(args, env(environ), io.Discard)
		if err == nil {
			t.Errorf("args %q env %v: no error; want one saying %q", args, environ, want)
			return
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("args %q env %v: error %q; want it to say %q", args, environ, err, w)
			}
		}
	}
	// A duration, from each source.
	f(up, map[string]string{"HASHRELAY_WRITE_TIMEOUT": "x"}, `HASHRELAY_WRITE_TIMEOUT="x"`, "duration")
	f(append(up, "-write-timeout", "x"), nil, `"x"`, "-write-timeout")
	bad := writeTOML(t, "write-timeout = 5\n")
	f(append(up, "-config", bad), nil, "config "+bad, "write-timeout = 5", "duration")
	// Other types from the environment.
	f(up, map[string]string{"HASHRELAY_POW2_DIFFICULTY": "maybe"}, "HASHRELAY_POW2_DIFFICULTY", "true or false")
	f(up, map[string]string{"HASHRELAY_PREFIX_SIZE": "two"}, "HASHRELAY_PREFIX_SIZE", "integer")
	f(up, map[string]string{"HASHRELAY_MIN_DIFFICULTY": "low"}, "HASHRELAY_MIN_DIFFICULTY", "number")
	f(up, map[string]string{"HASHRELAY_VERSION_MASK": "xyz"}, "HASHRELAY_VERSION_MASK", "hex")
	// The file: an unknown key (a typo), a missing file, a key only the command
	// line takes.
	f(append(up, "-config", writeTOML(t, "lisen = \"127.0.0.1:1\"\n")), nil, `unknown setting "lisen"`)
	f(append(up, "-config", writeTOML(t, "version = true\n")), nil, `unknown setting "version"`)
	f(append(up, "-config", filepath.Join(t.TempDir(), "none.toml")), nil, "config", "none.toml")
	f(append(up, "-config", writeTOML(t, "listen = \n")), nil, "config")
	// Upstream URLs: what is wrong with each, and where it came from.
	f([]string{"-upstream", "http://u:x@pool:3333"}, nil, "-upstream", "scheme must be stratum+tcp or stratum+ssl")
	f([]string{"-upstream", "stratum+tcp://pool:3333"}, nil, "USER[:PASS]@")
	f([]string{"-upstream", "stratum+tcp://u:x@pool"}, nil, "HOST:PORT")
	f(nil, map[string]string{"HASHRELAY_UPSTREAM": "stratum+tcp://u:x@pool:3333,stratum+ssl://u@pool:1?pin=zz"}, "HASHRELAY_UPSTREAM", "pin must be 64 hex digits")
	f(nil, nil, "upstream: at least one pool is required")
	// Checks across the whole configuration name the source of the value too.
	f(up, map[string]string{"HASHRELAY_PREFIX_SIZE": "9"}, "prefix-size: 9 is outside 1..4 (from HASHRELAY_PREFIX_SIZE)")
	f(append(up, "-config", writeTOML(t, "log-level = \"loud\"\n")), nil, `log-level: "loud"`, "(from config ")
	f(append(up, "-log-format", "xml"), nil, `log-format: "xml"`)
	f(append(up, "extra"), nil, `unexpected argument "extra"`)
	// PROXY protocol networks.
	f(append(up, "-proxy-protocol-from", "10.0.0.0/33"), nil, "-proxy-protocol-from", `"10.0.0.0/33"`)
	f(up, map[string]string{"HASHRELAY_PROXY_PROTOCOL_FROM": "10.0.0.5,haproxy"}, "HASHRELAY_PROXY_PROTOCOL_FROM", `"haproxy"`)
	f(up, map[string]string{"HASHRELAY_PROXY_HEADER_TIMEOUT": "-1s"}, "proxy-header-timeout", "negative")
}

// TestSettingsProxyProtocolFrom: CIDRs and bare addresses (one host each), from a
// repeated flag and comma-separated from the environment.
func TestSettingsProxyProtocolFrom(t *testing.T) {
	f := func(args []string, environ map[string]string, want string) {
		t.Helper()
		o, err := parseSettings(append([]string{"-upstream", "stratum+tcp://u:x@pool:3333"}, args...), env(environ), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if got := (prefixList{&o.cfg.ProxyProtocolFrom}).String(); got != want {
			t.Errorf("args %q env %v: got %q; want %q", args, environ, got, want)
		}
	}
	f(nil, nil, "")
	f([]string{"-proxy-protocol-from", "10.0.0.5/32, 10.1.2.3/16", "-proxy-protocol-from", "fd00::1"}, nil, "10.0.0.5/32,10.1.0.0/16,fd00::1/128")
	f(nil, map[string]string{"HASHRELAY_PROXY_PROTOCOL_FROM": "10.0.0.5,::ffff:192.168.1.1"}, "10.0.0.5/32,192.168.1.1/32")
}

// TestSettingsCommandOnly: HASHRELAY_VERSION, which a container image may set for
// its own reasons, is not the -version flag.
func TestSettingsCommandOnly(t *testing.T) {
	o, err := parseSettings([]string{"-upstream", "stratum+tcp://u:x@pool:3333"}, env(map[string]string{"HASHRELAY_VERSION": "1.2.3"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.version {
		t.Error("HASHRELAY_VERSION set -version; want it ignored")
	}
}

func TestHealthzURL(t *testing.T) {
	f := func(addr, want string) {
		t.Helper()
		got, err := healthzURL(addr)
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("healthzURL(%q) = %q; want %q", addr, got, want)
		}
	}
	f("127.0.0.1:8080", "http://127.0.0.1:8080/healthz")
	f(":8080", "http://127.0.0.1:8080/healthz")
	f("0.0.0.0:9000", "http://127.0.0.1:9000/healthz")
	f("[::]:9000", "http://[::1]:9000/healthz")
	f("status.local:81", "http://status.local:81/healthz")
	f("off", "error")
	f("8080", "error")
}
