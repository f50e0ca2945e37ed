package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// Timing of a process's own bookkeeping.
const (
	// pollEvery is how often a process reads every miner's Stats for the progress
	// counters that only Stats has (held, submitted): Stats copies maps, too much
	// work per share with thousands of miners.
	pollEvery = 500 * time.Millisecond
	// fdReserve is the open files a process needs besides one socket per miner.
	fdReserve = 64
)

// limitError reports that a process cannot hold its miners' sockets: a setting
// to change (-procs), so the command exits 2.
type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }

// simulate runs the whole simulation, in this process (-procs 1) or in worker
// processes, and writes the final report on stdout and progress on stderr. args
// are the command's arguments, passed on to the workers.
func simulate(ctx context.Context, o *options, args []string, stdout, stderr io.Writer) error {
	if err := checkOpenFiles((o.miners + o.procs - 1) / o.procs); err != nil {
		return err
	}
	start := time.Now()
	var res *result
	if o.procs == 1 {
		r := newRunner(o)
		stop := showProgress(stderr, o, start, r.progress)
		p := r.run(ctx)
		stop()
		res = newResult()
		if err := res.merge(p); err != nil {
			return err
		}
	} else {
		ws := newWorkers(o, args)
		stop := showProgress(stderr, o, start, ws.progress)
		var err error
		res, err = ws.run(ctx)
		stop()
		if err != nil {
			return err
		}
	}
	rep := newReport(o, res)
	if o.json {
		return writeJSON(stdout, rep)
	}
	return writeText(stdout, rep)
}

// checkOpenFiles makes sure a process may hold perProc sockets: it raises the
// soft RLIMIT_NOFILE to the hard one (Go does so at start-up on Linux since 1.19;
// this covers other systems) and refuses when that is not enough.
func checkOpenFiles(perProc int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // cannot tell: let the dials fail and count
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			lim = raised
		}
	}
	if need := uint64(perProc) + fdReserve; need > uint64(lim.Cur) {
		return &limitError{fmt.Sprintf("%d miners per process need %d open files, over this process's limit of %d: raise -procs (or the limit, ulimit -n)",
			perProc, need, lim.Cur)}
	}
	return nil
}

// sim is one miner and its bookkeeping.
type sim struct {
	n int // global number, from 1: worker name PREFIX.n
	m *stratumtest.Miner
	// subscribed is set at the miner's first mining.notify; see tally.
	subscribed atomic.Bool
}

// runner runs the miners of one process: all of them with -procs 1, else those
// of its slot (i, i+P, i+2P…).
type runner struct {
	o    *options
	sims []*sim

	replyLatency, jobLatency, cleanJobLatency *hist

	started            atomic.Uint64 // miners whose Run has begun
	accepted, rejected atomic.Uint64 // answers so far, from OnReply
	held, submitted    atomic.Uint64 // as of the last poll
}

func newRunner(o *options) *runner {
	r := &runner{o: o, replyLatency: newHist(), jobLatency: newHist(), cleanJobLatency: newHist()}
	slot, slots := max(o.slot, 1), max(o.slots, 1)
	for n := slot; n <= o.miners; n += slots {
		s := &sim{n: n}
		cfg := o.minerConfig(n)
		cfg.OnReply = r.onReply
		cfg.OnJob = r.onJob(s)
		s.m = stratumtest.NewMiner(cfg)
		r.sims = append(r.sims, s)
	}
	return r
}

// onReply records an answered submit. It runs on the miners' reader goroutines.
func (r *runner) onReply(rep stratumtest.Reply) {
	if rep.Accepted {
		r.accepted.Add(1)
	} else {
		r.rejected.Add(1)
	}
	r.replyLatency.record(rep.Latency)
}

// onJob returns s's OnJob: it records the latency of each notify with a new
// stamp, except a connection's first (the pool made that job before the miner
// connected). A proxy may resend the same job (to a resumed session, say), so a
// stamp equal to the last one is skipped. A Miner reads its connections one
// after another on the goroutine running Run, so last needs no lock.
func (r *runner) onJob(s *sim) func(stratumtest.JobEvent) {
	var last time.Time
	return func(e stratumtest.JobEvent) {
		if e.First {
			s.subscribed.Store(true)
		}
		if e.Stamp.IsZero() {
			return
		}
		prev := last
		last = e.Stamp
		if e.First || e.Stamp.Equal(prev) {
			return
		}
		d := e.Received.Sub(e.Stamp)
		r.jobLatency.record(d)
		if e.Clean {
			r.cleanJobLatency.record(d)
		}
	}
}

// progress returns the process's progress counters. Submitted comes from the
// last poll and the answers from OnReply as they arrive, so it is raised to the
// answers where the poll lags behind.
func (r *runner) progress() progress {
	p := progress{
		Started:   r.started.Load(),
		Held:      r.held.Load(),
		Submitted: r.submitted.Load(),
		Accepted:  r.accepted.Load(),
		Rejected:  r.rejected.Load(),
	}
	p.Submitted = max(p.Submitted, p.Accepted+p.Rejected)
	return p
}

// tally reads every miner's Stats: the miners connected and subscribed, the
// disconnects and the submits so far. A Miner's Connects minus Disconnects is 1
// while a connection is open (it counts a connection from the dial to its end);
// the pool answers the subscribe with the first job, so a miner is subscribed
// once it has seen a first notify. Stats has no per-connection flag, so a miner
// that reconnected counts as subscribed from its dial, a round trip early; one
// that never got a first job (a server accepting TCP but not answering) does not
// count.
func (r *runner) tally() (held, disconnects, submitted uint64) {
	for _, s := range r.sims {
		st := s.m.Stats()
		if st.Connects > st.Disconnects && s.subscribed.Load() {
			held++
		}
		disconnects += st.Disconnects
		submitted += st.Submitted
	}
	return held, disconnects, submitted
}

// poll refreshes held and submitted.
func (r *runner) poll() {
	held, _, submitted := r.tally()
	r.held.Store(held)
	r.submitted.Store(submitted)
}

// run starts the miners along the ramp, runs them until the duration after the
// ramp has passed or ctx is done, stops them (each waits up to a second for the
// answers in flight) and returns the process's part of the report.
func (r *runner) run(ctx context.Context) *part {
	o := r.o
	start := time.Now()
	rampEnd := start.Add(o.ramp)

	// The miners get a context of their own, cancelled only once held has been
	// counted: ctx ending must not close them first.
	minerCtx, stopMiners := context.WithCancel(context.Background())
	defer stopMiners()
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()

	var miners, helpers sync.WaitGroup
	helpers.Go(func() { r.launch(runCtx, minerCtx, start, &miners) })
	helpers.Go(func() {
		t := time.NewTicker(pollEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				r.poll()
			case <-runCtx.Done():
				return
			}
		}
	})

	rampDone := sleepUntil(ctx, rampEnd)
	acceptedAtRamp := r.accepted.Load()
	switch {
	case !rampDone:
	case o.duration > 0:
		sleepUntil(ctx, rampEnd.Add(o.duration))
	default:
		<-ctx.Done()
	}
	end := time.Now()
	stopRun()
	helpers.Wait()

	p := &part{Type: lineReport, counts: newCounts()}
	p.Held, p.Disconnects, _ = r.tally()
	stopMiners()
	miners.Wait()

	for _, s := range r.sims {
		st := s.m.Stats()
		p.addMiner(&st)
	}
	if end.After(rampEnd) {
		p.RunSeconds = end.Sub(rampEnd).Seconds()
	}
	p.AcceptedAfterRamp = r.accepted.Load() - acceptedAtRamp
	p.ReplyLatency = r.replyLatency.export()
	p.JobLatency = r.jobLatency.export()
	p.CleanJobLatency = r.cleanJobLatency.export()
	return p
}

// launch starts each miner at its place on the ramp, miner n (global, from 1)
// at (n-1)·ramp/miners after start, until ctx ends.
func (r *runner) launch(ctx, minerCtx context.Context, start time.Time, miners *sync.WaitGroup) {
	o := r.o
	for _, s := range r.sims {
		at := start.Add(time.Duration(float64(o.ramp) * float64(s.n-1) / float64(o.miners)))
		if !sleepUntil(ctx, at) {
			return
		}
		r.started.Add(1)
		miners.Go(func() {
			s.m.Run(minerCtx) //nolint:errcheck // settings were validated: Addr set, LocalAddr an IP
		})
	}
}

// sleepUntil sleeps until t; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
