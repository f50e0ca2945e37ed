package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Bounds on the children's lives.
const (
	stopGrace   = 5 * time.Second // SIGTERM to SIGKILL
	killWait    = 5 * time.Second // SIGKILL to giving up on the exit
	waitDelay   = 2 * time.Second // exec.Cmd.WaitDelay: output pipes held by grandchildren
	stderrLines = 20              // last stderr lines kept for error messages
)

// child is one process loadbench started. It runs in its own process group, so
// that stopping it also stops whatever it started (minersim's worker processes),
// and it gets SIGKILL should loadbench die without cleaning up (Pdeathsig).
type child struct {
	name string
	cmd  *exec.Cmd
	line string // the command line, quoted for a shell
	pid  int

	stdout bytes.Buffer // filled by exec; read only after done
	stderr *lineWriter

	done    chan struct{} // closed when Wait returns
	mu      sync.Mutex
	waitErr error // Wait's result, mu held
}

// childEnv is loadbench's environment without the variables the children read as
// settings (POOLSIM_*, HASHRELAY_*, MINERSIM_*), so that a child runs exactly as
// its printed command line says.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "POOLSIM_") || strings.HasPrefix(kv, "HASHRELAY_") || strings.HasPrefix(kv, "MINERSIM_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// startChild starts path with args. match, when not nil, picks the stderr line
// waitLine returns (the ready banner).
func startChild(name, path string, args []string, match func(string) bool) (*child, error) {
	c := &child{name: name, done: make(chan struct{})}
	c.stderr = newLineWriter(match)
	c.cmd = exec.Command(path, args...)
	c.cmd.Env = childEnv()
	c.cmd.Stdout = &c.stdout
	c.cmd.Stderr = c.stderr
	c.cmd.WaitDelay = waitDelay
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	c.line = shellLine(append([]string{path}, args...))
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c.pid = c.cmd.Process.Pid
	go c.waitLoop()
	return c, nil
}

func (c *child) waitLoop() {
	err := c.cmd.Wait()
	c.mu.Lock()
	c.waitErr = err
	c.mu.Unlock()
	close(c.done)
}

// exited reports whether the process has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// waitError is Wait's result: nil for exit status 0, or while running.
func (c *child) waitError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waitErr
}

// exitError describes how the process ended, with its last stderr lines.
func (c *child) exitError() error {
	err := c.waitError()
	if err == nil {
		err = errors.New("exit status 0")
	}
	return fmt.Errorf("%s exited early (%v)%s", c.name, err, c.stderr.tailText())
}

// waitLine waits up to timeout for the stderr line match picks.
func (c *child) waitLine(ctx context.Context, timeout time.Duration, what string) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line := <-c.stderr.matched:
		return line, nil
	case <-c.done:
		// The line may have come just before the exit.
		select {
		case line := <-c.stderr.matched:
			return line, nil
		default:
		}
		return "", c.exitError()
	case <-t.C:
		return "", fmt.Errorf("%s: timed out after %v waiting for %s%s", c.name, timeout, what, c.stderr.tailText())
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// signal sends sig to the process group.
func (c *child) signal(sig syscall.Signal) {
	_ = syscall.Kill(-c.pid, sig) // ESRCH: the group is gone already
}

// kill sends SIGKILL to the process group and waits for the process to end.
func (c *child) kill() error {
	c.signal(syscall.SIGKILL)
	select {
	case <-c.done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("%s (pid %d): still running %v after SIGKILL", c.name, c.pid, killWait)
	}
}

// stop asks the process group to end (SIGTERM), then kills it after stopGrace.
// Whatever the leader did, the group then gets SIGKILL, so that no worker process
// outlives it. It may be called more than once.
func (c *child) stop() error {
	if !c.exited() {
		c.signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(stopGrace):
		}
	}
	return c.kill()
}

// group is every child loadbench started, for cleaning up on any exit.
type group struct {
	mu       sync.Mutex
	children []*child
}

func (g *group) add(c *child) {
	g.mu.Lock()
	g.children = append(g.children, c)
	g.mu.Unlock()
}

// stopAll stops every child, the latest first (miners, then the proxy, then the
// pools), and forgets them.
func (g *group) stopAll() error {
	g.mu.Lock()
	cs := g.children
	g.children = nil
	g.mu.Unlock()
	var errs []error
	for i := len(cs) - 1; i >= 0; i-- {
		if err := cs[i].stop(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// lineWriter is a child's stderr: it keeps the last stderrLines lines and hands the
// first line match picks to matched.
type lineWriter struct {
	match   func(string) bool
	matched chan string

	mu      sync.Mutex
	partial []byte
	tail    []string
	found   bool
}

func newLineWriter(match func(string) bool) *lineWriter {
	return &lineWriter{match: match, matched: make(chan string, 1)}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := string(bytes.TrimRight(w.partial[:i], "\r"))
		w.partial = w.partial[i+1:]
		if len(w.tail) == stderrLines {
			w.tail = w.tail[1:]
		}
		w.tail = append(w.tail, line)
		if !w.found && w.match != nil && w.match(line) {
			w.found = true
			w.matched <- line
		}
	}
	if len(w.partial) > 64<<10 { // a runaway line: keep it from growing without end
		w.partial = w.partial[:0]
	}
	return len(p), nil
}

// tailText is the last stderr lines, indented, for an error message ("" if none).
func (w *lineWriter) tailText() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.tail) == 0 {
		return ""
	}
	return "; its last stderr lines:\n    " + strings.Join(w.tail, "\n    ")
}

// shellLine quotes args for a POSIX shell, so a printed command line can be pasted.
func shellLine(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_@%+=:,./-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
