package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// TestRunBadSetting: an invalid setting exits 2 naming it.
func TestRunBadSetting(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"-difficulty", "-1"}, func(string) string { return "" }, io.Discard, &stderr); code != 2 {
		t.Errorf("exit code: got %d; want 2", code)
	}
	if !strings.Contains(stderr.String(), "difficulty: -1") {
		t.Errorf("stderr: got %q; want the setting named", stderr.String())
	}
}

var firstLine = regexp.MustCompile(`^poolsim listening on stratum\+tcp://(\S+), admin http://(\S+)$`)

// TestBinary builds poolsim, runs it on ephemeral ports, mines on it with a
// stratumtest.Miner, reads /stats, then SIGTERMs it: exit 0, a text report on
// stderr and a JSON report on stdout agreeing with the miner.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "poolsim")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-difficulty", "1e-7",
		"-nbits", "207fffff", "-report", "100ms", "-json")
	cmd.Env = []string{"POOLSIM_JOB_INTERVAL=200ms"}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() }) // no-op once it exited
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var poolAddr, adminAddr string
	select {
	case l := <-lines:
		m := firstLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("first stderr line: got %q; want %s", l, firstLine)
		}
		poolAddr, adminAddr = m[1], m[2]
	case <-time.After(waitTimeout):
		t.Fatal("no first line on stderr")
	}

	miners, stopMiner := stratumtest.RunMiners(t, stratumtest.MinerConfig{Addr: poolAddr, Worker: "w1", HashRate: 20_000})
	miner := miners[0]
	var r report
	eventually(t, "5 accepted shares and 2 jobs in /stats", func() bool {
		resp, err := http.Get("http://" + adminAddr + "/stats")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		return r.Verdicts["accepted"] >= 5 && r.Workers["w1"].Accepted >= 5 && r.Jobs >= 2
	})
	if r.BlockCandidates == 0 {
		t.Errorf("block candidates with regtest nbits: got 0; want some")
	}
	stopMiner()
	ms := miner.Stats()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for l := range lines {
		rest = append(rest, l)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v; want 0\nstderr:\n%s", err, strings.Join(rest, "\n"))
	}
	text := strings.Join(rest, "\n")
	if !strings.Contains(text, "poolsim: up ") || !strings.Contains(text, "poolsim final report:") {
		t.Errorf("stderr: got\n%s\nwant status lines and the final report", text)
	}
	var final report
	if err := json.Unmarshal(stdout.Bytes(), &final); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout.String())
	}
	if final.Accepted != ms.Accepted || final.Workers["w1"].Accepted != ms.Accepted || final.InjectedRejects != 0 ||
		final.Rejected != ms.Rejected || final.Jobs < 2 {
		t.Errorf("final report: got %+v; want %d accepted, %d rejected as the miner saw, jobs from -job-interval via env",
			final, ms.Accepted, ms.Rejected)
	}
}
