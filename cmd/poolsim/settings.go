package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/hashrelay/hashrelay/cmd/internal/flagenv"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// Defaults of the command's own settings.
const (
	defaultListen     = "127.0.0.1:3334"
	defaultAdmin      = "127.0.0.1:3335"
	defaultDifficulty = 1.0
	defaultReport     = 5 * time.Second
)

// options is everything the command line configures: the pool's config plus the
// command's own settings.
type options struct {
	pool             stratumtest.PoolConfig
	newBlockInterval time.Duration
	rejectFraction   float64
	admin            string // "" when off
	report           time.Duration
	json             bool
	faults           schedule
}

// envPrefix names the environment variables: listen → POOLSIM_LISTEN.
const envPrefix = "POOLSIM"

// hex32 is a flag holding a uint32 written in hex, with or without 0x.
type hex32 struct{ v *uint32 }

func (h hex32) String() string {
	if h.v == nil {
		return ""
	}
	return fmt.Sprintf("%08x", *h.v)
}

func (h hex32) Set(s string) error {
	n, err := parseHex32(s)
	if err != nil {
		return err
	}
	*h.v = n
	return nil
}

// parseHex32 parses up to 8 hex digits, with or without 0x.
func parseHex32(s string) (uint32, error) {
	n, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"), 16, 32)
	if err != nil {
		return 0, errors.New("want up to 8 hex digits")
	}
	return uint32(n), nil
}

// rejectForm is the -reject-form flag.
type rejectForm struct{ v *stratumtest.RejectForm }

var rejectFormNames = map[string]stratumtest.RejectForm{
	"array":  stratumtest.RejectArray,
	"string": stratumtest.RejectString,
	"ckpool": stratumtest.RejectCKPool,
}

func (f rejectForm) String() string {
	if f.v != nil {
		for name, v := range rejectFormNames {
			if v == *f.v {
				return name
			}
		}
	}
	return "array"
}

func (f rejectForm) Set(s string) error {
	v, ok := rejectFormNames[s]
	if !ok {
		return errors.New("want array, string or ckpool")
	}
	*f.v = v
	return nil
}

// newFlagSet declares every setting; each is also read from POOLSIM_<NAME>.
func newFlagSet(o *options, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("poolsim", flag.ContinueOnError)
	fs.SetOutput(out)
	c := &o.pool
	fs.StringVar(&c.Addr, "listen", defaultListen, "stratum listen address (port 0 picks one)")
	fs.Float64Var(&c.Difficulty, "difficulty", defaultDifficulty, "share difficulty, fractions allowed")
	fs.IntVar(&c.Extranonce1Size, "extranonce1-size", 4, "extranonce1 bytes per session")
	fs.IntVar(&c.Extranonce2Size, "extranonce2-size", 8, "extranonce2 bytes given to miners")
	c.VersionMask = stratumtest.DefaultVersionMask // before Var, which records the default shown
	fs.Var(hex32{&c.VersionMask}, "version-mask", `version-rolling mask (hex; "0" refuses rolling)`)
	fs.BoolVar(&c.NoVersionRolling, "no-version-rolling", false, "refuse version rolling")
	fs.DurationVar(&c.JobInterval, "job-interval", 0, "send a new non-clean job this often (0 = never)")
	fs.DurationVar(&o.newBlockInterval, "new-block-interval", 0, "send a clean_jobs new block this often (0 = never)")
	fs.Float64Var(&o.rejectFraction, "reject-fraction", 0, "answer this fraction of valid shares with a reject (0..1)")
	fs.Var(rejectForm{&c.RejectForm}, "reject-form", "how rejects are worded: array, string or ckpool")
	c.NBits = stratumtest.DefaultNBits
	fs.Var(hex32{&c.NBits}, "nbits", "synthetic jobs' nbits (hex; 207fffff = regtest, for block candidates)")
	fs.StringVar(&o.admin, "admin", defaultAdmin, `HTTP address of the admin endpoint ("off" disables)`)
	fs.DurationVar(&o.report, "report", defaultReport, "print a status line on stderr this often (0 = never)")
	fs.BoolVar(&o.json, "json", false, "print the final report as JSON on stdout at exit")
	fs.Var(&o.faults, "faults", `faults to inject, as comma-separated AT:FAULT[?QUERY] with AT from start and FAULT?QUERY as in POST /fault/FAULT?QUERY, e.g. "10s:drop,20s:stall?for=5s,40s:forget-jobs"`)
	return fs
}

// parseSettings fills o from args, then the environment (POOLSIM_<NAME>), and
// validates it. Errors name the setting and, for the environment, the variable.
func parseSettings(args []string, getenv func(string) string, out io.Writer) (*options, error) {
	o := &options{}
	fs := newFlagSet(o, out)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := flagenv.Apply(fs, envPrefix, getenv, nil, nil); err != nil {
		return nil, err
	}
	return o, o.validate()
}

// validate checks the values the flag types cannot.
func (o *options) validate() error {
	c := &o.pool
	switch {
	case c.Addr == "":
		return errors.New("listen: empty address")
	case !(c.Difficulty > 0) || c.Difficulty > 1e15:
		return fmt.Errorf("difficulty: %v: want a number above 0", c.Difficulty)
	case c.Extranonce1Size < 1 || c.Extranonce1Size > 8:
		return fmt.Errorf("extranonce1-size: %d: want 1..8", c.Extranonce1Size)
	case c.Extranonce2Size < 1 || c.Extranonce2Size > 8:
		return fmt.Errorf("extranonce2-size: %d: want 1..8", c.Extranonce2Size)
	case c.JobInterval < 0:
		return fmt.Errorf("job-interval: %v: want 0 or more", c.JobInterval)
	case o.newBlockInterval < 0:
		return fmt.Errorf("new-block-interval: %v: want 0 or more", o.newBlockInterval)
	case !(o.rejectFraction >= 0 && o.rejectFraction <= 1):
		return fmt.Errorf("reject-fraction: %v: want 0..1", o.rejectFraction)
	case c.NBits == 0:
		return errors.New("nbits: 0: want a compact target such as 1d00ffff or 207fffff")
	case o.report < 0:
		return fmt.Errorf("report: %v: want 0 or more", o.report)
	}
	if c.VersionMask == 0 {
		c.NoVersionRolling = true
	}
	if o.admin == "off" {
		o.admin = ""
	}
	return nil
}
