package main

import (
	"flag"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEListsEveryFlag: every minersim flag is named in the first column of the
// table in the README's "### minersim" section, and every name there is a flag.
func TestREADMEListsEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n### minersim\n")
	if !ok {
		t.Fatal(`README has no "### minersim" section`)
	}
	section, _, _ = strings.Cut(section, "\n#")
	name := regexp.MustCompile("`-([a-z0-9-]+)`")
	rows := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `-") {
			continue
		}
		first, _, _ := strings.Cut(line[1:], "|")
		for _, m := range name.FindAllStringSubmatch(first, -1) {
			rows[m[1]] = true
		}
	}
	fs := newFlagSet(&options{}, io.Discard)
	fs.VisitAll(func(f *flag.Flag) {
		if !rows[f.Name] {
			t.Errorf("flag -%s has no row in the README's minersim table", f.Name)
		}
		delete(rows, f.Name)
	})
	for n := range rows {
		t.Errorf("README documents -%s, which is not a minersim flag", n)
	}
}
