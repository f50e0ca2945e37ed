package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// waitTimeout bounds every wait in these tests; a healthy run needs a fraction.
const waitTimeout = 8 * time.Second

// tinyDifficulty gives a share about every 430 hashes.
const tinyDifficulty = 1e-7

func newPool(t *testing.T, cfg stratumtest.PoolConfig) *stratumtest.Pool {
	t.Helper()
	p, err := stratumtest.NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// startMiner runs a miner until the returned stop is called (or the test ends).
func startMiner(t *testing.T, cfg stratumtest.MinerConfig) (*stratumtest.Miner, func()) {
	t.Helper()
	m := stratumtest.NewMiner(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- m.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("miner Run: %v", err)
				}
			case <-time.After(waitTimeout):
				t.Errorf("miner Run did not return")
			}
		})
	}
	t.Cleanup(stop)
	return m, stop
}

// eventually polls cond until it holds, failing the test after waitTimeout.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
