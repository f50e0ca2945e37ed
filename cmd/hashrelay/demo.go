package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/hashrelay/hashrelay/proxy"
	"github.com/hashrelay/hashrelay/stratum"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// The demo's fleet: enough miners to see aggregation and accounting, light enough to
// run beside anything.
const (
	demoMiners         = 32
	demoMinerHashRate  = 20_000 // hashes per second per simulated miner
	demoPoolDifficulty = 0.00005
	demoJobInterval    = 15 * time.Second
	demoReportEvery    = 5 * time.Second
)

// runDemo runs HashRelay in front of an in-process simulated pool, with simulated
// miners (half of them rolling version bits) connected to it, until ctx ends.
func runDemo(ctx context.Context, o *options, log zerolog.Logger, out io.Writer) int {
	pool, err := stratumtest.NewPool(stratumtest.PoolConfig{
		Difficulty:  demoPoolDifficulty,
		JobInterval: demoJobInterval,
	})
	if err != nil {
		log.Error().Err(err).Msg("demo pool")
		return 1
	}
	defer pool.Close()

	cfg := o.cfg
	up, err := proxy.ParsePoolURL("stratum+tcp://demo:x@" + pool.Addr())
	if err != nil {
		log.Error().Err(err).Msg("demo pool url")
		return 1
	}
	cfg.Upstreams = []proxy.PoolURL{up}
	cfg.StartDifficulty = demoPoolDifficulty / 16
	cfg.MinDifficulty = demoPoolDifficulty / 1024
	cfg.VardiffShareInterval = 2 * time.Second
	cfg.VardiffRetarget = 15 * time.Second
	srv, err := proxy.New(cfg, log)
	if err != nil {
		log.Error().Err(err).Msg("demo config")
		return 2
	}
	if err := srv.Start(ctx); err != nil {
		log.Error().Err(err).Msg("start failed (is another HashRelay using the port? set -listen/-http)")
		return 1
	}

	mctx, stopMiners := context.WithCancel(ctx)
	var wg sync.WaitGroup
	miners := make([]*stratumtest.Miner, 0, demoMiners)
	for i := 0; i < demoMiners; i++ {
		m := stratumtest.NewMiner(stratumtest.MinerConfig{
			Addr:           srv.Addr().String(),
			Worker:         fmt.Sprintf("demo.rig%02d", i),
			UserAgent:      "demo-miner/1.0",
			HashRate:       demoMinerHashRate,
			VersionRolling: i%2 == 0,
		})
		miners = append(miners, m)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = m.Run(mctx)
		}()
	}

	fmt.Fprintf(out, `HashRelay demo: %d simulated miners -> HashRelay -> simulated pool
  dashboard: http://%s/
  stratum:   stratum+tcp://%s   (point more miners here)
  metrics:   http://%s/metrics
  api:       http://%s/api/v1/summary, /api/v1/workers, /api/v1/upstreams
  health:    http://%s/healthz
Ctrl-C to stop.
`, demoMiners, srv.HTTPAddr(), srv.Addr(), srv.HTTPAddr(), srv.HTTPAddr(), srv.HTTPAddr())

	tick := time.NewTicker(demoReportEvery)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			var accepted, rejected uint64
			for _, m := range miners {
				st := m.Stats()
				accepted, rejected = accepted+st.Accepted, rejected+st.Rejected
			}
			ps := pool.Stats()
			fmt.Fprintf(out, "miners: %d shares accepted by HashRelay, %d rejected | pool: %d upstream sessions, %d shares accepted, %d rejected\n",
				accepted, rejected, ps.Sessions, ps.Verdicts[stratum.VerdictAccepted], ps.Rejected())
		}
	}
	stopMiners()
	wg.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout+time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error().Err(err).Msg("shutdown incomplete")
		return 1
	}
	return 0
}
