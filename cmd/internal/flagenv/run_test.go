package flagenv

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"
)

// exitError has an ExitCode method, as *exec.ExitError does: it must not decide
// Run's exit code.
type exitError struct{}

func (exitError) Error() string { return "worker 2/2: exit status 3" }
func (exitError) ExitCode() int { return 3 }

// TestRun: each outcome of parse and exec gives its exit code, and an error is
// printed after the command's name.
func TestRun(t *testing.T) {
	parseOK := func([]string, func(string) string, io.Writer) (int, error) { return 7, nil }
	for _, c := range []struct {
		name  string
		parse func([]string, func(string) string, io.Writer) (int, error)
		err   error
		code  int
		out   string
		runs  bool // exec is called
	}{
		{"ok", parseOK, nil, ExitOK, "", true},
		{"help", func([]string, func(string) string, io.Writer) (int, error) { return 0, flag.ErrHelp }, nil, ExitOK, "", false},
		{"bad setting", func([]string, func(string) string, io.Writer) (int, error) {
			return 0, errors.New("-miners: not a number")
		}, nil, ExitSetting, "sim: -miners: not a number\n", false},
		{"failed", parseOK, errors.New("worker died"), ExitFailed, "sim: worker died\n", true},
		{"setting", parseOK, SettingError(errors.New("too many miners for the open-files limit")), ExitSetting, "sim: too many miners for the open-files limit\n", true},
		{"child exit", parseOK, fmt.Errorf("run: %w", exitError{}), ExitFailed, "sim: run: worker 2/2: exit status 3\n", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out strings.Builder
			ran := false
			code := Run("sim", nil, func(string) string { return "" }, &out, c.parse, func(ctx context.Context, s int) error {
				ran = true
				if s != 7 || ctx.Err() != nil {
					t.Errorf("exec got %d, ctx err %v; want the parsed 7 and a live context", s, ctx.Err())
				}
				return c.err
			})
			if code != c.code || out.String() != c.out {
				t.Errorf("exit %d, printed %q; want %d, %q", code, out.String(), c.code, c.out)
			}
			if ran != c.runs {
				t.Errorf("exec ran: %v; want %v", ran, c.runs)
			}
		})
	}
}
