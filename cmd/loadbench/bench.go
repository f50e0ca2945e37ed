package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// execute builds (or finds) the programs, runs the selected scenarios and writes
// the report to stdout and -out. Progress goes to log.
func execute(ctx context.Context, s *settings, stdout, log io.Writer) (err error) {
	rep := &report{Started: time.Now()}
	b := &bench{s: s, log: log}
	var out *os.File
	if s.out != "" {
		if out, err = os.Create(s.out); err != nil {
			return fmt.Errorf("out: %v", err)
		}
		defer func() {
			if out != nil { // not handed to writeReport
				out.Close()
			}
		}()
	}
	if s.bin != "" {
		if b.bins, err = binariesIn(s.bin); err != nil {
			return err
		}
	} else {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		root, err := findModuleRoot(wd)
		if err != nil {
			return err
		}
		dir, err := os.MkdirTemp("", "loadbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		fmt.Fprintf(log, "loadbench: building %v in %s\n", buildCommands, dir)
		if rep.Build, err = buildBinaries(ctx, root, dir, buildCommands); err != nil {
			return err
		}
		if b.bins, err = binariesIn(dir); err != nil {
			return err
		}
	}
	rep.Machine = describeMachine(b.bins.hashrelay)
	defer func() {
		if serr := b.procs.stopAll(); serr != nil {
			err = errors.Join(err, serr)
		}
	}()

	var errs []error
	for _, sc := range s.selected() {
		res, err := b.runScenario(ctx, sc)
		rep.Scenarios = append(rep.Scenarios, res)
		if err != nil {
			errs = append(errs, err)
		}
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("interrupted during %s; every child stopped", sc.name))
			break
		}
	}
	o := out
	out = nil
	if werr := writeReport(rep, s, stdout, o); werr != nil {
		errs = append(errs, werr)
	}
	return errors.Join(errs...)
}

// writeReport writes rep as Markdown or JSON to w and, when not nil, to out
// (-out, created before the runs so that a bad path fails at once), closing it.
func writeReport(rep *report, s *settings, w io.Writer, out *os.File) error {
	write := writeMarkdown
	if s.json {
		write = writeJSON
	}
	err := write(w, rep)
	if out != nil {
		if werr := write(out, rep); werr != nil {
			err = errors.Join(err, fmt.Errorf("out: %v", werr))
		}
		if cerr := out.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("out: %v", cerr))
		}
	}
	return err
}

// bench runs scenarios: the binaries, the children for clean-up, progress on log.
type bench struct {
	s     *settings
	bins  binaries
	log   io.Writer
	procs group
	runs  int // columns run so far, to rotate source addresses
}

// runScenario runs sc through the proxy and, unless -direct=false, directly. A
// failed column is reported in the result with what it measured before failing;
// the error is returned as well.
func (b *bench) runScenario(ctx context.Context, sc *scenario) (*result, error) {
	p := b.s.plan(sc)
	res := &result{
		Name: sc.name, Title: sc.title, Miners: p.miners,
		RampSeconds: p.ramp.Seconds(), DurationSeconds: p.duration.Seconds(),
	}
	cols := []string{colRelay}
	if b.s.direct {
		cols = append(cols, colDirect)
	}
	values := map[string]map[string]float64{}
	var errs []error
	for _, name := range cols {
		c := &column{ctx: ctx, b: b, plan: p, proxied: name == colRelay, values: map[string]float64{}, binds: b.nextBinds()}
		fmt.Fprintf(b.log, "loadbench: %s/%s: %d miners, ramp %v, duration %v\n", sc.name, name, p.miners, p.ramp, p.duration)
		err := sc.run(c)
		err = errors.Join(err, c.finishMiners(err))
		c.stopSamplers()
		if serr := b.procs.stopAll(); serr != nil {
			c.note("clean-up: %v", serr)
		}
		rr := runResult{Column: name, Commands: c.commands, Notes: c.notes}
		switch {
		case ctx.Err() != nil:
			rr.Error = "interrupted"
		case err != nil:
			rr.Error = err.Error()
			errs = append(errs, fmt.Errorf("%s/%s: %w", sc.name, name, err))
			fmt.Fprintf(b.log, "loadbench: %s/%s failed: %v\n", sc.name, name, err)
		}
		res.Runs = append(res.Runs, rr)
		values[name] = c.values
		if ctx.Err() != nil {
			break
		}
	}
	res.Rows = buildRows(sc.rows, values[colRelay], values[colDirect])
	return res, errors.Join(errs...)
}

// nextBinds is the source addresses for the next column: eight loopback addresses
// not used by the last few columns, so that the TIME_WAIT ports one run leaves do
// not starve the next of ephemeral ports.
func (b *bench) nextBinds() string {
	base := 2 + 8*(b.runs%30) // 127.0.0.2 … 127.0.0.241
	b.runs++
	s := ""
	for i := range 8 {
		if i > 0 {
			s += ","
		}
		s += "127.0.0." + strconv.Itoa(base+i)
	}
	return s
}
