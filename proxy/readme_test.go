package proxy

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestREADMECloseReasons: the README's table of close reasons names every
// CloseReason label, and nothing else, so an operator reading
// hashrelay_connections_closed_total finds each reason explained.
func TestREADMECloseReasons(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "`connections_closed_total{reason}` says why")
	if !ok {
		t.Fatal("README: no close reason table after \"`connections_closed_total{reason}` says why\"")
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|")
	var documented []string
	for _, line := range strings.Split(after, "\n")[1:] {
		if strings.TrimSpace(line) == "" && len(documented) > 0 {
			break
		}
		if m := row.FindStringSubmatch(line); m != nil {
			documented = append(documented, m[1])
		}
	}
	var want []string
	for r := CloseNone + 1; r < NumCloseReasons; r++ {
		want = append(want, r.String())
	}
	slices.Sort(documented)
	slices.Sort(want)
	if !slices.Equal(documented, want) {
		t.Errorf("README close reasons %v; want %v", documented, want)
	}
}
