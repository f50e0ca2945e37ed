package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hashrelay/hashrelay/cmd/internal/flagenv"
)

// envPrefix names the environment variables: scenario → LOADBENCH_SCENARIO.
const envPrefix = "LOADBENCH"

// maxMiners keeps every server under the machine's 20,000 open files per process,
// with room for its listeners, pool sessions and HTTP.
const maxMiners = 19500

// settings is the command line.
type settings struct {
	scenario string
	miners   int           // 0 = the scenario's default
	duration time.Duration // 0 = the scenario's default
	ramp     time.Duration
	rampSet  bool // -ramp given (0 is a valid ramp)
	bin      string
	json     bool
	direct   bool
	out      string
}

// newFlagSet declares every setting; each is also read from LOADBENCH_<NAME>.
func newFlagSet(s *settings, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("loadbench", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&s.scenario, "scenario", "", "scenario: "+strings.Join(scenarioNames(), ", ")+", or all")
	fs.IntVar(&s.miners, "miners", 0, "simulated miners (0 = the scenario's default)")
	fs.DurationVar(&s.duration, "duration", 0, "measured time after the ramp (0 = the scenario's default)")
	fs.DurationVar(&s.ramp, "ramp", 0, "spread the miners' connections over this long (default: the scenario's)")
	fs.StringVar(&s.bin, "bin", "", "directory holding prebuilt poolsim, hashrelay and minersim (empty: build them)")
	fs.BoolVar(&s.json, "json", false, "print the results as JSON instead of Markdown")
	fs.BoolVar(&s.direct, "direct", true, "also run each scenario without the proxy, as the baseline column")
	fs.StringVar(&s.out, "out", "", "also write the results to this file")
	fs.Usage = func() {
		fmt.Fprintln(out, "usage: loadbench -scenario NAME [-miners N] [-duration D] [-ramp D] [-bin DIR] [-json] [-direct=false] [-out FILE]")
		fmt.Fprintln(out, "\nscenarios (default miners, ramp, duration):")
		for _, sc := range scenarios {
			fmt.Fprintf(out, "  %-9s %6d miners, ramp %v, %v: %s\n", sc.name, sc.miners, sc.ramp, sc.duration, sc.title)
		}
		fmt.Fprintln(out, "\nflags (each also read from LOADBENCH_<NAME>):")
		fs.PrintDefaults()
	}
	return fs
}

// parseSettings reads args, then the environment, and validates the result.
func parseSettings(args []string, getenv func(string) string, out io.Writer) (*settings, error) {
	s := &settings{}
	fs := newFlagSet(s, out)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	source := map[string]string{}
	if err := flagenv.Apply(fs, envPrefix, getenv, nil, source); err != nil {
		return nil, err
	}
	s.rampSet = source["ramp"] != ""
	return s, s.validate()
}

// validate checks what the flag types cannot.
func (s *settings) validate() error {
	switch {
	case s.scenario == "":
		return fmt.Errorf("scenario: missing: want one of %s, or all", strings.Join(scenarioNames(), ", "))
	case s.scenario != "all" && findScenario(s.scenario) == nil:
		return fmt.Errorf("scenario: %q: want one of %s, or all (the direct baseline runs with each)", s.scenario, strings.Join(scenarioNames(), ", "))
	case s.miners < 0 || s.miners > maxMiners:
		return fmt.Errorf("miners: %d: want 1..%d (0 = the scenario's default); each process may hold 20,000 files", s.miners, maxMiners)
	case s.duration < 0:
		return fmt.Errorf("duration: %v: want more than 0 (0 = the scenario's default)", s.duration)
	case s.ramp < 0:
		return fmt.Errorf("ramp: %v: want 0 or more", s.ramp)
	}
	for _, sc := range s.selected() {
		if err := sc.check(s.plan(sc)); err != nil {
			return fmt.Errorf("%s: %v", sc.name, err)
		}
	}
	return nil
}

// selected is the scenarios to run, in order.
func (s *settings) selected() []*scenario {
	if s.scenario == "all" {
		out := make([]*scenario, len(scenarios))
		for i := range scenarios {
			out[i] = &scenarios[i]
		}
		return out
	}
	if sc := findScenario(s.scenario); sc != nil {
		return []*scenario{sc}
	}
	return nil
}

// plan is one scenario's size: its defaults overridden by the flags.
type plan struct {
	miners   int
	ramp     time.Duration
	duration time.Duration
}

func (s *settings) plan(sc *scenario) plan {
	p := plan{miners: sc.miners, ramp: sc.ramp, duration: sc.duration}
	if s.miners > 0 {
		p.miners = s.miners
	}
	if s.rampSet {
		p.ramp = s.ramp
	}
	if s.duration > 0 {
		p.duration = s.duration
	}
	return p
}
