package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// The binary under test, built once per test run with a stamped version.
const testVersion = "v0.0.0-maintest"

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hashrelay-bin-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binary builds cmd/hashrelay (go build, as a user would) and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary: not with -short")
	}
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(binDir, "hashrelay")
		out, err := exec.Command(goTool, "build", "-o", binPath, "-ldflags", "-X main.version="+testVersion, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v", buildErr)
	}
	return binPath
}

// command returns the binary run with args, in an environment without the test
// runner's HASHRELAY_ variables plus extra.
func command(t *testing.T, args []string, extra ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HASHRELAY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, extra...)
	return cmd
}

// exitCode runs cmd to completion and returns its exit code, stdout and stderr.
func exitCode(t *testing.T, cmd *exec.Cmd) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatal(err)
	return 0, "", ""
}

// TestBinaryLifecycle runs the built binary against a simulated pool: it starts,
// serves /healthz and the healthcheck subcommand, forwards shares, and on SIGTERM
// shuts down within -shutdown-timeout and exits 0.
func TestBinaryLifecycle(t *testing.T) {
	// The pool's difficulty is the miner's, so every share the proxy accepts goes
	// upstream: three arrive in about a second even on a loaded machine.
	pool, err := stratumtest.NewPool(stratumtest.PoolConfig{Difficulty: 1e-6})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	const shutdownTimeout = 2 * time.Second
	cmd := command(t, []string{
		"-listen", "127.0.0.1:0", "-http", "127.0.0.1:0",
		"-upstream", "stratum+tcp://acct:x@" + pool.Addr(),
		"-start-difficulty", "1e-6", "-min-difficulty", "1e-7",
		"-shutdown-timeout", shutdownTimeout.String(),
	})
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed once waitErr is set
	var waitErr error
	defer func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	}()

	// The JSON log says where it listens.
	started := make(chan map[string]any, 1)
	var logMu sync.Mutex
	var logs strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logs.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			var e map[string]any
			if json.Unmarshal(sc.Bytes(), &e) == nil && e["message"] == "hashrelay started" {
				started <- e
			}
		}
		waitErr = cmd.Wait()
		close(exited)
	}()
	var info map[string]any
	select {
	case info = <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("no \"hashrelay started\" log line within 10s")
	}
	httpAddr, _ := info["http"].(string)
	stratumAddr, _ := info["stratum"].(string)

	resp, err := http.Get("http://" + httpAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz = %d; want 200", resp.StatusCode)
	}
	if code, _, errOut := exitCode(t, command(t, []string{"healthcheck", "-http", httpAddr})); code != 0 {
		t.Errorf("healthcheck -http %s: exit %d (%s); want 0", httpAddr, code, errOut)
	}
	if code, _, errOut := exitCode(t, command(t, []string{"healthcheck"}, "HASHRELAY_HTTP="+httpAddr)); code != 0 {
		t.Errorf("HASHRELAY_HTTP=%s healthcheck: exit %d (%s); want 0", httpAddr, code, errOut)
	}

	// A miner's shares reach the pool through the binary.
	m := stratumtest.NewMiner(stratumtest.MinerConfig{Addr: stratumAddr, HashRate: 20000})
	mctx, stopMiner := context.WithCancel(context.Background())
	minerDone := make(chan struct{})
	go func() { _ = m.Run(mctx); close(minerDone) }()
	deadline := time.Now().Add(20 * time.Second)
	for pool.Stats().Accepted() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("no shares reached the pool through the binary")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopMiner()
	<-minerDone

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		took := time.Since(start)
		if waitErr != nil {
			t.Errorf("exit after SIGTERM: %v; want status 0", waitErr)
		}
		if took > shutdownTimeout {
			t.Errorf("exit took %v after SIGTERM; want within -shutdown-timeout %v", took, shutdownTimeout)
		}
		t.Logf("exited %v after SIGTERM", took.Round(time.Millisecond))
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatalf("still running %v after SIGTERM", time.Since(start))
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), `"message":"hashrelay stopped"`) {
		t.Errorf("no \"hashrelay stopped\" in the log:\n%s", logs.String())
	}
	// Nothing answers any more: the healthcheck fails with 1 (never Docker's 2).
	if code, _, _ := exitCode(t, command(t, []string{"healthcheck", "-http", httpAddr})); code != 1 {
		t.Errorf("healthcheck of a stopped HashRelay: exit %d; want 1", code)
	}
}

// TestBinaryExitCodes: an invalid setting exits 2 with the message on stderr;
// -version prints the stamped version; healthcheck never exits 2.
func TestBinaryExitCodes(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	up := "stratum+tcp://acct:x@" + dead
	for _, c := range []struct {
		name   string
		args   []string
		env    []string
		code   int
		stdout string
		stderr string
	}{
		{"version", []string{"-version"}, nil, 0, "hashrelay " + testVersion + "\n", ""},
		{"bad duration in the environment", []string{"-upstream", up}, []string{"HASHRELAY_WRITE_TIMEOUT=x"}, 2, "", `HASHRELAY_WRITE_TIMEOUT="x"`},
		{"bad flag", []string{"-upstream", up, "-write-timeout", "x"}, nil, 2, "", `invalid value "x" for flag -write-timeout`},
		{"no upstream", nil, nil, 2, "", "upstream: at least one pool is required"},
		{"bad upstream", []string{"-upstream", "stratum+tcp://pool:3333"}, nil, 2, "", "USER[:PASS]@"},
		{"bad reconnect target", []string{"-upstream", up, "-reconnect-on-shutdown", "nowhere"}, nil, 2, "", "reconnect-on-shutdown"},
		{"listen address taken", []string{"-upstream", up, "-listen", taken.Addr().String(), "-http", "off"}, nil, 1, "", "address already in use"},
		{"healthcheck, nothing listening", []string{"healthcheck", "-http", dead}, nil, 1, "", "healthcheck"},
		{"healthcheck, invalid setting", []string{"healthcheck"}, []string{"HASHRELAY_WRITE_TIMEOUT=x"}, 1, "", `HASHRELAY_WRITE_TIMEOUT="x"`},
		{"healthcheck, HTTP off", []string{"healthcheck", "-http", "off"}, nil, 1, "", "http: off"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := exitCode(t, command(t, c.args, c.env...))
			if code != c.code || (c.stdout != "" && stdout != c.stdout) || !strings.Contains(stderr, c.stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr with %q", code, stdout, stderr, c.code, c.stdout, c.stderr)
			}
		})
	}
}

// TestRunHealthcheck runs the subcommand in process against a test server.
func TestRunHealthcheck(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(status.Load()))
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	port := l.Addr().(*net.TCPAddr).Port
	addr := l.Addr().String()
	f := func(args []string, environ map[string]string, want int) {
		t.Helper()
		if got := run(append([]string{"healthcheck"}, args...), env(environ), io.Discard, io.Discard); got != want {
			t.Errorf("healthcheck %q env %v: exit %d; want %d", args, environ, got, want)
		}
	}
	f([]string{"-http", addr}, nil, 0)
	f(nil, map[string]string{"HASHRELAY_HTTP": addr}, 0)
	f([]string{"-http", ":" + strconv.Itoa(port)}, nil, 0) // all interfaces: asked on loopback
	f([]string{"-config", writeTOML(t, "http = \""+addr+"\"\n")}, nil, 0)
	status.Store(http.StatusServiceUnavailable)
	f([]string{"-http", addr}, nil, 1)
}
