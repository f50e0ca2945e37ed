package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// Environment variables of the test binary re-executed as a command.
const (
	// testParentEnv makes the test binary run the command (as minersim would),
	// for tests that signal a parent process.
	testParentEnv = "MINERSIM_TEST_PARENT"
	// testFailEnv makes worker 2 of a multi-process run exit 3 at once.
	testFailEnv = "MINERSIM_TEST_FAIL_WORKER"
)

// TestMain lets the test binary stand in for minersim: workers.run re-executes
// os.Executable, this binary, with MINERSIM_WORKER_SLOT=i/P.
func TestMain(m *testing.M) {
	if slot, _, ok := parseWorkerEnv(os.Getenv(workerEnv)); ok {
		if os.Getenv(testFailEnv) != "" && slot == 2 {
			fmt.Fprintln(os.Stderr, "worker failing on purpose")
			os.Exit(3)
		}
		os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
	}
	if os.Getenv(testParentEnv) != "" {
		os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// waitTimeout bounds every wait in these tests; a healthy run needs a fraction.
const waitTimeout = 8 * time.Second

// tinyDifficulty gives a share about every 430 hashes.
const tinyDifficulty = 1e-7

func newPool(t *testing.T) *stratumtest.Pool {
	t.Helper()
	p, err := stratumtest.NewPool(stratumtest.PoolConfig{Addr: "127.0.0.1:0", Difficulty: tinyDifficulty})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// noEnv is a getenv with nothing set.
func noEnv(string) string { return "" }

// runJSON runs the command in this process with args (plus -json
// -progress=false) and decodes its report; it fails the test unless it exits 0.
func runJSON(t *testing.T, args ...string) (report, []byte) {
	t.Helper()
	var stdout, stderr strings.Builder
	args = append(args, "-json", "-progress=false")
	if code := run(args, noEnv, &stdout, &stderr); code != 0 {
		t.Fatalf("run %v: exit %d; want 0\nstderr:\n%s", args, code, stderr.String())
	}
	var r report
	if err := json.Unmarshal([]byte(stdout.String()), &r); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout.String())
	}
	return r, []byte(stdout.String())
}

// eventually polls cond every 10 ms until it holds or waitTimeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
