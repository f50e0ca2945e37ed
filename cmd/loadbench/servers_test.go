package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Programs built once for the tests that run them, removed by TestMain.
var (
	buildDir  string
	buildMu   sync.Mutex
	buildErrs = map[string]error{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// built builds the named commands (once per test binary) and returns the directory.
func built(t *testing.T, names ...string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir == "" {
		d, err := os.MkdirTemp("", "loadbench-test-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	wd, _ := os.Getwd()
	root, err := findModuleRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		err, done := buildErrs[n]
		if !done {
			_, err = buildBinaries(context.Background(), root, buildDir, []string{"./cmd/" + n})
			buildErrs[n] = err
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return buildDir
}

// TestPoolAndRelay runs the real poolsim and hashrelay the way the scenarios do.
func TestPoolAndRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs poolsim and hashrelay")
	}
	dir := built(t, "poolsim", "hashrelay")
	ctx := context.Background()
	var g group
	defer g.stopAll()

	p, err := startPool(ctx, "poolsim", filepath.Join(dir, "poolsim"), minerDiff*forwardRatio)
	if err != nil {
		t.Fatal(err)
	}
	g.add(p.child)
	if !strings.HasPrefix(p.url, "stratum+tcp://127.0.0.1:") || !strings.HasPrefix(p.admin, "http://127.0.0.1:") {
		t.Fatalf("pool addresses %q, %q", p.url, p.admin)
	}
	st, err := p.stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.fault(ctx, "new-block"); err != nil {
		t.Fatal(err)
	}
	st2, err := p.stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st2.Jobs != st.Jobs+1 {
		t.Errorf("jobs %d after a new block; want %d", st2.Jobs, st.Jobs+1)
	}
	if err := p.fault(ctx, "no-such-fault"); err == nil {
		t.Error("unknown fault: no error")
	}

	backup, err := startPool(ctx, "poolsim-backup", filepath.Join(dir, "poolsim"), minerDiff)
	if err != nil {
		t.Fatal(err)
	}
	g.add(backup.child)
	r, err := startRelay(ctx, filepath.Join(dir, "hashrelay"), relayConfig{upstreams: []*pool{p, backup}, minerDiff: minerDiff, maxConns: 150})
	if err != nil {
		t.Fatal(err)
	}
	g.add(r.child)
	mt, err := r.metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mt["hashrelay_miners_connected"]; !ok {
		t.Errorf("no hashrelay_miners_connected in /metrics")
	}
	c := &column{ctx: ctx, proxied: true}
	if n, err := c.connected(r, p); err != nil || n != 0 {
		t.Errorf("connected = %d, %v; want 0", n, err)
	}
	if n, err := c.checked(nil, p); err != nil || n != 0 {
		t.Errorf("checked (pool) = %v, %v; want 0", n, err)
	}
	st, err = p.stats(ctx)
	if err != nil || st.Sessions < 1 {
		t.Errorf("pool sessions %d, %v; want hashrelay's upstream session", st.Sessions, err)
	}
	if _, ok := st.bytes(); !ok {
		t.Log("this poolsim's /stats has no bytes_in/bytes_out yet")
	}

	s := startSampler(r.pid)
	a, err := s.mark()
	if err != nil || a.rssKiB == 0 {
		t.Errorf("relay sample %+v, %v", a, err)
	}

	// The primary dies: hashrelay moves to the backup (its default back-off).
	if err := p.kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mt, err := r.metrics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if mt.sum("hashrelay_upstream_switches_total") >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no upstream switch 10 s after the primary's SIGKILL")
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.stop()
	if err := g.stopAll(); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []*child{p.child, backup.child, r.child} {
		if !ch.exited() {
			t.Errorf("%s still running after stopAll", ch.name)
		}
	}
}

func TestRelayStartFailsClearly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs hashrelay")
	}
	dir := built(t, "hashrelay")
	// An invalid setting: hashrelay exits 2 at once.
	_, err := startRelay(context.Background(), filepath.Join(dir, "hashrelay"), relayConfig{minerDiff: minerDiff, maxConns: 10})
	if err == nil || !strings.Contains(err.Error(), "exited early") {
		t.Errorf("no upstream: %v; want an early exit with hashrelay's message", err)
	}
	t.Log(err)
}
