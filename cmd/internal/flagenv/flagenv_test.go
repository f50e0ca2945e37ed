package flagenv

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func newSet() (*flag.FlagSet, *string, *int, *time.Duration, *bool) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s := fs.String("listen", "a", "")
	n := fs.Int("max-line-size", 1, "")
	d := fs.Duration("ramp", 0, "")
	b := fs.Bool("version", false, "")
	return fs, s, n, d, b
}

func TestName(t *testing.T) {
	if got := Name("HASHRELAY", "max-line-size"); got != "HASHRELAY_MAX_LINE_SIZE" {
		t.Fatalf("Name = %q", got)
	}
}

func TestApplyPrecedenceAndSource(t *testing.T) {
	fs, s, n, d, b := newSet()
	if err := fs.Parse([]string{"-listen", "cli"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"X_LISTEN":        "env",
		"X_MAX_LINE_SIZE": "42",
		"X_RAMP":          "3s",
		"X_VERSION":       "true",
	}
	src := map[string]string{}
	err := Apply(fs, "X", func(k string) string { return env[k] }, func(name string) bool { return name == "version" }, src)
	if err != nil {
		t.Fatal(err)
	}
	if *s != "cli" || *n != 42 || *d != 3*time.Second || *b {
		t.Fatalf("got listen=%q max-line-size=%d ramp=%v version=%v", *s, *n, *d, *b)
	}
	if src["listen"] != "-listen" || src["max-line-size"] != "X_MAX_LINE_SIZE" || src["version"] != "" {
		t.Fatalf("sources %v", src)
	}
}

func TestApplyExplainsBadValues(t *testing.T) {
	for name, want := range map[string]string{
		"X_MAX_LINE_SIZE": "want an integer",
		"X_RAMP":          "want a duration",
		"X_VERSION":       "want true or false",
	} {
		fs, _, _, _, _ := newSet()
		if err := fs.Parse(nil); err != nil {
			t.Fatal(err)
		}
		err := Apply(fs, "X", func(k string) string {
			if k == name {
				return "zz"
			}
			return ""
		}, nil, nil)
		if err == nil || !strings.Contains(err.Error(), name+`="zz"`) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: err = %v, want it to name the variable and say %q", name, err, want)
		}
	}
}
