// Package flagenv fills a command's flag set from environment variables named
// after its flags (listen → PREFIX_LISTEN), and says what a flag takes when a
// value does not parse. HashRelay's commands share it so each reads its settings
// the same way: the command line first, then the environment; Run (run.go) gives
// the load tools one way to parse, run until a signal, and exit.
package flagenv

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"
)

// Name maps a flag name to its environment variable: with prefix "HASHRELAY",
// max-line-size becomes HASHRELAY_MAX_LINE_SIZE.
func Name(prefix, flagName string) string {
	return prefix + "_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Set sets flag name to v. When v does not parse, the error says what the flag
// takes (the flag package's own message is only "parse error").
func Set(fs *flag.FlagSet, name, v string) error {
	err := fs.Set(name, v)
	if err == nil {
		return nil
	}
	f := fs.Lookup(name)
	if f == nil {
		return err
	}
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case time.Duration:
			return errors.New("want a duration such as 500ms, 10s or 2m")
		case bool:
			return errors.New("want true or false")
		case int, int64, uint, uint64:
			return errors.New("want an integer")
		case float64:
			return errors.New("want a number")
		}
	}
	return err
}

// Apply sets every flag of the parsed fs that the command line left alone from
// its environment variable, when that is not empty. Flags for which skip reports
// true are left to the command line. source, when not nil, gets each flag's
// origin: "-name" for the command line, the variable's name for the environment.
// The error names the variable and its value.
func Apply(fs *flag.FlagSet, prefix string, getenv func(string) string, skip func(name string) bool, source map[string]string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) {
		set[f.Name] = true
		if source != nil {
			source[f.Name] = "-" + f.Name
		}
	})
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] || (skip != nil && skip(f.Name)) {
			return
		}
		name := Name(prefix, f.Name)
		v := getenv(name)
		if v == "" {
			return
		}
		if e := Set(fs, f.Name, v); e != nil {
			err = fmt.Errorf("%s=%q: %v", name, v, e)
			return
		}
		if source != nil {
			source[f.Name] = name
		}
	})
	return err
}
