package main

import (
	"flag"
	"io"
	"os"
	"strings"
	"testing"
)

// TestREADMEListsEveryFlag keeps the configuration reference honest: every flag the
// command accepts has a row in the table of the README's "## Configuration"
// section, and every row is a real flag.
func TestREADMEListsEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(b), "\n## Configuration\n")
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		if name, ok := strings.CutPrefix(line, "| `-"); ok {
			rows[name[:strings.IndexByte(name, '`')]] = true
		}
	}
	fs := newFlagSet(&options{}, io.Discard)
	fs.VisitAll(func(f *flag.Flag) {
		if !rows[f.Name] {
			t.Errorf("flag -%s has no row in the README's configuration table", f.Name)
		}
		delete(rows, f.Name)
	})
	for name := range rows {
		t.Errorf("README documents -%s, which is not a flag", name)
	}
}
