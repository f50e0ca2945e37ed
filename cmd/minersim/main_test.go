package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestRunBadSetting: an invalid setting exits 2 naming it.
func TestRunBadSetting(t *testing.T) {
	f := func(args []string, want string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := run(args, noEnv, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d; want 2", args, code)
		}
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("%v: stderr %q; want it to contain %q", args, stderr.String(), want)
		}
	}
	f([]string{"-url", "127.0.0.1:1", "-misbehave", "stale=0.1,nasty=1"}, `entry "nasty=1": unknown key`)
	f([]string{"-miners", "3"}, "url: required")
	// More miners in one process than open files allow: refused before any dial.
	f([]string{"-url", "127.0.0.1:1", "-miners", "9000000", "-procs", "1"}, "raise -procs")
}
