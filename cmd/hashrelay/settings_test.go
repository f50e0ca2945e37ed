package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/proxy"
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

// curtailSummary is what TestSettingsCurtail compares: the flexible-load settings
// reduced to strings and numbers.
type curtailSummary struct {
	models   []string // name:agent:worker:watts:jth:idle:priority
	defJTH   float64
	exempt   []string
	schedule []string // ScheduleWindow.String and the target
	price    string   // url above below
	step     time.Duration
	workers  int
	token    string
}

func summarizeCurtail(o *options) curtailSummary {
	cc := &o.cfg.Curtail
	s := curtailSummary{defJTH: cc.DefaultJoulesPerTH, exempt: cc.Exempt, step: cc.StepInterval,
		workers: cc.MaxStepWorkers, token: o.cfg.AdminToken}
	for _, m := range cc.Models {
		s.models = append(s.models, fmt.Sprintf("%s:%s:%s:%v:%v:%v:%d", m.Name, m.Agent, m.Worker, m.Watts, m.JoulesPerTH, m.IdleWatts, m.Priority))
	}
	for _, w := range cc.Schedule {
		s.schedule = append(s.schedule, fmt.Sprintf("%s f=%v kw=%v ramp=%v", w.String(), w.Target.Fraction, w.Target.KW, w.Target.Ramp))
	}
	if p := cc.Price; p.URL != "" {
		s.price = fmt.Sprintf("%s %v %v", p.URL, p.CurtailAbove, p.RestoreBelow)
	}
	return s
}

// TestSettingsCurtail: the flexible-load flags from the command line (repeated), the
// environment (several models and windows in one variable, separated by ';') and a
// TOML file (arrays of strings), and their defaults.
func TestSettingsCurtail(t *testing.T) {
	const (
		s19    = "name=s19,agent=bmminer/2.*,watts=3250,idle=15,priority=1"
		s21    = "name=s21,worker=farm1.s21-*,jth=17.5"
		berlin = "tz=Europe/Berlin,days=mon-fri,from=17:00,to=21:00,fraction=0.5,ramp=5m"
		nyc    = "tz=America/New_York,from=22:00,to=06:00,kw=250"
		price  = "url=http://127.0.0.1:9000/price,field=data.price,above=120,below=100,fraction=1,ramp=5m,every=1m,hold=10m,stale=15m"
		token  = "0123456789abcdef0123456789abcdef"
	)
	full := curtailSummary{
		models:   []string{"s19:bmminer/2.*::3250:0:15:1", "s21::farm1.s21-*:0:17.5:0:0"},
		defJTH:   30,
		exempt:   []string{"treasury", "farm1.lab-*"},
		schedule: []string{"mon+tue+wed+thu+fri 17:00-21:00 Europe/Berlin f=0.5 kw=0 ramp=5m0s", "daily 22:00-06:00 America/New_York f=0 kw=250 ramp=1m0s"},
		price:    "http://127.0.0.1:9000/price 120 100",
		step:     5 * time.Second,
		workers:  50,
		token:    token,
	}
	file := writeTOML(t, `
power-model = ["`+s19+`", "`+s21+`"]
power-default-jth = 30
curtail-exempt = ["treasury", "farm1.lab-*"]
curtail-schedule = ["`+berlin+`", "`+nyc+`"]
curtail-price = "`+price+`"
curtail-step = "5s"
curtail-step-workers = 50
admin-token = "`+token+`"
`)
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want curtailSummary
	}{
		{"defaults", nil, nil, curtailSummary{defJTH: proxy.DefaultJoulesPerTH, step: proxy.MinCurtailStep, workers: proxy.DefaultMaxStepWorkers}},
		{"command line", []string{
			"-power-model", s19, "-power-model", s21, "-power-default-jth", "30",
			"-curtail-exempt", "treasury", "-curtail-exempt", "farm1.lab-*",
			"-curtail-schedule", berlin, "-curtail-schedule", nyc, "-curtail-price", price,
			"-curtail-step", "5s", "-curtail-step-workers", "50", "-admin-token", token,
		}, nil, full},
		{"environment", nil, map[string]string{
			"HASHRELAY_POWER_MODEL":          s19 + "; " + s21 + ";",
			"HASHRELAY_POWER_DEFAULT_JTH":    "30",
			"HASHRELAY_CURTAIL_EXEMPT":       "treasury, farm1.lab-*",
			"HASHRELAY_CURTAIL_SCHEDULE":     berlin + ";" + nyc,
			"HASHRELAY_CURTAIL_PRICE":        price,
			"HASHRELAY_CURTAIL_STEP":         "5s",
			"HASHRELAY_CURTAIL_STEP_WORKERS": "50",
			"HASHRELAY_ADMIN_TOKEN":          token,
		}, full},
		{"file", []string{"-config", file}, nil, full},
		{"one model on the command line over the file's two", []string{"-config", file, "-power-model", s21 + ";"},
			map[string]string{"HASHRELAY_CURTAIL_PRICE": strings.Replace(price, "above=120", "above=130", 1)},
			func() curtailSummary {
				w := full
				w.models = w.models[1:]
				w.price = "http://127.0.0.1:9000/price 130 100"
				return w
			}()},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, err := parseSettings(append([]string{"-upstream", "stratum+tcp://u:x@pool:3333"}, c.args...), env(c.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if got := summarizeCurtail(o); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %+v;\nwant %+v", got, c.want)
			}
		})
	}
}

// TestSettingsCurtailErrors: a bad flexible-load value names the flag, where it came
// from and what is wrong with it.
func TestSettingsCurtailErrors(t *testing.T) {
	up := []string{"-upstream", "stratum+tcp://u:x@pool:3333"}
	f := func(args []string, environ map[string]string, want ...string) {
		t.Helper()
		_, err := parseSettings(append(up, args...), env(environ), io.Discard)
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
	// Power models: an unknown key from each source; the item at fault among several.
	f([]string{"-power-model", "name=s19,watts=3250,colour=red"}, nil, "-power-model", `unknown key "colour"`)
	f(nil, map[string]string{"HASHRELAY_POWER_MODEL": "name=s19,watts=3250;name=s21,jth=x"},
		"HASHRELAY_POWER_MODEL", `"name=s21,jth=x"`, `key "jth"`, "not a number")
	bad := writeTOML(t, `power-model = ["name=s19,watts=3250", "name=s21"]`+"\n")
	f([]string{"-config", bad}, nil, "config "+bad, "power-model = name=s21", `exactly one of "watts" or "jth"`)
	f([]string{"-config", writeTOML(t, "[[power-model]]\nname = \"s19\"\n")}, nil, "power-model: want a value or an array of values, not a table")
	// The model syntax is comma-separated: a model split at its commas by mistake.
	f(nil, map[string]string{"HASHRELAY_POWER_MODEL": "name=s19,watts=3250,name=s21,jth=17"}, "HASHRELAY_POWER_MODEL", `key "name" given twice`)
	f([]string{"-power-default-jth", "0"}, nil, "power-default-jth: 0", "above 0")
	f(nil, map[string]string{"HASHRELAY_POWER_DEFAULT_JTH": "NaN"}, "power-default-jth", "(from HASHRELAY_POWER_DEFAULT_JTH)")
	f(nil, map[string]string{"HASHRELAY_POWER_DEFAULT_JTH": "cheap"}, "HASHRELAY_POWER_DEFAULT_JTH", "number")
	// Schedule windows and the price feed.
	f([]string{"-curtail-schedule", "from=17:00,to=21:00,fraction=0.5"}, nil, "-curtail-schedule", `"tz" is required`)
	f(nil, map[string]string{"HASHRELAY_CURTAIL_SCHEDULE": "tz=UTC,from=17:00,to=21:00,kw=5;tz=Mars/Olympus,from=1:00,to=02:00,kw=5"},
		"HASHRELAY_CURTAIL_SCHEDULE", "Mars/Olympus")
	f([]string{"-config", writeTOML(t, `curtail-schedule = ["tz=UTC,days=mon-fry,from=17:00,to=21:00,kw=5"]`+"\n")}, nil, "curtail-schedule", "mon-fry")
	f([]string{"-curtail-price", "url=http://p/,above=100,below=120,kw=5"}, nil, "-curtail-price", "hysteresis")
	f(nil, map[string]string{"HASHRELAY_CURTAIL_PRICE": "url=ftp://p/,above=120,below=100,kw=5"}, "HASHRELAY_CURTAIL_PRICE", "not an http(s) URL")
	// Steps.
	f([]string{"-curtail-step", "500ms"}, nil, "curtail-step: 500ms is outside 1s..1h0m0s")
	f(nil, map[string]string{"HASHRELAY_CURTAIL_STEP": "2h"}, "curtail-step: 2h0m0s", "(from HASHRELAY_CURTAIL_STEP)")
	f([]string{"-config", writeTOML(t, "curtail-step-workers = 0\n")}, nil, "curtail-step-workers: 0: want at least 1", "(from config ")
}

// TestSettingsAdminTokenHidden: a bad -admin-token is refused, naming the flag and its
// source, and no error, usage text or flag value shows the token itself.
func TestSettingsAdminTokenHidden(t *testing.T) {
	const secret = "s3cr3t-T0KEN"
	up := []string{"-upstream", "stratum+tcp://u:x@pool:3333"}
	f := func(args []string, environ map[string]string, want ...string) {
		t.Helper()
		var out strings.Builder
		_, err := parseSettings(append(up, args...), env(environ), &out)
		if err == nil {
			t.Fatalf("args %q env %v: no error; want one saying %q", args, environ, want)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("args %q env %v: error %q; want it to say %q", args, environ, err, w)
			}
		}
		if strings.Contains(err.Error()+out.String(), secret) {
			t.Errorf("args %q env %v: the token appears in %q %q", args, environ, err, out.String())
		}
	}
	f([]string{"-admin-token", secret}, nil, "admin-token: 12 characters; want at least 16")
	f(nil, map[string]string{"HASHRELAY_ADMIN_TOKEN": secret + "-long-enough\n"}, "admin-token: character 25", "(from HASHRELAY_ADMIN_TOKEN)")
	f([]string{"-config", writeTOML(t, `admin-token = "`+secret+` with spaces"`+"\n")}, nil, "admin-token: character 13", "(from config ")
	// A syntax error in the file: an unquoted token starting with "true" is read as a
	// misspelt boolean, which the TOML parser would quote in full.
	f([]string{"-config", writeTOML(t, "admin-token = true"+secret+"\n")}, nil, "admin-token: syntax error", "not shown")
	f([]string{"-config", writeTOML(t, "listen = \"127.0.0.1:1\"\nadmin-token = \""+secret+"\n")}, nil, "admin-token: syntax error")
	// Alongside another error, and in the usage text -h prints.
	f([]string{"-admin-token", secret, "-curtail-step-workers", "0"}, nil, "admin-token", "curtail-step-workers")
	f([]string{"-admin-token", secret + "-long-enough", "-h"}, nil, "help requested")

	// A dump of the flags' values, should anyone write one.
	o := &options{}
	fs := newFlagSet(o, io.Discard)
	if err := fs.Parse([]string{"-admin-token", secret + "-long-enough"}); err != nil {
		t.Fatal(err)
	}
	fs.VisitAll(func(fl *flag.Flag) {
		if strings.Contains(fl.Value.String(), secret) {
			t.Errorf("flag -%s shows the token", fl.Name)
		}
	})
	if o.cfg.AdminToken != secret+"-long-enough" {
		t.Errorf("AdminToken %q; want the token given", o.cfg.AdminToken)
	}
}

// TestREADMECurtailExample: the README's flexible-load example parses, and its TOML and
// environment forms configure the same thing.
func TestREADMECurtailExample(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n### Flexible load (curtailment)\n")
	if !ok {
		t.Fatal("README has no Flexible load (curtailment) section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	block := func(lang string) string {
		t.Helper()
		_, rest, ok := strings.Cut(section, "\n```"+lang+"\n")
		if !ok {
			t.Fatalf("no %s example", lang)
		}
		text, _, _ := strings.Cut(rest, "\n```\n")
		return text
	}
	up := []string{"-upstream", "stratum+tcp://u:x@pool:3333"}
	fromFile, err := parseSettings(append(up, "-config", writeTOML(t, block("toml"))), env(nil), io.Discard)
	if err != nil {
		t.Fatalf("TOML example: %v", err)
	}
	environ := map[string]string{}
	for _, line := range strings.Split(block("sh"), "\n") {
		k, v, _ := strings.Cut(line, "=")
		if strings.HasPrefix(v, "'") {
			environ[k] = strings.Trim(v, "'")
		}
	}
	fromEnv, err := parseSettings(up, env(environ), io.Discard)
	if err != nil {
		t.Fatalf("environment example: %v", err)
	}
	file, environment := summarizeCurtail(fromFile), summarizeCurtail(fromEnv)
	if len(file.models) != 2 || len(file.schedule) != 1 || file.price == "" || len(file.exempt) == 0 {
		t.Errorf("TOML example gives %+v; want two models, an exempt list, a window and a price feed", file)
	}
	if !reflect.DeepEqual(file, environment) {
		t.Errorf("TOML example gives %+v;\nenvironment gives %+v", file, environment)
	}
}
