package flagenv

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes Run returns.
const (
	ExitOK      = 0 // finished (or -h)
	ExitFailed  = 1 // exec returned an error
	ExitSetting = 2 // a setting did not parse or check
)

// Run is a command's life around its own parse and exec: it parses the settings
// (printing usage and returning ExitOK for -h), runs exec until it returns or
// SIGINT or SIGTERM cancels its context, and turns the outcome into an exit code.
// An error exec returns is printed after the command's name; it exits ExitFailed,
// or ExitSetting when marked with SettingError.
func Run[S any](name string, args []string, getenv func(string) string, stderr io.Writer,
	parse func(args []string, getenv func(string) string, out io.Writer) (S, error),
	exec func(ctx context.Context, s S) error) int {
	s, err := parse(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return ExitSetting
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := exec(ctx, s); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		if errors.As(err, new(settingError)) {
			return ExitSetting
		}
		return ExitFailed
	}
	return ExitOK
}

// SettingError marks an error exec returns as a setting that cannot work (found
// only once running, such as more miners than the open-files limit allows): Run
// exits ExitSetting for it.
func SettingError(err error) error { return settingError{err} }

type settingError struct{ error }

func (e settingError) Unwrap() error { return e.error }
