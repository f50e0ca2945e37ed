package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Worker processes. The parent re-executes its own binary once per process with
// the same arguments (plus -worker, see workerArgs) and MINERSIM_WORKER_SLOT=i/P in
// the environment. Worker i runs miners i, i+P, i+2P… and writes NDJSON on its
// stdout: a progress line every workerProgressEvery and, at the end, one report
// line with its counters and histograms (the part type). The parent sums the
// progress lines for its display and merges the reports into one.
//
// Stopping: SIGINT or SIGTERM to the parent is forwarded to every worker as
// SIGTERM; a worker stops its miners, writes its report and exits 0. A worker
// also stops when its stdin, a pipe from the parent, reaches EOF: the parent is
// gone, however it died. A worker that exits with an error, or without a report,
// fails the run: the others are stopped and the failed one's stderr is shown.
const (
	lineProgress = "progress"
	lineReport   = "report"

	workerProgressEvery = 500 * time.Millisecond
	maxLine             = 64 << 20 // a report line: sparse histograms, a few hundred kB at most
	maxStderrKept       = 64 << 10 // of a worker's stderr, the start (a panic's message and stack)
)

// serveWorker is a worker process's life: run its miners, report on stdout.
func serveWorker(ctx context.Context, o *options, stdin io.Reader, stdout io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, stdin) //nolint:errcheck // any end of stdin means the parent is gone
		cancel()
	}()
	r := newRunner(o)
	if err := checkOpenFiles(len(r.sims)); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout) // one line per Encode
	var mu sync.Mutex              // guards enc
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(workerProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p := r.progress()
				p.Type = lineProgress
				mu.Lock()
				err := enc.Encode(p)
				mu.Unlock()
				if err != nil {
					cancel() // the parent stopped reading
				}
			case <-done:
				return
			}
		}
	})
	p := r.run(ctx)
	close(done)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return enc.Encode(p)
}

// workers runs and follows the worker processes of a run.
type workers struct {
	o    *options
	args []string

	mu     sync.Mutex // guards latest
	latest []progress // last progress line of each worker, by slot-1
}

func newWorkers(o *options, args []string) *workers {
	return &workers{o: o, args: o.workerArgs(args), latest: make([]progress, o.procs)}
}

// progress sums the workers' last progress lines.
func (ws *workers) progress() progress {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	var sum progress
	for _, p := range ws.latest {
		sum.add(p)
	}
	return sum
}

// workerProc is one worker process.
type workerProc struct {
	slot   int
	cmd    *exec.Cmd
	stdout io.ReadCloser
	stderr *headBuffer
}

// outcome is how a worker process ended.
type outcome struct {
	w    *workerProc
	part *part
	err  error
}

// run starts the workers, forwards ctx's end to them as SIGTERM, and merges
// their reports once all have exited.
func (ws *workers) run(ctx context.Context) (*result, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("worker processes: %w", err)
	}
	n := ws.o.procs
	procs := make([]*workerProc, 0, n)
	for slot := 1; slot <= n; slot++ {
		w, err := ws.start(exe, slot)
		if err != nil {
			for _, w := range procs {
				w.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // best effort
				w.cmd.Wait()                          //nolint:errcheck // failing anyway
			}
			return nil, fmt.Errorf("worker %d/%d: %w", slot, n, err)
		}
		procs = append(procs, w)
	}

	outcomes := make(chan outcome, n)
	for _, w := range procs {
		go func() { outcomes <- ws.follow(w) }()
	}
	stopAll := func() {
		for _, w := range procs {
			w.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have exited
		}
	}
	res := newResult()
	var failed error
	for range n {
		var o outcome
		select {
		case o = <-outcomes:
		case <-ctx.Done():
			stopAll()
			ctx = context.Background() // forward once
			o = <-outcomes
		}
		if o.err == nil {
			o.err = res.merge(o.part)
		}
		if o.err != nil && failed == nil {
			failed = fmt.Errorf("worker %d/%d: %w%s", o.w.slot, n, o.err, o.w.stderr.show())
			stopAll()
		}
	}
	return res, failed
}

// start starts worker slot.
func (ws *workers) start(exe string, slot int) (*workerProc, error) {
	cmd := exec.Command(exe, ws.args...)
	cmd.Env = append(os.Environ(), workerEnv+"="+strconv.Itoa(slot)+"/"+strconv.Itoa(ws.o.procs))
	w := &workerProc{slot: slot, cmd: cmd, stderr: &headBuffer{max: maxStderrKept}}
	cmd.Stderr = w.stderr
	var err error
	if _, err = cmd.StdinPipe(); err != nil { // held open until the worker exits; see serveWorker
		return nil, err
	}
	if w.stdout, err = cmd.StdoutPipe(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return w, nil
}

// follow reads a worker's lines until it exits.
func (ws *workers) follow(w *workerProc) outcome {
	sc := bufio.NewScanner(w.stdout)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	var (
		rep     *part
		readErr error
	)
	for sc.Scan() {
		line := sc.Bytes()
		var head struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(line, &head); err != nil {
			readErr = fmt.Errorf("bad line on stdout: %w", err)
			break
		}
		switch head.Type {
		case lineProgress:
			var p progress
			if err := json.Unmarshal(line, &p); err != nil {
				readErr = fmt.Errorf("bad progress line: %w", err)
			}
			ws.mu.Lock()
			ws.latest[w.slot-1] = p
			ws.mu.Unlock()
		case lineReport:
			rep = &part{}
			if err := json.Unmarshal(line, rep); err != nil {
				readErr = fmt.Errorf("bad report line: %w", err)
			}
		default:
			readErr = fmt.Errorf("line of unknown type %q on stdout", head.Type)
		}
		if readErr != nil {
			break
		}
	}
	if readErr == nil {
		readErr = sc.Err()
	}
	if readErr != nil {
		w.cmd.Process.Kill()          //nolint:errcheck // it is broken
		io.Copy(io.Discard, w.stdout) //nolint:errcheck // let Wait finish
	}
	waitErr := w.cmd.Wait()
	switch {
	case readErr != nil:
		return outcome{w: w, err: readErr}
	case waitErr != nil:
		return outcome{w: w, err: waitErr}
	case rep == nil:
		return outcome{w: w, err: errors.New("exited without a report")}
	}
	return outcome{w: w, part: rep}
}

// headBuffer keeps the first max bytes written to it, and counts the rest.
type headBuffer struct {
	mu      sync.Mutex // guards the fields below
	max     int
	b       []byte
	dropped int
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	keep := min(len(p), h.max-len(h.b))
	h.b = append(h.b, p[:keep]...)
	h.dropped += len(p) - keep
	return len(p), nil
}

// show returns the kept stderr to append to an error message: "" when empty.
func (h *headBuffer) show() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.b) == 0 {
		return "; no stderr"
	}
	s := "; its stderr:\n" + string(h.b)
	if h.dropped > 0 {
		s += fmt.Sprintf("\n[%d more bytes]", h.dropped)
	}
	return s
}
