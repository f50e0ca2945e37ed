package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestShellQuote(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s; want %s", in, got, want)
		}
	}
	f("", "''")
	f("-url", "-url")
	f("stratum+tcp://a:x@127.0.0.1:1,stratum+tcp://b", "stratum+tcp://a:x@127.0.0.1:1,stratum+tcp://b")
	f("a b", "'a b'")
	f("it's", `'it'\''s'`)
	if got := shellLine([]string{"/bin/x", "-a", "b c"}); got != "/bin/x -a 'b c'" {
		t.Errorf("shellLine = %s", got)
	}
}

func TestLineWriter(t *testing.T) {
	w := newLineWriter(func(l string) bool { return strings.HasPrefix(l, "ready") })
	for _, part := range []string{"one\nre", "ady at 1\r\nready again\n", "partial"} {
		w.Write([]byte(part))
	}
	select {
	case l := <-w.matched:
		if l != "ready at 1" {
			t.Errorf("matched %q; want %q", l, "ready at 1")
		}
	default:
		t.Fatal("no line matched")
	}
	select {
	case l := <-w.matched:
		t.Errorf("second match %q; want only the first", l)
	default:
	}
	for i := range 30 {
		w.Write([]byte("line " + strconv.Itoa(i) + "\n"))
	}
	tail := w.tailText()
	if strings.Contains(tail, "line 9\n") || !strings.Contains(tail, "line 29") || strings.Count(tail, "\n    ") != stderrLines {
		t.Errorf("tail = %q; want the last %d lines", tail, stderrLines)
	}
}

// TestChildStopKillsGroup: stopping a child also ends what it started, and a child
// that ignores SIGTERM is killed after the grace period.
func TestChildStopKillsGroup(t *testing.T) {
	c, err := startChild("sh", "sh", []string{"-c", `trap '' TERM; sleep 30 & echo $! >&2; echo started >&2; wait`}, func(l string) bool { return l == "started" })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.waitLine(context.Background(), 5*time.Second, "started"); err != nil {
		t.Fatal(err)
	}
	grandchild, err := strconv.Atoi(strings.TrimSpace(strings.Split(c.stderr.tailText(), "\n    ")[1]))
	if err != nil {
		t.Fatalf("grandchild pid: %v (%q)", err, c.stderr.tailText())
	}
	start := time.Now()
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < stopGrace-time.Second {
		t.Errorf("stop took %v; the child ignores SIGTERM, so want about %v", d, stopGrace)
	}
	time.Sleep(100 * time.Millisecond)
	if err := syscall.Kill(grandchild, 0); err == nil {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(grandchild) + "/stat"); !strings.Contains(string(b), ") Z ") {
			t.Errorf("grandchild %d still running after stop", grandchild)
		}
	}
	if err := c.stop(); err != nil { // twice is fine
		t.Errorf("second stop: %v", err)
	}
}

func TestWaitLineTimeoutAndExit(t *testing.T) {
	c, err := startChild("sleep", "sleep", []string{"10"}, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	defer c.stop()
	_, err = c.waitLine(context.Background(), 100*time.Millisecond, "a banner")
	if err == nil || !strings.Contains(err.Error(), "timed out after 100ms waiting for a banner") {
		t.Errorf("err = %v; want a timeout naming what was awaited", err)
	}

	c2, err := startChild("sh", "sh", []string{"-c", "echo oops >&2; exit 3"}, func(string) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	_, err = c2.waitLine(context.Background(), 5*time.Second, "a banner")
	if err == nil || !strings.Contains(err.Error(), "exited early") || !strings.Contains(err.Error(), "oops") {
		t.Errorf("err = %v; want the early exit with its stderr", err)
	}
}

func TestChildEnvDropsSettings(t *testing.T) {
	t.Setenv("HASHRELAY_LISTEN", "1.2.3.4:5")
	t.Setenv("MINERSIM_WORKER", "1/2")
	t.Setenv("LOADBENCH_KEEP", "yes")
	env := strings.Join(childEnv(), "\n")
	if strings.Contains(env, "HASHRELAY_LISTEN") || strings.Contains(env, "MINERSIM_WORKER") {
		t.Errorf("child environment keeps a child's setting")
	}
	if !strings.Contains(env, "LOADBENCH_KEEP=yes") {
		t.Errorf("child environment lost an unrelated variable")
	}
}
