package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunWorkers runs 6 miners in 2 worker processes (this test binary, see
// TestMain) and checks the merged report against the pool.
func TestRunWorkers(t *testing.T) {
	pool := newPool(t)
	const miners = 6
	r, data := runJSON(t, "-url", pool.URL(), "-miners", fmt.Sprint(miners), "-procs", "2", "-duration", "1s",
		"-share-rate", "20", "-worker", "rig")
	checkShape(t, data)
	ps := pool.Stats()
	if r.Procs != 2 || r.Miners != miners || r.RunSeconds < 1 || r.RunSeconds > 2 {
		t.Errorf("header: got procs %d miners %d run %v; want 2, 6, about 1", r.Procs, r.Miners, r.RunSeconds)
	}
	if c := r.Connections; c.Made != miners || c.Held != miners || c.Disconnects != 0 || ps.Connections != miners {
		t.Errorf("connections: got %+v, pool %d; want %d made and held", c, ps.Connections, miners)
	}
	if s := r.Shares; s.Accepted == 0 || s.Accepted != ps.Accepted() || s.Submitted != s.Accepted || s.Rejected != 0 {
		t.Errorf("shares: got %+v; want accepted = pool's %d", s, ps.Accepted())
	}
	// Every miner, from both processes, under its global name; at 20 shares a
	// second each has some.
	for n := 1; n <= miners; n++ {
		if w := ps.Workers[fmt.Sprintf("rig.%d", n)]; w.Accepted() == 0 {
			t.Errorf("pool: no shares accepted from rig.%d; workers %v", n, ps.Workers)
		}
	}
	if r.ReplyLatency.N != int64(r.Shares.Accepted) || r.ReplyLatency.P99 <= 0 {
		t.Errorf("reply latency: got %+v; want the two processes' histograms merged, n = %d", r.ReplyLatency, r.Shares.Accepted)
	}
}

// TestWorkerDies: a worker that exits with an error fails the run (exit 1) and
// its stderr is shown.
func TestWorkerDies(t *testing.T) {
	pool := newPool(t)
	t.Setenv(testFailEnv, "1") // inherited by the workers
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run([]string{"-url", pool.URL(), "-miners", "4", "-procs", "2", "-duration", "5s", "-json"}, noEnv, &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit: got %d; want 1", code)
	}
	if e := stderr.String(); !strings.Contains(e, "worker 2/2: exit status 3") || !strings.Contains(e, "worker failing on purpose") {
		t.Errorf("stderr: got %q; want worker 2/2's exit and its stderr", e)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout: got %q; want no report", stdout.String())
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("took %v; want the other worker stopped at once, not after -duration", d)
	}
}

// TestSignalParent runs the command as a process (this test binary, see
// TestMain) with worker processes and -duration 0, SIGTERMs it, and expects the
// merged report and exit 0.
func TestSignalParent(t *testing.T) {
	pool := newPool(t)
	cmd := exec.Command(os.Args[0], "-url", pool.URL(), "-miners", "4", "-procs", "2", "-duration", "0",
		"-share-rate", "5", "-json", "-progress=false")
	cmd.Env = append(os.Environ(), testParentEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	eventually(t, "4 sessions and some shares", func() bool {
		ps := pool.Stats()
		return ps.Sessions == 4 && ps.Accepted() >= 4
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; want 0\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(waitTimeout):
		t.Fatalf("no exit after SIGTERM\nstderr:\n%s", stderr.String())
	}
	checkShape(t, stdout.Bytes())
	var r report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	ps := pool.Stats()
	if r.Procs != 2 || r.Connections.Held != 4 || r.Connections.Made != 4 || r.RunSeconds <= 0 ||
		r.Shares.Accepted == 0 || r.Shares.Accepted != ps.Accepted() {
		t.Errorf("report: got %+v; want 4 held over 2 processes, accepted = pool's %d", r, ps.Accepted())
	}
	if ps.Sessions != 0 {
		t.Errorf("pool sessions after exit: got %d; want 0 (workers gone)", ps.Sessions)
	}
}
