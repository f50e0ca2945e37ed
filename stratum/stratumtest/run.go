package stratumtest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// MinerStopTimeout bounds how long the stop function of RunMiners waits for the
// miners' Run to return.
const MinerStopTimeout = 8 * time.Second

// StartPool starts a pool with NewPool, failing tb at once when it cannot, and
// closes it when the test ends.
func StartPool(tb testing.TB, cfg PoolConfig) *Pool {
	tb.Helper()
	p, err := NewPool(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

// RunMiners starts a Miner for each config, each running until stop is called or
// the test ends. stop cancels them and waits, at most MinerStopTimeout, for every
// Run to return, so their stats are final once it does; a Run error or a Run that
// does not return fails tb. stop is safe to call more than once, from the test's
// goroutine (it reports with tb.Errorf).
func RunMiners(tb testing.TB, cfgs ...MinerConfig) (miners []*Miner, stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, len(cfgs))
	miners = make([]*Miner, len(cfgs))
	for i, cfg := range cfgs {
		m := NewMiner(cfg)
		miners[i] = m
		go func() { errc <- m.Run(ctx) }()
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			timeout := time.NewTimer(MinerStopTimeout)
			defer timeout.Stop()
			var errs []error
			for range cfgs {
				select {
				case err := <-errc:
					errs = append(errs, err)
				case <-timeout.C:
					tb.Errorf("stratumtest: a miner's Run did not return within %v", MinerStopTimeout)
					return
				}
			}
			if err := errors.Join(errs...); err != nil {
				tb.Errorf("stratumtest: miner Run: %v", err)
			}
		})
	}
	tb.Cleanup(stop)
	return miners, stop
}

// WaitFor polls cond every few milliseconds until it holds, failing tb with
// "timed out waiting for <what>" once timeout has passed.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
